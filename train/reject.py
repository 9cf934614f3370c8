"""What is not a digit: the `noise` and `other` classes and their clips (issue 20).

A model trained with ``python -m train --reject`` has twelve outputs: the ten
digits, ``noise`` (no speech: machines, weather, hum, clicks, silence) and
``other`` (speech that is not a digit). A stream event whose top-1 is one of
the two carries ``digit: null`` and its label, so background noise and
conversation stop turning into digits.

The clips of the two classes are made here, from a seed, for one split at a
time, so that a test clip never shares a source with a training clip:

- **noise**: stretches of real recordings (``../shared/data/noise/noise``;
  the files in `HELD_OUT_NOISE` are kept for the test split and for the
  stream benchmark's real-noise conditions, those in `VALIDATION_NOISE` for
  choosing the release's seed and the detector, the rest train), white, pink
  and brown noise, mains hum with harmonics, clicks and ticks, near-silence,
  real noise mixed with a colour, and (when given a share) bird-like chirps,
  music-like tones and procedural non-stationary noise (`modulated`); levels
  from 10 to 3,000 LSB RMS;
- **other**: the split's own FSDD clips made non-digit (time-reversed, and
  the start of one digit spliced to the end of another), babble of three to
  six of the split's clips at once, stretches of real read sentences
  (``../shared/data/noise/speech``: speaker 1 trains, speaker 2 tests), and
  flite's five voices saying non-digit words (`OTHER_WORDS`, split by a hash
  of the word: the test words are never trained on).

Clips derived from FSDD come from the split's own part only (for LOSO, the
held-out speaker's clips make only test clips). Homophones of digits (to,
too, two, for, fore, won, ate, oh, owe, nein...) are left out of `other` on
purpose: said alone they *are* the digit, and the model gives the digit.

DESIGN.md's trap: an `other` class made mostly of synthetic voices learns
"synthetic versus real". The same flite voices say digits too (``--synth``),
and `other` has real speech (the sentences, FSDD made non-digit); the benchmarks
measure rejection and held-out-speaker recall together.

Without the noise folder (a machine without ../shared), the noise class is
synthetic only and `other` has no real sentences; the metrics say so.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from train.augment import Pool

log = logging.getLogger(__name__)

NOISE = "noise"
OTHER = "other"
REJECT_LABELS = (NOISE, OTHER)
SR = 8000
ORIGIN = "reject"
"""`Clip.origin` prefix of every clip made here: such a clip keeps its split under any split rule."""

HELD_OUT_NOISE = ("fc_forest_2.wav", "fc_rain.wav", "fc_wind.wav", "sb_noise4.wav", "sb_noise5.wav")
"""Real noise recordings never trained on: the test split's and the stream benchmark's (84 s of the 211 s)."""
VALIDATION_NOISE = ("fc_water.wav", "sb_noise3.wav")
"""Real noise recordings never trained on either, kept for choices: train.release's seed and the detector's
constants (benchmarks.tune_stream) are chosen on false digits over noise the model has not heard, which is not the
test noise (34 s of the 211 s; the other 93 s train)."""
TEST_SPEECH_PREFIX = "sb_spk2_"
"""Read sentences by this speaker are test clips; the other speaker's train."""

OTHER_WORDS = (
    "yes", "no", "up", "down", "left", "right", "stop", "go", "hello", "house", "bird", "cat", "dog", "bed",
    "happy", "wow", "learn", "follow", "forward", "backward", "visual", "music", "water", "table", "window",
    "kitchen", "morning", "evening", "coffee", "paper", "orange", "yellow", "purple", "garden", "market", "open",
    "close", "light", "sound", "power", "river", "mountain", "people", "little", "about", "again", "because",
    "between", "cherry", "monkey", "pencil", "rabbit", "rocket", "silver", "summer", "winter", "zebra", "apple",
    "banana", "button", "camera", "doctor", "engine", "father", "mother", "island", "jacket", "ladder", "letter",
    "number", "sugar", "tiger", "travel", "hundred", "thousand", "minus", "plus", "equal", "point", "dollar",
    "what time is it", "turn on the light", "good morning", "thank you", "see you later", "where are you",
)
"""Non-digit words and phrases flite says for `other`. No homophone of a digit is here (see the docstring)."""


