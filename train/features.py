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
3. Window rule: the model sees ``n_frames`` consecutive frames.
   ``"max-energy"`` picks the run of ``n_frames`` frames whose summed frame
   energy is largest, the earliest on a tie; a frame's energy is the exact
   integer sum of squared int16 samples under its ``n_fft`` window (padding
   counts as zeros). Integers keep the choice identical on any machine, and
   the device evaluates it frame by frame as audio streams in, holding only
   two windows of int8 features. ``"first"`` takes frames ``0 .. n_frames-1``.
4. Normalize per band with training-set statistics: ``(v - band_mean) /
   band_std``; the model's input. The int8 input tensor is
   ``round(v * band_gain + band_offset)`` clamped to int8, with gain and
   offset folded from the statistics and the model's input quantization
   (see `quantize_logmel`), evaluated in float32, rounding half away from 0.
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


@dataclass(frozen=True, kw_only=True)
class FrontendConfig:
    """Front-end parameters shared by training, the reference and the device."""

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
    """Time steps the model sees (= 1 + clip_samples // hop_length)."""
    fmin: float = 0.0
    """Lowest mel band edge in Hz."""
    fmax: float = 4000.0
    """Highest mel band edge in Hz (at most sr / 2)."""
    log_floor: float = 1e-6
    """Added to the mel power before the log, so silence stays finite."""
    window_rule: str = "max-energy"
    """How the n_frames frames are chosen from a longer clip: 'max-energy' or 'first'."""
    band_mean: tuple[float, ...] | None = None
    """Per-band mean of the log-mel features over the training split (None before training)."""
    band_std: tuple[float, ...] | None = None
    """Per-band standard deviation over the training split (None before training)."""

    def __post_init__(self) -> None:
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
        expected = 1 + self.clip_samples // self.hop_length
        if self.n_frames != expected:
            raise ValueError(
                f"n_frames={self.n_frames} does not match clip_samples={self.clip_samples} "
                f"and hop_length={self.hop_length} (expected {expected})"
            )
        for name in ("band_mean", "band_std"):
            v = getattr(self, name)
            if v is not None and len(v) != self.n_mels:
                raise ValueError(f"{name} has {len(v)} values, expected n_mels={self.n_mels}")
        if self.band_std is not None and min(self.band_std) <= 0:
            raise ValueError("band_std must be positive in every band")

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
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FrontendConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown front-end config fields: {unknown}")
        d = dict(d)
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


def quant_gain_offset(cfg: FrontendConfig, scale: float, zero_point: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-band float32 gain and offset that map log-mel straight to the int8 domain.

    ``q = round(v * gain + offset)`` equals quantizing ``(v - mean) / std``
    with ``scale`` and ``zero_point``, up to float rounding; this folded form
    *is* the definition both sides compute.
    """
    if not cfg.has_normalization:
        raise ValueError("front-end config has no band_mean/band_std: train a model first")
    if not scale > 0:
        raise ValueError(f"input scale must be > 0, got {scale}")
    mean = np.asarray(cfg.band_mean, np.float64)
    std = np.asarray(cfg.band_std, np.float64)
    gain = (1.0 / (std * scale)).astype(np.float32)
    offset = (zero_point - mean / (std * scale)).astype(np.float32)
    return gain, offset


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
    """Index of the first frame the model sees, by cfg.window_rule."""
    n = cfg.n_frames
    if len(energies) < n:
        raise ValueError(f"clip has {len(energies)} frames, fewer than n_frames={n}")
    if cfg.window_rule == "first":
        return 0
    csum = np.concatenate([[0], np.cumsum(energies.astype(np.int64))])
    scores = csum[n:] - csum[:-n]
    return int(np.argmax(scores))  # argmax returns the first maximum: earliest wins a tie


def log_mel_frames(padded: np.ndarray, cfg: FrontendConfig, mel_basis: np.ndarray | None = None) -> np.ndarray:
    """Log-mel of every frame of an already padded clip, float32 [shape=(T, n_mels)]."""
    import librosa

    y = as_int16(padded).astype(np.float32) * np.float32(1.0 / 32768.0)
    spec = librosa.stft(y, n_fft=cfg.n_fft, hop_length=cfg.hop_length, window="hann", center=True, pad_mode="constant")
    power = (spec.real * spec.real + spec.imag * spec.imag).astype(np.float32)
    basis = mel_filterbank(cfg) if mel_basis is None else mel_basis
    mel = basis @ power  # (n_mels, T), float32
    return np.log(mel + np.float32(cfg.log_floor)).T.astype(np.float32)


def clip_logmel(samples: np.ndarray, cfg: FrontendConfig, mel_basis: np.ndarray | None = None) -> np.ndarray:
    """Un-normalized log-mel window the model sees, float32 [shape=(n_frames, n_mels)], row = time step."""
    padded = pad_clip(samples, cfg)
    frames = log_mel_frames(padded, cfg, mel_basis)
    start = choose_window(frame_energies(padded, cfg), cfg)
    return frames[start : start + cfg.n_frames]


def normalize(logmel: np.ndarray, cfg: FrontendConfig) -> np.ndarray:
    """(logmel - band_mean) / band_std in float32; works on (..., n_mels)."""
    if not cfg.has_normalization:
        raise ValueError("front-end config has no band_mean/band_std: train a model first")
    mean = np.asarray(cfg.band_mean, np.float32)
    std = np.asarray(cfg.band_std, np.float32)
    return ((logmel - mean) / std).astype(np.float32)


def round_half_away(v: np.ndarray) -> np.ndarray:
    """Exact round-half-away-from-zero of float32 values (C's roundf)."""
    t = np.trunc(v)
    frac = np.abs(v - t)  # exact in floating point
    return t + np.where(frac >= 0.5, np.sign(v), 0).astype(v.dtype)


def quantize_logmel(logmel: np.ndarray, cfg: FrontendConfig, scale: float, zero_point: int) -> np.ndarray:
    """int8 model input from un-normalized log-mel; the device computes exactly this."""
    gain, offset = quant_gain_offset(cfg, scale, zero_point)
    v = np.asarray(logmel, np.float32) * gain
    v = (v + offset).astype(np.float32)
    return np.clip(round_half_away(v), -128, 127).astype(np.int8)


def batch_logmel(clips: Iterable[np.ndarray], cfg: FrontendConfig, *, progress: bool = False, desc: str = "features") -> np.ndarray:
    """clip_logmel over many clips -> float32 [shape=(n, n_frames, n_mels)]."""
    clips = list(clips)
    basis = mel_filterbank(cfg)
    it = clips
    if progress:
        from tqdm import tqdm

        it = tqdm(clips, desc=desc, unit="clip", leave=False)
    out = np.empty((len(clips), cfg.n_frames, cfg.n_mels), np.float32)
    for i, x in enumerate(it):
        out[i] = clip_logmel(x, cfg, basis)
    return out


def fit_normalization(logmel: np.ndarray, cfg: FrontendConfig) -> FrontendConfig:
    """Config with per-band mean/std over every frame of the (training) features."""
    flat = np.asarray(logmel, np.float64).reshape(-1, cfg.n_mels)
    std = flat.std(axis=0)
    std = np.where(std < 1e-6, 1.0, std)  # a constant band keeps its values centred, not divided by ~0
    return cfg.with_normalization(flat.mean(axis=0), std)


DEFAULT_CONFIG = FrontendConfig()
