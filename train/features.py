"""Reference log-mel front end and its configuration.

`FrontendConfig` is the single source of truth for every constant the Python
reference and the C firmware share. `convert/` emits it (and the tables
derived from it here: window, mel filterbank, per-band scale) into C, so the
two sides cannot drift.

The pipeline for one clip of int16 samples ``x`` (what the device does too):

1. Pad: a clip shorter than ``clip_samples`` gets zeros appended up to it.
   Longer clips are kept whole.
2. Frames: ``y = x / 32768`` (float32), a centred STFT (``n_fft`` points,
   ``hop_length`` hop, periodic Hann window, ``n_fft // 2`` zeros of padding
   on both ends), power spectrum, Slaney mel filterbank, ``log(mel +
   log_floor)``. ``T = 1 + len(x) // hop_length`` frames of ``n_mels`` values.
3. Steps: with ``frame_pool`` P > 1, frames P*j .. P*j+P-1 (counted from
   the clip's first frame) make time step j: its value the integer mean
   ``(q[2j] + q[2j+1]) >> 1`` of their integer log-mel values, its energy the
   sum of theirs (`pool_frames`, `pool_energies`; an incomplete last group
   is dropped). P = 1: a step is a frame. P = 2 makes 16 steps span 32
   frames, about 1 s, with the front end and its state unchanged.
   Window rule: the model sees ``n_frames`` consecutive steps.
   ``"max-energy"`` picks the run of ``n_frames`` frames whose summed frame
   energy is largest, the earliest on a tie; a frame's energy is the exact
   integer sum of squared int16 samples under its ``n_fft`` window (padding
   counts as zeros). Integers keep the choice identical on any machine, and
   the device evaluates it frame by frame as audio streams in, holding only
   two windows of int8 features. ``"first"`` takes frames ``0 .. n_frames-1``.
4. Normalize. ``clip_norm="band-mean"`` (the default) first subtracts each
   band's mean over the clip's own ``n_frames`` frames (cepstral mean
   normalization: it removes the microphone, the channel and the level,
   which is most of what separates one speaker's recordings from another's),
   then divides by ``band_std``, fitted on the training split after that
   subtraction: ``(v - mean_t v) / band_std``. ``"none"`` is the global
   ``(v - band_mean) / band_std`` alone.
5. Quantize, the way the device does it, in integers after one float step
   (see `quantize_logmel`): each frame value goes to a fine int16 domain,
   ``w = round(v * band_gain + band_offset)`` in float32 (half away from 0,
   clamped to int16), ``2**fine_bits`` steps per int8 input step, centred by
   the training mean; then with ``M`` the band's sum of ``w`` over the window
   (0 for ``"none"``), the int8 input is
   ``zero_point + rdiv(n_frames * w - M, n_frames * 2**fine_bits)`` clamped to
   int8 (``rdiv`` rounds half away from 0). A constant band (silence, DC)
   gives exactly ``zero_point``: nothing is divided by a spread measured on
   the clip, so near-silence stays finite and deterministic.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

WINDOW_RULES = ("max-energy", "first")
CLIP_NORMS = ("band-mean", "none")
VERSIONS = (1, 2)
V2_FIELDS = ("log_frac_bits", "noise_fall_shift", "noise_rise_shift", "noise_oversub", "noise_min_remaining",
             "agc_strength", "agc_shift")
"""Fields of front end v2 only: a v1 config is written without them, so its hash is the one v1 firmware reports."""


def describe_version(version: int) -> str:
    """A front-end version as messages name it: 'v2 (integer)', 'v1 (float)'."""
    return f"v{version} ({'integer' if version == 2 else 'float'})"


@dataclass(frozen=True, kw_only=True)
class FrontendConfig:
    """Front-end parameters shared by training, the reference and the device."""

    version: int = 2
    """2: the integer front end (train/intfront.py), exact on every machine, with noise suppression;
    1: the float librosa front end of the first releases (the firmware no longer builds it)."""
    sr: int = 8000
    """Sample rate in Hz. Audio at another rate is resampled on load."""
    clip_samples: int = 4000
    """Minimum clip length; shorter clips are zero-padded at the end to it (0.5 s)."""
    n_fft: int = 512
    """FFT length and analysis window length, in samples."""
    hop_length: int = 256
    """Samples between the centres of consecutive frames."""
    n_mels: int = 80
    """Number of mel bands (features per time step)."""
    n_frames: int = 16
    """Time steps the model sees (n_frames * frame_pool = 1 + clip_samples // hop_length: frames of a padded clip)."""
    frame_pool: int = 1
    """v2: frames per time step, pooled in aligned groups from the first frame (1: a step is a frame, 16 steps
    span 0.5 s; 2: 16 steps span 32 frames, 1 s, with clip_samples 8000). Written to the config only when not 1,
    so the hash of a config from before it existed does not change."""
    fmin: float = 0.0
    """Lowest mel band edge in Hz."""
    fmax: float = 4000.0
    """Highest mel band edge in Hz (at most sr / 2)."""
    log_floor: float = 1e-6
    """Added to the mel power before the log, so silence stays finite."""
    window_rule: str = "max-energy"
    """How the n_frames frames are chosen from a longer clip: 'max-energy' or 'first'."""
    clip_norm: str = "band-mean"
    """Per-clip normalization: 'band-mean' subtracts each band's mean over the clip's window, 'none' does not."""
    fine_bits: int = 6
    """Fractional bits of the int16 frame values below one int8 input step (1 .. 8)."""
    log_frac_bits: int = 10
    """v2: fractional bits of the integer log2 mel values (10: steps of 1/1024 octave)."""
    noise_fall_shift: int = 1
    """v2: the per-band noise floor falls by (L - floor) >> this when a frame is quieter."""
    noise_rise_shift: int = 6
    """v2: ... and rises by (L - floor) >> this when it is louder (6: about 2 s to follow a new noise)."""
    noise_oversub: float = 1.0
    """v2: spectral subtraction takes this many times the noise floor away (0: no subtraction)."""
    noise_min_remaining: float = 0.05
    """v2: ... but never more than all but this share of a band's energy (-13 dB)."""
    agc_strength: int = 0
    """v2: per-band gain control, in 1/256: the output is S - agc_strength * A / 256 (0: off)."""
    agc_shift: int = 4
    """v2: the gain control's level A follows S by (S - A) >> this per frame."""
    band_mean: tuple[float, ...] | None = None
    """Per-band mean of the log-mel features over the training split (None before training)."""
    band_std: tuple[float, ...] | None = None
    """Per-band standard deviation of the normalized features' numerator over the training split (None before training)."""

    def __post_init__(self) -> None:
        if self.version not in VERSIONS:
            raise ValueError(f"version must be one of {VERSIONS}, got {self.version!r}")
        if self.sr <= 0:
            raise ValueError(f"sr must be positive, got {self.sr}")
        if self.n_fft <= 0 or self.n_fft & (self.n_fft - 1):
            raise ValueError(f"n_fft must be a power of two, got {self.n_fft}")
        if not 0 < self.hop_length <= self.n_fft:
            raise ValueError(f"hop_length must be in (0, n_fft={self.n_fft}], got {self.hop_length}")
        if not 0 <= self.fmin < self.fmax <= self.sr / 2:
            raise ValueError(f"need 0 <= fmin < fmax <= sr/2, got fmin={self.fmin} fmax={self.fmax}")
        if self.log_floor <= 0:
            raise ValueError(f"log_floor must be > 0, got {self.log_floor}")
        if self.window_rule not in WINDOW_RULES:
            raise ValueError(f"window_rule must be one of {WINDOW_RULES}, got {self.window_rule!r}")
        if self.clip_norm not in CLIP_NORMS:
            raise ValueError(f"clip_norm must be one of {CLIP_NORMS}, got {self.clip_norm!r}")
        if not 1 <= self.fine_bits <= 8:
            raise ValueError(f"fine_bits must be in 1 .. 8, got {self.fine_bits}")
        if self.frame_pool not in (1, 2):
            raise ValueError(f"frame_pool must be 1 or 2, got {self.frame_pool!r}")
        if self.frame_pool != 1 and self.version != 2:
            raise ValueError("frame_pool 2 needs the integer front end (version 2)")
        expected = 1 + self.clip_samples // self.hop_length
        if self.window_frames != expected:
            raise ValueError(
                f"n_frames={self.n_frames} x frame_pool={self.frame_pool} = {self.window_frames} frames, but "
                f"clip_samples={self.clip_samples} and hop_length={self.hop_length} give {expected}"
            )
        for name in ("band_mean", "band_std"):
            v = getattr(self, name)
            if v is not None and len(v) != self.n_mels:
                raise ValueError(f"{name} has {len(v)} values, expected n_mels={self.n_mels}")
        if self.band_std is not None and min(self.band_std) <= 0:
            raise ValueError("band_std must be positive in every band")
        if not 4 <= self.log_frac_bits <= 12:
            raise ValueError(f"log_frac_bits must be in 4 .. 12, got {self.log_frac_bits}")
        for name in ("noise_fall_shift", "noise_rise_shift", "agc_shift"):
            v = getattr(self, name)
            if not isinstance(v, int) or not 0 <= v <= 15:
                raise ValueError(f"{name} must be an integer in 0 .. 15, got {v!r}")
        if not 0 <= self.noise_oversub <= 4:
            raise ValueError(f"noise_oversub must be in 0 .. 4, got {self.noise_oversub}")
        if not 0 < self.noise_min_remaining <= 1:
            raise ValueError(f"noise_min_remaining must be in (0, 1], got {self.noise_min_remaining}")
        if not isinstance(self.agc_strength, int) or not 0 <= self.agc_strength <= 256:
            raise ValueError(f"agc_strength must be an integer in 0 .. 256, got {self.agc_strength!r}")
        if self.version == 2 and self.n_fft != 2 * self.hop_length:
            raise ValueError(f"front end v2 needs hop_length == n_fft / 2, got {self.hop_length} and {self.n_fft}")

    @property
    def window_frames(self) -> int:
        """Front-end frames in one model window: n_frames * frame_pool."""
        return self.n_frames * self.frame_pool

    @property
    def step_hop(self) -> int:
        """Samples per time step: hop_length * frame_pool (the stream detector's unit)."""
        return self.hop_length * self.frame_pool

    @property
    def is_integer(self) -> bool:
        """True for front end v2 (integer, exact); False for v1 (float librosa)."""
        return self.version == 2

    def describe(self) -> str:
        """'v2 (integer)' or 'v1 (float)', for messages that compare a device with a model."""
        return describe_version(self.version)

    # -- normalization -----------------------------------------------------
    @property
    def has_normalization(self) -> bool:
        return self.band_mean is not None and self.band_std is not None

    def with_normalization(self, mean: Sequence[float], std: Sequence[float]) -> "FrontendConfig":
        """A copy with per-band statistics (float32-rounded, as the device stores them)."""
        mean32 = np.asarray(mean, np.float32)
        std32 = np.asarray(std, np.float32)
        return dataclasses.replace(
            self,
            band_mean=tuple(float(v) for v in mean32),
            band_std=tuple(float(v) for v in std32),
        )

    # -- serialization -----------------------------------------------------
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for k in ("band_mean", "band_std"):
            if d[k] is not None:
                d[k] = list(d[k])
        if self.version == 1:  # written as v1 configs always were: the same JSON, the same hash
            for k in ("version",) + V2_FIELDS:
                del d[k]
        if self.frame_pool == 1:  # ... and so are configs from before frame pooling
            del d["frame_pool"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FrontendConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown front-end config fields: {unknown}")
        d = dict(d)
        # Configs written before per-clip normalization existed meant the global one,
        # and those written before front end v2 existed are v1.
        d.setdefault("clip_norm", "none")
        d.setdefault("version", 1)
        if d["version"] == 1:
            extra = sorted(set(d) & set(V2_FIELDS))
            if extra:
                raise ValueError(f"front-end v1 configs have no {extra}")
        for k in ("band_mean", "band_std"):
            if d.get(k) is not None:
                d[k] = tuple(float(v) for v in d[k])
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def load(cls, path: str | Path) -> "FrontendConfig":
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"{path}: not a valid front-end config: {exc}") from exc

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    def sha256(self) -> str:
        """Hash of the canonical JSON; the device reports the same value."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()


# -- tables ------------------------------------------------------------------
def hann_window(cfg: FrontendConfig) -> np.ndarray:
    """Periodic Hann window, float32 [shape=(n_fft,)], as librosa's stft uses it."""
    import librosa

    return librosa.filters.get_window("hann", cfg.n_fft, fftbins=True).astype(np.float32)


def mel_filterbank(cfg: FrontendConfig) -> np.ndarray:
    """Slaney mel filterbank, float32 [shape=(n_mels, 1 + n_fft // 2)]."""
    import librosa

    return librosa.filters.mel(
        sr=cfg.sr, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax, dtype=np.float32
    )


def _fine_step(cfg: FrontendConfig, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(band_mean, the log-mel step of one fine int16 unit) per band, float64 [shape=(n_mels,)]."""
    if not cfg.has_normalization:
        raise ValueError("front-end config has no band_mean/band_std: train a model first")
    if not scale > 0:
        raise ValueError(f"input scale must be > 0, got {scale}")
    mean = np.asarray(cfg.band_mean, np.float64)
    return mean, np.asarray(cfg.band_std, np.float64) * scale / 2.0**cfg.fine_bits


def quant_gain_offset(cfg: FrontendConfig, scale: float, zero_point: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-band float32 gain and offset [shape=(n_mels,)] into the fine int16 domain.

    ``w = round(v * gain + offset)`` is ``(v - band_mean) / band_std`` in
    units of ``scale / 2**fine_bits``; `quantize_logmel` takes it from there
    to int8 in integers. ``zero_point`` is added there, not here, so the fine
    values stay centred.
    """
    mean, step = _fine_step(cfg, scale)
    gain = (1.0 / step).astype(np.float32)
    offset = (-mean / step).astype(np.float32)
    return gain, offset


def fine_gain_offset(cfg: FrontendConfig, scale: float) -> tuple[np.ndarray, np.ndarray, int]:
    """v2: per-band int32 gain and offset and their shift [shape=(n_mels,)] into the fine int16 domain.

    ``w = clamp_int16((S * gain + offset + 2**(shift-1)) >> shift)`` for the
    integer frame value ``S`` (Q``log_frac_bits``) is ``(S / 2**F - band_mean)
    / band_std`` in units of ``scale / 2**fine_bits``, the v1 step 4 in
    integers. ``shift`` is the largest that keeps ``|gain| < 2**14`` and
    ``|offset| < 2**30``, so with ``|S| < 2**16`` the sum fits int32.
    """
    mean, step = _fine_step(cfg, scale)  # log2 units per fine step
    g0 = 1.0 / (step * 2.0**cfg.log_frac_bits)
    o0 = -mean / step
    shift = 24
    while shift > 0 and (np.max(np.abs(g0)) * 2.0**shift >= 2**14 - 1 or np.max(np.abs(o0)) * 2.0**shift >= 2**30 - 1):
        shift -= 1
    gain = np.round(g0 * 2.0**shift).astype(np.int64)
    offset = np.round(o0 * 2.0**shift).astype(np.int64)
    if np.max(np.abs(gain)) >= 2**14 or np.max(np.abs(offset)) >= 2**30:
        raise ValueError("band statistics out of the integer front end's range (band_std too small?)")
    return gain, offset, shift


# -- per-clip steps ----------------------------------------------------------
def as_int16(samples: np.ndarray) -> np.ndarray:
    x = np.asarray(samples)
    if x.ndim != 1:
        raise ValueError(f"expected mono samples of shape (n,), got shape {x.shape}")
    if x.dtype != np.int16:
        raise TypeError(f"expected int16 samples, got {x.dtype}")
    return x


def pad_clip(samples: np.ndarray, cfg: FrontendConfig) -> np.ndarray:
    """Appends zeros to a clip shorter than cfg.clip_samples; longer clips are unchanged."""
    x = as_int16(samples)
    if len(x) >= cfg.clip_samples:
        return x
    return np.concatenate([x, np.zeros(cfg.clip_samples - len(x), np.int16)])


def frame_energies(padded: np.ndarray, cfg: FrontendConfig) -> np.ndarray:
    """Exact int64 energy of every centred frame [shape=(T,)] of an already padded clip."""
    x = as_int16(padded).astype(np.int64)
    half = cfg.n_fft // 2
    sq = np.concatenate([np.zeros(half, np.int64), x * x, np.zeros(half, np.int64)])
    csum = np.concatenate([[0], np.cumsum(sq)])
    n_frames = 1 + len(x) // cfg.hop_length
    starts = np.arange(n_frames) * cfg.hop_length
    return csum[starts + cfg.n_fft] - csum[starts]


def choose_window(energies: np.ndarray, cfg: FrontendConfig) -> int:
    """Index of the first time step the model sees, by cfg.window_rule, from the steps' energies."""
    n = cfg.n_frames
    if len(energies) < n:
        raise ValueError(f"clip has {len(energies)} steps, fewer than n_frames={n}")
    if cfg.window_rule == "first":
        return 0
    csum = np.concatenate([[0], np.cumsum(energies.astype(np.int64))])
    scores = csum[n:] - csum[:-n]
    return int(np.argmax(scores))  # argmax returns the first maximum: earliest wins a tie


def log_mel_frames(padded: np.ndarray, cfg: FrontendConfig, mel_basis: np.ndarray | None = None) -> np.ndarray:
    """Log-mel of every frame of an already padded clip, float32 [shape=(T, n_mels)].

    v1: librosa, natural log. v2: train/intfront.py's integer output (log2,
    noise suppressed, state from the clip's first frame) divided by
    ``2**log_frac_bits``, which float32 holds exactly.
    """
    if cfg.is_integer:
        return int_logmel_frames(padded, cfg, 1 + len(padded) // cfg.hop_length)
    import librosa

    y = as_int16(padded).astype(np.float32) * np.float32(1.0 / 32768.0)
    spec = librosa.stft(y, n_fft=cfg.n_fft, hop_length=cfg.hop_length, window="hann", center=True, pad_mode="constant")
    power = (spec.real * spec.real + spec.imag * spec.imag).astype(np.float32)
    basis = mel_filterbank(cfg) if mel_basis is None else mel_basis
    mel = basis @ power  # (n_mels, T), float32
    return np.log(mel + np.float32(cfg.log_floor)).T.astype(np.float32)


def int_logmel_frames(samples: np.ndarray, cfg: FrontendConfig, n_frames: int) -> np.ndarray:
    """v2: the centred frames 0 .. n_frames-1 of a signal (zeros outside it) through train/intfront.py, its
    state starting at frame 0, as the float32 log-mel view [shape=(n_frames, n_mels)]."""
    from train import intfront

    frames = intfront.frames_of(as_int16(samples), cfg.n_fft, cfg.hop_length, n_frames)
    return int_to_logmel(intfront.run_frames(frames, cfg), cfg)


def int_to_logmel(q: np.ndarray, cfg: FrontendConfig) -> np.ndarray:
    """v2: integer Q``log_frac_bits`` frame values as the float32 log-mel view (exact)."""
    q = np.asarray(q, np.int64)
    if np.any(np.abs(q) >= 1 << 24):
        raise OverflowError("integer log-mel value outside float32's exact range")
    return (q.astype(np.float32) * np.float32(2.0**-cfg.log_frac_bits)).astype(np.float32)


def logmel_to_int(logmel: np.ndarray, cfg: FrontendConfig) -> np.ndarray:
    """v2: the integer Q``log_frac_bits`` values behind a float32 log-mel view, int64."""
    v = np.asarray(logmel, np.float64) * 2.0**cfg.log_frac_bits
    v = np.where(np.isnan(v), -(2.0**30), v)
    return np.round(np.clip(v, -(2.0**30), 2.0**30)).astype(np.int64)


def pool_frames(frames: np.ndarray, cfg: FrontendConfig) -> np.ndarray:
    """Time steps from front-end frames [shape=(T, n_mels), float32 view] -> float32 [shape=(T // P, n_mels)]:
    step j is ``(q[P*j] + ... + q[P*j+P-1]) >> log2(P)`` of the integer values behind the view (P =
    frame_pool; a floor, as the device's arithmetic shift). P = 1: the frames themselves."""
    v = np.asarray(frames, np.float32)
    if cfg.frame_pool == 1:
        return v
    p, t = cfg.frame_pool, v.shape[-2] // cfg.frame_pool
    q = logmel_to_int(v[..., : t * p, :], cfg)
    q = q.reshape(v.shape[:-2] + (t, p, v.shape[-1])).sum(axis=-2)
    return int_to_logmel(q >> (p.bit_length() - 1), cfg)


def pool_energies(energies: np.ndarray, cfg: FrontendConfig) -> np.ndarray:
    """Exact int64 energy of each time step [shape=(T // P,)]: the sum of its frames' (P = frame_pool)."""
    e = np.asarray(energies, np.int64)
    p = cfg.frame_pool
    if p == 1:
        return e
    t = len(e) // p
    return e[: t * p].reshape(t, p).sum(axis=1)


def clip_logmel(samples: np.ndarray, cfg: FrontendConfig, mel_basis: np.ndarray | None = None) -> np.ndarray:
    """Un-normalized log-mel window the model sees, float32 [shape=(n_frames, n_mels)], row = time step."""
    padded = pad_clip(samples, cfg)
    steps = pool_frames(log_mel_frames(padded, cfg, mel_basis), cfg)
    start = choose_window(pool_energies(frame_energies(padded, cfg), cfg), cfg)
    return steps[start : start + cfg.n_frames]


def normalize(logmel: np.ndarray, cfg: FrontendConfig) -> np.ndarray:
    """The model's float input from un-normalized log-mel windows, float32.

    ``logmel`` [shape=(..., n_frames, n_mels)]: with ``clip_norm="band-mean"``
    each window's band means are subtracted (over its n_frames axis), then
    ``/ band_std``; with ``"none"``, ``(logmel - band_mean) / band_std``.
    """
    if not cfg.has_normalization:
        raise ValueError("front-end config has no band_mean/band_std: train a model first")
    v = np.asarray(logmel, np.float32)
    std = np.asarray(cfg.band_std, np.float32)
    if cfg.clip_norm == "band-mean":
        centred = v - v.mean(axis=-2, keepdims=True, dtype=np.float32)
    else:
        centred = v - np.asarray(cfg.band_mean, np.float32)
    return (centred / std).astype(np.float32)


def round_half_away(v: np.ndarray) -> np.ndarray:
    """Exact round-half-away-from-zero of float32 values (C's roundf)."""
    t = np.trunc(v)
    frac = np.abs(v - t)  # exact in floating point
    return t + np.where(frac >= 0.5, np.sign(v), 0).astype(v.dtype)


def rdiv(num: np.ndarray, den: int) -> np.ndarray:
    """Integer ``num / den`` rounded half away from zero (``den > 0``), exact in int64."""
    a = np.asarray(num, np.int64)
    mag = (np.abs(a) + den // 2) // den
    return np.where(a < 0, -mag, mag)


def fine_features(logmel: np.ndarray, cfg: FrontendConfig, scale: float) -> np.ndarray:
    """Fine int16 frame values [same shape as logmel]; step 4 of the docstring.

    v1: ``round(v * gain + offset)`` in float32. v2: `fine_gain_offset` on the
    integer values behind the view, in integers.
    """
    if cfg.is_integer:
        q = logmel_to_int(logmel, cfg)
        gain, offset, shift = fine_gain_offset(cfg, scale)
        q = np.clip(q, -(1 << 16) + 1, (1 << 16) - 1)  # the device's range (train/intfront.py)
        w = (q * gain + offset + ((1 << shift) >> 1)) >> shift
        return np.clip(w, -32768, 32767).astype(np.int16)
    gain, offset = quant_gain_offset(cfg, scale, 0)
    v = np.asarray(logmel, np.float32) * gain
    v = (v + offset).astype(np.float32)
    v = np.where(np.isnan(v), np.float32(-32768), v)
    return np.clip(round_half_away(v), -32768, 32767).astype(np.int16)


def quantize_logmel(logmel: np.ndarray, cfg: FrontendConfig, scale: float, zero_point: int) -> np.ndarray:
    """int8 model input from un-normalized log-mel windows [shape=(..., n_frames, n_mels)].

    The device computes exactly this: `fine_features`, the band sums over
    the window in integers, one rounded division (module docstring, step 5).
    """
    w = fine_features(logmel, cfg, scale).astype(np.int64)
    if w.ndim < 2 or w.shape[-2] != cfg.n_frames:
        raise ValueError(f"expected windows of shape (..., {cfg.n_frames}, {cfg.n_mels}), got {w.shape}")
    n = cfg.n_frames
    band_sum = w.sum(axis=-2, keepdims=True) if cfg.clip_norm == "band-mean" else 0
    q = zero_point + rdiv(n * w - band_sum, n << cfg.fine_bits)
    return np.clip(q, -128, 127).astype(np.int8)


def batch_logmel(clips: Iterable[np.ndarray], cfg: FrontendConfig, *, progress: bool = False, desc: str = "features") -> np.ndarray:
    """clip_logmel over many clips -> float32 [shape=(n, n_frames, n_mels)]."""
    clips = list(clips)
    out = np.empty((len(clips), cfg.n_frames, cfg.n_mels), np.float32)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(clips), desc=desc, unit="clip", leave=False)
    if cfg.is_integer:  # many clips at once: the FFT over all their frames, the state per clip
        from train import intfront

        t = intfront.tables(cfg)
        step = 512
        for a in range(0, len(clips), step):
            padded = [pad_clip(x, cfg) for x in clips[a : a + step]]
            frames = [intfront.frames_of(p, cfg.n_fft, cfg.hop_length, 1 + len(p) // cfg.hop_length) for p in padded]
            for i, (p, q) in enumerate(zip(padded, intfront.run_batch(frames, cfg, t))):
                steps = pool_frames(int_to_logmel(q, cfg), cfg)
                start = choose_window(pool_energies(frame_energies(p, cfg), cfg), cfg)
                out[a + i] = steps[start : start + cfg.n_frames]
            if bar is not None:
                bar.update(len(padded))
    else:
        basis = mel_filterbank(cfg)
        for i, x in enumerate(clips):
            out[i] = clip_logmel(x, cfg, basis)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return out


def fit_normalization(logmel: np.ndarray, cfg: FrontendConfig) -> FrontendConfig:
    """Config with per-band statistics of the (training) windows [shape=(n, n_frames, n_mels)].

    ``band_mean`` is the mean over every frame (it centres the device's fine
    int16 values); ``band_std`` is the spread of what `normalize` divides:
    the values minus their window's band mean for ``clip_norm="band-mean"``,
    minus ``band_mean`` for ``"none"``.
    """
    v = np.asarray(logmel, np.float64)
    mean = v.reshape(-1, cfg.n_mels).mean(axis=0)
    centred = v - v.mean(axis=-2, keepdims=True) if cfg.clip_norm == "band-mean" else v - mean
    std = np.sqrt(np.mean(centred.reshape(-1, cfg.n_mels) ** 2, axis=0))
    std = np.where(std < 1e-6, 1.0, std)  # a constant band keeps its values centred, not divided by ~0
    return cfg.with_normalization(mean, std)


DEFAULT_CONFIG = FrontendConfig()
