"""Seeded, deterministic data augmentation for training on unseen voices.

Only training clips are augmented; test clips and normalization statistics
never see an augmented copy of a test speaker (the trainer passes training
indices only). Each training clip gets ``copies`` augmented versions. Copy
``k`` of clip ``i`` draws everything from ``numpy.random.default_rng((seed,
i, k))``, so a copy does not depend on which other clips are in the split or
on the order they are processed in.

In the audio domain (int16 in, int16 out), in this order:

1. speed: resampled by a factor drawn from ``speed`` (tempo and pitch move
   together, as in Kaldi's speed perturbation); factors are rationals with
   denominator 20, done with a polyphase filter (`scipy.signal.resample_poly`);
2. time shift: 0 .. ``shift_max`` zeros in front, so frames fall at another
   phase of the hop (the window rule still picks the loudest 16 frames);
3. gain: a level drawn in ``gain_db``, then clipped to int16, as a hot
   microphone would;
4. noise: with probability ``noise_prob``, white or pink noise at an SNR
   drawn in ``snr_db`` (relative to the clip's mean power).

With a `Pool` of real recordings (train/reject.py's training sources: never
the held-out noise files), two more draws per copy: reverberation, with
probability ``rir_prob``, by one of the room impulse responses (after the
time shift, before the gain: the level is kept), and, for a noisy copy, a
stretch of a real noise recording instead of white or pink noise with
probability ``real_noise_share``. Without a pool nothing changes: the same
draws give the same copies as before.

Stream-aligned copies (``stream_share`` > 0, issue 20): a sliding window does
not start where a trimmed FSDD clip starts. It starts a few frames before the
word (the gate's ``window_pre`` and a late gate) or inside it (the next
windows). A share of the copies is therefore cut as such a window sees it:
the copy's leading silence is trimmed at its onset (`onset_sample`), the
window starts ``offset`` samples before it (drawn in ``stream_offset``;
negative starts inside the word), and the model sees that copy's *first*
16 frames, not its loudest (`augment_copy` says which). The same holds for
the `noise` and `other` clips, so leading silence stops telling a digit from
a word that is not one.

In the feature domain, after normalization, SpecAugment-style masks:
``time_masks`` runs of up to ``time_mask_max`` frames and ``freq_masks``
runs of up to ``freq_mask_max`` bands set to 0 (the band mean).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction

import numpy as np


@dataclass(frozen=True, kw_only=True)
class AugmentConfig:
    """What each augmented copy may do; every range is (low, high), drawn uniformly."""

    copies: int = 3
    """Augmented copies per training clip (0 = no augmentation)."""
    speed: tuple[float, float] = (0.85, 1.15)
    """Speed factor range (> 1 is faster and higher)."""
    shift_max: int = 256
    """Most zeros put in front of a clip, in samples."""
    gain_db: tuple[float, float] = (-12.0, 6.0)
    """Level change in dB; louder copies clip at int16 full scale."""
    noise_prob: float = 0.8
    """Share of copies that get additive noise."""
    snr_db: tuple[float, float] = (5.0, 30.0)
    """Signal-to-noise ratio range of the added noise, in dB."""
    time_masks: int = 1
    """Time masks per copy (SpecAugment)."""
    time_mask_max: int = 2
    """Longest time mask, in frames."""
    freq_masks: int = 2
    """Frequency masks per copy."""
    freq_mask_max: int = 8
    """Widest frequency mask, in mel bands."""
    seed: int = 0
    """Seed of every draw (with the clip index and the copy number)."""
    real_noise_share: float = 0.5
    """With a pool: share of the noisy copies whose noise is a real recording."""
    rir_prob: float = 0.3
    """With a pool: share of the copies reverberated by a real room's impulse response."""
    stream_share: float = 0.0
    """Share of the copies cut as a sliding window sees them (first frames from an offset to the onset)."""
    stream_offset: tuple[int, int] = (-768, 2048)
    """Stream-aligned copies: samples of silence before the onset (negative: the start cut off by as many)."""

    def __post_init__(self) -> None:
        if self.copies < 0:
            raise ValueError(f"copies must be >= 0, got {self.copies}")
        lo, hi = self.speed
        if not 0.5 <= lo <= hi <= 2.0:
            raise ValueError(f"speed range must lie in [0.5, 2.0] with low <= high, got {self.speed}")
        if self.shift_max < 0:
            raise ValueError(f"shift_max must be >= 0, got {self.shift_max}")
        lo, hi = self.stream_offset
        if not -4096 <= lo <= hi <= 8192:
            raise ValueError(f"stream_offset must lie in [-4096, 8192] samples with low <= high, got {self.stream_offset}")
        for name in ("noise_prob", "real_noise_share", "rir_prob", "stream_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("gain_db", "snr_db"):
            a, b = getattr(self, name)
            if a > b:
                raise ValueError(f"{name} range low > high: {getattr(self, name)}")
        for name in ("time_masks", "time_mask_max", "freq_masks", "freq_mask_max"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


NO_AUGMENT = AugmentConfig(copies=0)


def _rng(cfg: AugmentConfig, clip: int, copy: int) -> np.random.Generator:
    return np.random.default_rng((cfg.seed, clip, copy))


def change_speed(x: np.ndarray, factor: float) -> np.ndarray:
    """Resample int16 audio so it plays ``factor`` times faster (float64 -> int16, clipped)."""
    from scipy.signal import resample_poly

    fr = Fraction(factor).limit_denominator(20)
    if fr == 1:
        return x.copy()
    y = resample_poly(x.astype(np.float64), fr.denominator, fr.numerator)
    return np.clip(np.round(y), -32768, 32767).astype(np.int16)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-power 1/f noise of n samples (white noise shaped in the frequency domain)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    y = np.fft.irfft(spec / np.sqrt(f), n)
    return y / max(np.sqrt(np.mean(y * y)), 1e-12)


@dataclass(frozen=True)
class Pool:
    """Real recordings for augmentation: noises (float, any level) and room impulse responses."""

    noises: tuple[np.ndarray, ...] = ()
    rirs: tuple[np.ndarray, ...] = ()


def reverberate(y: np.ndarray, rir: np.ndarray, sr: int = 8000) -> np.ndarray:
    """``y`` convolved with a room impulse response (from its direct path, at most 250 ms of tail kept), at
    ``y``'s RMS level."""
    h = np.asarray(rir, np.float64)
    h = h[int(np.argmax(np.abs(h))):]
    if not len(y) or not np.any(h):
        return y
    out = np.convolve(y, h)[: len(y) + sr // 4]
    rms_in, rms_out = np.sqrt(np.mean(y * y)), np.sqrt(np.mean(out * out))
    return out * (rms_in / rms_out) if rms_out > 0 else out


ONSET_BLOCK = 64
"""`onset_sample` measures the level in blocks of this many samples."""
ONSET_DB = 20.0
"""`onset_sample`: the onset is the first block at most this far below the loudest."""


def onset_sample(x: np.ndarray) -> int:
    """First sample of the first 64-sample block whose power is within 20 dB of the loudest block's (0 for
    silence): where a trimmed FSDD clip starts and where flite's padded words really start."""
    y = np.asarray(x, np.float64)
    n = len(y) // ONSET_BLOCK
    if n == 0:
        return 0
    power = np.mean(y[: n * ONSET_BLOCK].reshape(n, ONSET_BLOCK) ** 2, axis=1)
    if power.max() <= 0:
        return 0
    return int(np.argmax(power >= power.max() * 10.0 ** (-ONSET_DB / 10.0))) * ONSET_BLOCK


def augment_audio(x: np.ndarray, cfg: AugmentConfig, *, clip: int, copy: int, pool: Pool | None = None) -> np.ndarray:
    """Copy ``copy`` of training clip number ``clip``: int16 [shape=(n,)] -> int16 [shape=(m,)]."""
    return augment_copy(x, cfg, clip=clip, copy=copy, pool=pool)[0]


def augment_copy(x: np.ndarray, cfg: AugmentConfig, *, clip: int, copy: int,
                 pool: Pool | None = None) -> tuple[np.ndarray, bool]:
    """`augment_audio`'s copy and whether it is stream-aligned (the model then sees its first frames)."""
    rng = _rng(cfg, clip, copy)
    speed = rng.uniform(*cfg.speed)
    shift = int(rng.integers(0, cfg.shift_max + 1))
    gain = 10.0 ** (rng.uniform(*cfg.gain_db) / 20.0)
    noisy = rng.random() < cfg.noise_prob
    snr = rng.uniform(*cfg.snr_db)
    pink = rng.random() < 0.5
    real = reverb = False
    if pool is not None:
        real = bool(pool.noises) and rng.random() < cfg.real_noise_share
        reverb = bool(pool.rirs) and rng.random() < cfg.rir_prob
    aligned, offset = False, 0
    if cfg.stream_share > 0:  # drawn only when asked, so that other configs keep their copies
        aligned = bool(rng.random() < cfg.stream_share)
        offset = int(rng.integers(cfg.stream_offset[0], cfg.stream_offset[1] + 1))
    y = change_speed(np.asarray(x, np.int16), speed).astype(np.float64)
    if aligned:
        y = y[onset_sample(y) + max(0, -offset):]
        shift = max(0, offset)
    y = np.concatenate([np.zeros(shift), y])
    if reverb:
        y = reverberate(y, pool.rirs[int(rng.integers(0, len(pool.rirs)))])
    y = y * gain
    if noisy and len(y):
        power = np.mean(y * y)
        if real:
            src = pool.noises[int(rng.integers(0, len(pool.noises)))]
            noise = src[(int(rng.integers(0, len(src))) + np.arange(len(y))) % len(src)]
            noise = noise / max(float(np.sqrt(np.mean(noise * noise))), 1e-12)
        else:
            noise = pink_noise(len(y), rng) if pink else rng.standard_normal(len(y))
        y = y + noise * np.sqrt(power / 10.0 ** (snr / 10.0))
    return np.clip(np.round(y), -32768, 32767).astype(np.int16), aligned


def spec_masks(x: np.ndarray, cfg: AugmentConfig, *, clip: int, copy: int) -> np.ndarray:
    """Normalized features [shape=(n_frames, n_mels)] with SpecAugment masks set to 0 (a copy)."""
    rng = np.random.default_rng((cfg.seed, clip, copy, 1))
    out = np.array(x, np.float32, copy=True)
    n_frames, n_mels = out.shape
    for _ in range(cfg.time_masks):
        w = int(rng.integers(0, cfg.time_mask_max + 1))
        t0 = int(rng.integers(0, max(1, n_frames - w + 1)))
        out[t0 : t0 + w] = 0.0
    for _ in range(cfg.freq_masks):
        w = int(rng.integers(0, cfg.freq_mask_max + 1))
        f0 = int(rng.integers(0, max(1, n_mels - w + 1)))
        out[:, f0 : f0 + w] = 0.0
    return out