NOISE_KINDS = (("real", 0.40), ("white", 0.07), ("pink", 0.09), ("brown", 0.09), ("hum", 0.10), ("clicks", 0.10),
               ("silence", 0.05), ("mix", 0.10), ("chirps", 0.0), ("tones", 0.0), ("modulated", 0.0))
OTHER_KINDS = (("reversed", 0.22), ("splice", 0.13), ("babble", 0.10), ("sentence", 0.20), ("words", 0.35))
"""Kinds of noise and other clips and their shares (`RejectConfig` may change them). `chirps`, `tones` and
`modulated` have no share by default: `python -m train --noise-kinds` gives them one (the test clips keep these
shares)."""


def word_split(word: str) -> str:
    """A word's split: a stable hash (SHA-1 mod 5) puts 24 of the 86 `OTHER_WORDS` in test."""
    return "test" if int(hashlib.sha1(word.encode()).hexdigest(), 16) % 5 == 0 else "train"


@dataclass(frozen=True, kw_only=True)
class RejectConfig:
    """How many clips of each class, per split, and their lengths."""

    noise_train: int = 1600
    other_train: int = 1600
    noise_test: int = 300
    other_test: int = 300
    seconds: tuple[float, float] = (0.5, 1.2)
    """Clip length range (the window rule picks 16 frames of a longer clip, as for a digit)."""
    level_rms: tuple[float, float] = (10.0, 3000.0)
    """Noise level range in LSB RMS, drawn log-uniformly."""
    word_variants: int = 3
    """Takes of each non-digit word per flite voice (drawn pitch and speaking rate)."""
    noise_kinds: tuple[tuple[str, float], ...] = NOISE_KINDS
    """Kinds of training noise clip and their shares (test clips: always NOISE_KINDS)."""
    other_kinds: tuple[tuple[str, float], ...] = OTHER_KINDS
    """Kinds of training other clip and their shares (test clips: always OTHER_KINDS)."""
    noise_variants: int = 0
    """Varied copies of each *training* noise recording added to what the `noise` clips, the digits' augmentation and
    the detector's stream windows draw from (`vary_noise`: another speed, spectral tilt and loudness contour), so
    the eight training recordings stand for more kinds of room; 0: none."""
    classes: tuple[str, ...] = REJECT_LABELS
    """The classes added after the digits, in this order: both, or `noise` alone (non-digit speech then has no
    class of its own; the margin and the smoothing must turn it away)."""
    seed: int = 0

    def __post_init__(self) -> None:
        if tuple(self.classes) not in (REJECT_LABELS, (NOISE,)):
            raise ValueError(f"reject config classes must be {','.join(REJECT_LABELS)} or {NOISE}, got "
                             f"{','.join(self.classes) or '(none)'}")
        if not isinstance(self.noise_variants, int) or not 0 <= self.noise_variants <= 50:
            raise ValueError(f"reject config noise_variants must be a number of copies within 0-50, got "
                             f"{self.noise_variants!r}")
        for name in ("noise_train", "other_train", "noise_test", "other_test", "word_variants"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"reject config {name} must be a positive number of clips, got {v!r}")
        lo, hi = self.seconds
        if not 0.1 <= lo <= hi <= 10.0:
            raise ValueError(f"reject config seconds must be a range within 0.1-10 s, got {self.seconds}")
        lo, hi = self.level_rms
        if not 0 < lo <= hi <= 32767:
            raise ValueError(f"reject config level_rms must be a range within 0-32767 LSB, got {self.level_rms}")
        for name in ("noise_kinds", "other_kinds"):
            known = {k for k, _ in (NOISE_KINDS if name == "noise_kinds" else OTHER_KINDS)}
            kinds = getattr(self, name)
            bad = [k for k, w in kinds if k not in known or w < 0]
            if bad or not any(w > 0 for _, w in kinds):
                raise ValueError(f"reject config {name}: unknown kinds or negative shares {bad} (known: "
                                 f"{', '.join(sorted(known))}; at least one share > 0)")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        if not self.noise_variants:  # written only when used: older records stay what they were
            del d["noise_variants"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RejectConfig":
        d = dict(d)
        for k in ("seconds", "level_rms", "classes"):
            if k in d:
                d[k] = tuple(d[k])
        for k in ("noise_kinds", "other_kinds"):
            if k in d:
                d[k] = tuple((str(a), float(b)) for a, b in d[k])
        return cls(**d)


DEFAULT_REJECT = RejectConfig()


def file_labels(names, metrics: dict) -> tuple[str, ...]:
    """The labels a model's data folder holds: its output labels without the trailing classes --reject made
    (`noise` and `other`, or `noise` alone: its metrics.json's reject config says which), since those clips are
    made, not read. A folder per label with its own `noise` and `other` folders keeps them."""
    made = (metrics.get("reject") or {}).get("config")
    if not made:
        return tuple(names)
    return tuple(names[: -len(made.get("classes", REJECT_LABELS))])


def noise_root(data_dir: str | Path | None = None) -> Path | None:
    """The real noise/RIR/speech folder: $SD_NOISE_DIR, else ``noise`` beside the FSDD folder (../shared/data
    holds both), else ../shared/data/noise beside the repository; None when there is none."""
    env = os.environ.get("SD_NOISE_DIR")
    cands = [Path(env)] if env else []
    if data_dir is not None:
        d = Path(data_dir).resolve()
        cands += [d.parent / "noise", d.parent.parent / "noise"]
    cands.append(Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "noise")
    for c in cands:
        if (c / "noise").is_dir():
            return c
    return None


def _read_folder(folder: Path, keep, min_len: int = SR // 4) -> list[tuple[str, np.ndarray]]:
    from train.data import read_wav

    out = []
    for p in sorted(folder.glob("*.wav")) if folder.is_dir() else []:
        if keep(p.name):
            x = np.asarray(read_wav(p, SR), np.float64)
            if len(x) >= min_len and np.any(x):
                out.append((p.name, x))
    return out


def noise_split(name: str) -> str:
    """Which split a noise recording of ../shared/data/noise/noise belongs to: "test" (`HELD_OUT_NOISE`), "val"
    (`VALIDATION_NOISE`) or "train"."""
    return "test" if name in HELD_OUT_NOISE else "val" if name in VALIDATION_NOISE else "train"


@dataclass
class Sources:
    """The real recordings one split may use."""

    noise: list[tuple[str, np.ndarray]]
    speech: list[tuple[str, np.ndarray]]
    rir: list[tuple[str, np.ndarray]]

    @classmethod
    def load(cls, root: Path | None, split: str, variants: int = 0, seed: int = 0) -> "Sources":
        """``variants``: varied copies of each training noise recording (`vary_noise`; the training split only)."""
        if root is None:
            return cls([], [], [])
        test = split == "test"
        noise = _read_folder(root / "noise", lambda n: noise_split(n) == split)
        if split == "train" and variants:
            noise += noise_variants(noise, variants, seed)
        speech = _read_folder(root / "speech", lambda n: n.startswith(TEST_SPEECH_PREFIX) == test)
        rir = _read_folder(root / "rir", lambda n: True, min_len=1)
        return cls(noise, speech, rir)


def augment_pool(root: Path | None, variants: int = 0, seed: int = 0) -> "Pool | None":
    """The training noises (and ``variants`` varied copies of each) and the room responses for digit augmentation
    (train/augment.py); None without the folder. The held-out noise files are never in it."""
    from train.augment import Pool

    if root is None:
        return None
    src = Sources.load(root, "train", variants, seed)
    return Pool(tuple(x for _, x in src.noise), tuple(x for _, x in src.rir))


def vary_noise(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One varied copy of a noise recording, at unit RMS: played 0.6-1.6 times as fast (every frequency and every
    rhythm scaled alike: a smaller or larger machine, faster or slower rain), tilted by a first-order filter
    (y[n] = x[n] + b x[n-1], b in -0.9..0.9: duller or brighter), and with a slow loudness contour (0.3-6 Hz,
    depth up to 90 %: gusts, passing sources)."""
    speed = float(np.exp(rng.uniform(np.log(0.6), np.log(1.6))))
    y = np.interp(np.arange(0.0, len(x) - 1, speed), np.arange(len(x)), x)
    b = float(rng.uniform(-0.9, 0.9))
    y = y + b * np.concatenate([[0.0], y[:-1]])
    t = np.arange(len(y)) / SR
    y = y * (1.0 + rng.uniform(0.0, 0.9) * np.sin(2 * np.pi * rng.uniform(0.3, 6.0) * t + rng.uniform(0, 2 * np.pi)))
    return _unit(y)


def noise_variants(noise: list[tuple[str, np.ndarray]], variants: int, seed: int) -> list[tuple[str, np.ndarray]]:
    """``variants`` varied copies (`vary_noise`) of each recording, named ``NAME~vK``, each drawn from its own
    seeded generator (the same recordings and seed give the same copies)."""
    out = []
    for name, x in noise:
        for k in range(variants):
            h = int.from_bytes(hashlib.sha256(f"{seed}/{name}/{k}".encode()).digest()[:8], "little")
            out.append((f"{name}~v{k}", vary_noise(x, np.random.default_rng(h)) * float(np.sqrt(np.mean(x * x)))))
    return out


# -- synthetic noises ---------------------------------------------------------------------------
def _unit(x: np.ndarray) -> np.ndarray:
    return x / max(float(np.sqrt(np.mean(x * x))), 1e-12)


def coloured(n: int, rng: np.random.Generator, kind: str) -> np.ndarray:
    """Unit-RMS white, pink (1/f) or brown (1/f^2) noise."""
    w = rng.standard_normal(n)
    if kind == "white":
        return _unit(w)
    spec = np.fft.rfft(w)
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    spec /= np.sqrt(f) if kind == "pink" else f
    spec[0] = 0.0
    return _unit(np.fft.irfft(spec, n))


def hum(n: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum: 50 or 60 Hz (+-2 %) and random harmonics up to 1 kHz, with a little hiss."""
    f0 = (50.0 if rng.random() < 0.5 else 60.0) * rng.uniform(0.98, 1.02)
    t = np.arange(n) / SR
    y = np.zeros(n)
    for h in range(1, int(1000 // f0) + 1):
        if h == 1 or rng.random() < 0.5:
            y += rng.uniform(0.05, 1.0) / h ** rng.uniform(0.0, 1.0) * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 2 * np.pi))
    return _unit(_unit(y) + coloured(n, rng, "white") * 10 ** (-rng.uniform(15, 40) / 20))


def clicks(n: int, rng: np.random.Generator) -> np.ndarray:
    """Clicks and ticks (a clock, a keyboard, a dripping tap): short decaying bursts over faint noise."""
    y = coloured(n, rng, "pink") * 10 ** (-rng.uniform(20, 40) / 20)
    for _ in range(int(rng.integers(1, 12))):
        at = int(rng.integers(0, n))
        k = int(rng.integers(8, 400))
        burst = rng.standard_normal(k) * np.exp(-np.arange(k) / rng.uniform(3, k / 2 + 4))
        if rng.random() < 0.5:  # a resonant tick
            burst *= np.sin(2 * np.pi * rng.uniform(300, 3500) / SR * np.arange(k))
        m = min(k, n - at)
        y[at : at + m] += burst[:m] * rng.uniform(1, 20)
    return _unit(y)


def chirps(n: int, rng: np.random.Generator) -> np.ndarray:
    """Bird-like calls over faint noise: 1-8 calls of 20-250 ms, each a frequency sweep between 1.2 and 3.9 kHz,
    some with a trill (a fast vibrato) and a second harmonic, under a smooth envelope."""
    y = coloured(n, rng, ("pink", "brown")[int(rng.integers(0, 2))]) * 10 ** (-rng.uniform(20, 45) / 20)
    for _ in range(int(rng.integers(1, 9))):
        k = int(rng.uniform(0.02, 0.25) * SR)
        at = int(rng.integers(0, max(1, n - k // 2)))
        t = np.arange(k) / SR
        f = np.linspace(rng.uniform(1200, 3900), rng.uniform(1200, 3900), k)
        if rng.random() < 0.5:
            f = f + rng.uniform(50, 400) * np.sin(2 * np.pi * rng.uniform(15, 60) * t)
        f = np.clip(f, 100.0, 3950.0)
        phase = 2 * np.pi * np.cumsum(f) / SR
        call = np.sin(phase)
        if rng.random() < 0.3 and f.max() < 1950:
            call += rng.uniform(0.1, 0.5) * np.sin(2 * phase)
        call *= np.hanning(k) * rng.uniform(0.3, 1.0)
        m = min(k, n - at)
        y[at : at + m] += call[:m] * rng.uniform(5, 40)
    return _unit(y)


def tones(n: int, rng: np.random.Generator) -> np.ndarray:
    """Music-like sound: notes of 80-500 ms on a semitone grid from 110 to 880 Hz, each with 1-6 harmonics
    under an attack-decay envelope, one or two voices at once, over faint noise."""
    y = coloured(n, rng, "pink") * 10 ** (-rng.uniform(25, 50) / 20)
    for _ in range(int(rng.integers(1, 3))):
        pos = int(rng.integers(0, SR // 10))
        while pos < n:
            k = int(rng.uniform(0.08, 0.5) * SR)
            f0 = 110.0 * 2 ** (int(rng.integers(0, 37)) / 12)
            t = np.arange(k) / SR
            note = np.zeros(k)
            for h in range(1, int(rng.integers(1, 7)) + 1):
                if f0 * h < 3900:
                    note += rng.uniform(0.2, 1.0) / h * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 2 * np.pi))
            env = np.minimum(1.0, t / rng.uniform(0.005, 0.05)) * np.exp(-t / rng.uniform(0.05, 0.6))
            m = min(k, n - pos)
            y[pos : pos + m] += (note * env)[:m] * rng.uniform(0.5, 1.0)
            pos += int(k * rng.uniform(0.6, 1.2))
    return _unit(y)


def modulated(n: int, rng: np.random.Generator) -> np.ndarray:
    """Procedural non-stationary noise, a family that no handful of recordings covers: white noise under a random
    spectral envelope (a tilt of -6 to +2 dB per octave and up to three resonances of +-15 dB, sometimes with the
    lows cut), its level moved by a slow random envelope (0.3-8 changes per second, 0-24 dB deep: gusts, traffic,
    a tap turned up and down) and, two times in five, a shower of short decaying impulses (5-300 per second:
    rain, gravel, crackle)."""
    m = n + 256
    f = np.fft.rfftfreq(m, 1.0 / SR)
    lf = np.log2(np.maximum(f, 30.0) / 1000.0)
    gain_db = rng.uniform(-6.0, 2.0) * lf
    for _ in range(int(rng.integers(0, 4))):
        gain_db += rng.uniform(-15.0, 15.0) * np.exp(-0.5 * ((lf - rng.uniform(-3.3, 1.9)) / rng.uniform(0.15, 1.0)) ** 2)
    if rng.random() < 0.3:
        gain_db[f < rng.uniform(100.0, 600.0)] -= 30.0
    shape = 10 ** (gain_db / 20)
    y = np.fft.irfft(np.fft.rfft(rng.standard_normal(m)) * shape, m)[:n]
    k = max(2, int(n / SR * rng.uniform(0.3, 8.0)) + 2)
    env = np.interp(np.linspace(0.0, k - 1.0, n), np.arange(k), rng.standard_normal(k))
    env = (env - env.min()) / (np.ptp(env) + 1e-9) * rng.uniform(0.0, 24.0)
    y = _unit(y) * 10 ** (env / 20)
    if rng.random() < 0.4:
        drops = np.zeros(m)
        count = int(rng.uniform(5.0, 300.0) * n / SR) + 1
        at = rng.integers(0, n, count)
        drops[at] = rng.standard_normal(count) * np.exp(rng.normal(0.0, 0.7, count))
        decay = np.exp(-np.arange(int(rng.integers(20, 300))) / rng.uniform(3.0, 60.0))
        drops = np.convolve(drops, decay)[:m]
        drops = np.fft.irfft(np.fft.rfft(drops) * shape, m)[:n]
        y = y + _unit(drops) * 10 ** (rng.uniform(-10.0, 10.0) / 20)
    return _unit(y)


def _stretch(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n samples of x from a random offset, wrapping round."""
    start = int(rng.integers(0, len(x)))
    return x[(start + np.arange(n)) % len(x)]


def _level(rng: np.random.Generator, cfg: RejectConfig) -> float:
    lo, hi = np.log(cfg.level_rms[0]), np.log(cfg.level_rms[1])
    return float(np.exp(rng.uniform(lo, hi)))


def _int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def _kinds(table, n: int, rng: np.random.Generator, have: set[str]) -> list[str]:
    names = [k for k, w in table if k in have and w > 0]
    p = np.array([w for k, w in table if k in have and w > 0], np.float64)
    return [names[i] for i in rng.choice(len(names), n, p=p / p.sum())]


def noise_clip(kind: str, rng: np.random.Generator, cfg: RejectConfig, src: Sources) -> np.ndarray:
    n = int(rng.uniform(*cfg.seconds) * SR)
    if kind == "real":
        _, x = src.noise[int(rng.integers(0, len(src.noise)))]
        y = _unit(_stretch(x, n, rng))
    elif kind in ("white", "pink", "brown"):
        y = coloured(n, rng, kind)
    elif kind == "hum":
        y = hum(n, rng)
    elif kind == "clicks":
        y = clicks(n, rng)
    elif kind == "chirps":
        y = chirps(n, rng)
    elif kind == "tones":
        y = tones(n, rng)
    elif kind == "modulated":
        y = modulated(n, rng)
    elif kind == "silence":
        return _int16(coloured(n, rng, "white") * rng.uniform(0.0, 3.0))
    elif kind == "mix":
        _, x = src.noise[int(rng.integers(0, len(src.noise)))]
        y = _unit(_unit(_stretch(x, n, rng)) + coloured(n, rng, ("white", "pink", "brown")[int(rng.integers(0, 3))])
                  * 10 ** (rng.uniform(-15, 5) / 20))
    else:
        raise ValueError(f"unknown noise kind {kind!r}")
    return _int16(y * _level(rng, cfg))


def other_clip(kind: str, rng: np.random.Generator, cfg: RejectConfig, src: Sources, digits: list,
               words: list[np.ndarray]) -> np.ndarray:
    """``digits``: the split's FSDD clips (objects with samples, label, speaker)."""
    if kind == "reversed":
        return digits[int(rng.integers(0, len(digits)))].samples[::-1].copy()
    if kind == "splice":
        a = digits[int(rng.integers(0, len(digits)))]
        b = a
        while b.label == a.label:
            b = digits[int(rng.integers(0, len(digits)))]
        ka = int(len(a.samples) * rng.uniform(0.35, 0.6))
        kb = int(len(b.samples) * rng.uniform(0.4, 0.65))
        ga = np.sqrt(np.mean(a.samples.astype(np.float64) ** 2)) + 1e-9
        gb = np.sqrt(np.mean(b.samples.astype(np.float64) ** 2)) + 1e-9
        return _int16(np.concatenate([a.samples[:ka].astype(np.float64), b.samples[-kb:] * (ga / gb)]))
    if kind == "babble":
        n = int(rng.uniform(*cfg.seconds) * SR)
        y = np.zeros(n)
        for _ in range(int(rng.integers(3, 7))):
            c = digits[int(rng.integers(0, len(digits)))].samples.astype(np.float64)
            at = int(rng.integers(-len(c) // 2, n))
            lo, hi = max(at, 0), min(at + len(c), n)
            if hi > lo:
                y[lo:hi] += _unit(c)[lo - at : hi - at] * 10 ** (rng.uniform(-6, 0) / 20)
        return _int16(_unit(y) * _level(rng, cfg) * 3)
    if kind == "sentence":
        _, x = src.speech[int(rng.integers(0, len(src.speech)))]
        n = min(int(rng.uniform(*cfg.seconds) * SR), len(x))
        at = int(rng.integers(0, len(x) - n + 1))
        return _int16(x[at : at + n])
    if kind == "words":
        return words[int(rng.integers(0, len(words)))].copy()
    raise ValueError(f"unknown other kind {kind!r}")


def flite_words(split: str, cfg: RejectConfig, *, progress: bool = False) -> list[np.ndarray]:
    """The split's `OTHER_WORDS` said by every flite voice, ``word_variants`` takes each (a cache folder keyed by
    the settings); [] without flite."""
    from train import synth
    from train.data import read_wav, write_wav

    voices = synth.flite_voices()
    if not voices:
        return []
    words = [w for w in OTHER_WORDS if word_split(w) == split]
    key = hashlib.sha256(repr((2, words, voices, cfg.word_variants, cfg.seed)).encode()).hexdigest()[:16]
    folder = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "spoken-digits" / "other-words" / key
    paths = []
    todo = [(w, v, k) for w in words for v in voices for k in range(cfg.word_variants)]
    if progress:
        from tqdm import tqdm

        todo = tqdm(todo, desc=f"flite non-digit words ({split})", unit="clip", leave=False)
    folder.mkdir(parents=True, exist_ok=True)
    for w, v, k in todo:
        p = folder / f"{w.replace(' ', '-')}_{v}_{k}.wav"
        if not p.is_file():
            r = np.random.default_rng(int.from_bytes(hashlib.sha256(f"{cfg.seed}/{w}/{v}/{k}".encode()).digest()[:8], "little"))
            # Several trainings may fill the cache at once (benchmark folds run in parallel): each writes its own
            # temporaries and moves the finished file into place, so none reads another's half-written file.
            tmp, part = (p.with_name(f"{p.stem}.{os.getpid()}.{x}.wav") for x in ("flite", "part"))
            synth.flite_say(v, w, tmp, stretch=float(r.uniform(0.85, 1.25)), pitch=float(r.uniform(0.8, 1.25)))
            quiet = logging.getLogger("train.data")
            level, quiet.level = quiet.level, logging.WARNING  # flite speaks at 16 kHz: no note per file
            try:
                write_wav(part, read_wav(tmp, SR), SR)
            finally:
                quiet.level = level
                tmp.unlink(missing_ok=True)
            os.replace(part, p)
        paths.append(p)
    return [np.asarray(read_wav(p, SR), np.int16) for p in paths]


def make_clips(split: str, digits: list, cfg: RejectConfig, root: Path | None, *, progress: bool = False
               ) -> list[tuple[np.ndarray, str, str]]:
    """(int16 samples, label, origin) of the split's noise and other clips, in a fixed order for the seed."""
    src = Sources.load(root, split, cfg.noise_variants, cfg.seed)
    words = flite_words(split, cfg, progress=progress)
    rng = np.random.default_rng((cfg.seed, 0 if split == "train" else 1))
    have_noise = {k for k, _ in NOISE_KINDS} - (set() if src.noise else {"real", "mix"})
    have_other = {k for k, _ in OTHER_KINDS} - (set() if src.speech else {"sentence"}) - (set() if words else {"words"})
    if len({c.label for c in digits}) < 2:
        have_other -= {"reversed", "splice", "babble"}
    if OTHER not in cfg.classes:
        have_other = set()
    n_noise = cfg.noise_train if split == "train" else cfg.noise_test
    n_other = cfg.other_train if split == "train" else cfg.other_test
    # test clips keep the default mix whatever the training shares, so rejection figures compare across recipes
    noise_kinds, other_kinds = (cfg.noise_kinds, cfg.other_kinds) if split == "train" else (NOISE_KINDS, OTHER_KINDS)
    out = []
    for kind in _kinds(noise_kinds, n_noise, rng, have_noise):
        out.append((noise_clip(kind, rng, cfg, src), NOISE, f"{ORIGIN}:{NOISE}:{kind}"))
    if have_other:
        for kind in _kinds(other_kinds, n_other, rng, have_other):
            out.append((other_clip(kind, rng, cfg, src, digits, words), OTHER, f"{ORIGIN}:{OTHER}:{kind}"))
    return out


def extend(ds, split: str, cfg: RejectConfig = DEFAULT_REJECT, root: Path | None = None, *, progress: bool = False):
    """FSDD's dataset plus the noise and other clips of ``split`` (the two labels after the digits).

    The clips made from FSDD audio come from the split's own part: training clips from its training part, test
    clips from its test part."""
    from train import data as D

    if ds.layout != D.LAYOUT_FSDD:
        raise ValueError("--reject adds `noise` and `other` to FSDD's digits; for a folder per label, add a "
                         "folder for each instead (docs/your-own-words.md)")
    if any(n in ds.names for n in REJECT_LABELS):
        raise ValueError(f"the data already has a label named {NOISE!r} or {OTHER!r}")
    train_idx, test_idx = D.split_indices(ds, split)
    names = tuple(ds.names) + tuple(cfg.classes)
    clips = list(ds.clips)
    counts = {}
    for part, idx in (("train", train_idx), ("test", test_idx)):
        made = make_clips(part, [ds.clips[i] for i in idx], cfg, root, progress=progress)
        for j, (x, label, origin) in enumerate(made):
            clips.append(D.Clip(Path(f"<{origin}:{part}:{j}>"), names.index(label), origin.split(":", 1)[1], None, x,
                                part, origin=origin))
            counts[f"{part}/{origin.split(':', 1)[1]}"] = counts.get(f"{part}/{origin.split(':', 1)[1]}", 0) + 1
    notes = list(ds.notes) + [f"rejection clips ({'real recordings from ' + str(root) if root else 'no real noise folder: synthetic noise only'}): "
                              + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))]
    out = D.Dataset(ds.root, clips, ds.errors, notes, names, ds.layout, ds.background)
    return out, counts


def rejected(pred: np.ndarray, names) -> np.ndarray:
    """True where the predicted label is not a digit."""
    from train.labels import Labels

    lab = Labels(tuple(names))
    return np.array([lab.digit(int(p)) is None for p in pred], bool)
