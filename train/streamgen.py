"""Seeded test streams for continuous recognition, and their scoring.

`make_stream` strings FSDD clips together the way a person reads out a
number: random digits, 0.1-1.5 s gaps, a level that drifts from digit to
digit and steps once, background noise at a chosen SNR. The truth is each
clip's place in the stream. `score` applies the MLPerf Tiny streaming rule:
a detection counts for an utterance when it falls between the utterance's
start and 1 s after its end, and repeats within that span count once.

Streams are made from the clips given (the benchmark passes test-split clips
only; tuning passes training-split clips only).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SR = 8000


# An utterance ends with its last 32 ms frame within this many dB of its loudest (`speech_end`): a clip's
# trailing silence is not speech, and the latency (`score`) counts from the end of speech.
SPEECH_END_DB = 30.0


def speech_end(x: np.ndarray, frame: int = 256, below_db: float = SPEECH_END_DB) -> int:
    """Index of the last sample of ``x``'s last ``frame``-sample frame whose energy is within ``below_db`` of
    its loudest frame's (the last sample of ``x`` when it is silent)."""
    x = np.asarray(x, np.float64)
    n = len(x) // frame
    if n == 0:
        return len(x) - 1
    e = np.sum(x[: n * frame].reshape(n, frame) ** 2, axis=1)
    if e.max() <= 0:
        return len(x) - 1
    loud = np.flatnonzero(e >= e.max() * 10 ** (-below_db / 10))
    return min(len(x) - 1, (int(loud[-1]) + 1) * frame - 1)


@dataclass
class Truth:
    digit: int
    start: int
    end: int  # last sample
    speech_end: int | None = None  # last sample of speech (`speech_end`); None: ``end``

    @property
    def spoken_end(self) -> int:
        return self.end if self.speech_end is None else self.speech_end

    def shifted(self, by: int) -> "Truth":
        return Truth(self.digit, self.start + by, self.end + by, None if self.speech_end is None else self.speech_end + by)

    def to_dict(self) -> dict:
        return {"digit": self.digit, "start": self.start, "end": self.end, "speech_end": self.spoken_end}


@dataclass
class Stream:
    samples: np.ndarray  # int16
    truth: list[Truth]
    params: dict = field(default_factory=dict)

    @property
    def digits(self) -> str:
        return "".join(str(t.digit) for t in self.truth)


def _noise(n: int, rng: np.random.Generator, kind: str) -> np.ndarray:
    w = rng.standard_normal(n)
    if kind == "pink":  # 1/f power: shape white noise in the frequency domain
        spec = np.fft.rfft(w)
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        w = np.fft.irfft(spec / np.sqrt(f), n)
    elif kind != "white":
        raise ValueError(f"unknown noise kind {kind!r}; use 'white' or 'pink'")
    return w / (np.sqrt(np.mean(w * w)) + 1e-12)


class NoiseBank:
    """Real background noise recordings (a folder of WAVs, e.g. ../shared/data/noise/noise), each scaled to
    unit RMS; `draw` strings random stretches of them together."""

    def __init__(self, folder, sr: int = SR, only=None) -> None:
        """``only``: file names to keep (e.g. train/reject.py's HELD_OUT_NOISE: recordings no model trained on)."""
        from pathlib import Path

        from train.data import read_wav

        paths = [p for p in sorted(Path(folder).glob("*.wav")) if only is None or p.name in only]
        self._keep([(p.name, read_wav(p, sr)) for p in paths], f"{folder}: no usable noise recordings (*.wav, ", sr)

    @classmethod
    def of(cls, recordings) -> "NoiseBank":
        """A bank of recordings already read (arrays at ``SR``), e.g. train/augment.py's `Pool.noises`."""
        bank = cls.__new__(cls)
        bank._keep([(f"recording {i}", x) for i, x in enumerate(recordings)], "no usable noise recordings (")
        return bank

    def _keep(self, named, error: str, sr: int = SR) -> None:
        """Each recording (at ``sr``) of at least 0.5 s that is not silent, at unit RMS."""
        self.files: list[str] = []
        self.audio: list[np.ndarray] = []
        for name, x in named:
            x = np.asarray(x, np.float64)
            rms = np.sqrt(np.mean(x * x)) if len(x) else 0.0
            if rms > 0 and len(x) >= sr // 2:
                self.files.append(name)
                self.audio.append(x / rms)
        if not self.audio:
            raise ValueError(error + "at least 0.5 s, not silent)")

    @property
    def seconds(self) -> float:
        return sum(len(a) for a in self.audio) / SR

    def draw(self, n: int, rng: np.random.Generator, seg_s=(2.0, 10.0)) -> np.ndarray:
        """n samples: stretches of 2-10 s, each from a random recording at a random offset (wrapping round)."""
        out, pos = np.empty(n), 0
        while pos < n:
            a = self.audio[int(rng.integers(0, len(self.audio)))]
            k = min(n - pos, int(rng.uniform(*seg_s) * SR))
            start = int(rng.integers(0, len(a)))
            idx = (start + np.arange(k)) % len(a)
            out[pos : pos + k] = a[idx]
            pos += k
        return out


def _to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def make_stream(clips: list, rng: np.random.Generator, *, n_digits: int = 10, gap_s=(0.1, 1.5),
                snr_db: float | None = 20.0, noise: str = "pink", drift_db: float = 3.0, step_db: float = 6.0,
                lead_s: float = 1.0, sr: int = SR, bank: NoiseBank | None = None) -> Stream:
    """A stream of ``n_digits`` clips (objects with ``samples`` and ``digit``) drawn from ``clips``.

    Each digit's gain drifts by up to +-``drift_db``; halfway through, the
    whole stream steps by ``step_db`` (up or down); ``snr_db`` is the speech
    level (RMS over the clips) over the noise; None means no noise.
    ``noise="real"`` draws the noise from ``bank`` (real recordings).
    """
    picks = [clips[int(i)] for i in rng.integers(0, len(clips), n_digits)]
    gaps = rng.uniform(gap_s[0], gap_s[1], n_digits + 1)
    gaps[0] = max(gaps[0], lead_s)  # the detector's warm-up (0.5 s) and a floor to learn
    step = step_db * (1 if rng.random() < 0.5 else -1)
    parts, truth, pos, speech = [], [], 0, []
    for i, c in enumerate(picks):
        g = int(gaps[i] * sr)
        parts.append(np.zeros(g))
        pos += g
        gain_db = rng.uniform(-drift_db, drift_db) + (step if i >= n_digits // 2 else 0.0)
        x = c.samples.astype(np.float64) * 10 ** (gain_db / 20)
        parts.append(x)
        speech.append(x)
        truth.append(Truth(int(c.digit), pos, pos + len(x) - 1, pos + speech_end(x)))
        pos += len(x)
    tail = int(gaps[-1] * sr)
    parts.append(np.zeros(tail))
    y = np.concatenate(parts)
    if snr_db is not None:
        s = np.concatenate(speech)
        rms = np.sqrt(np.mean(s * s))
        if noise == "real":
            if bank is None:
                raise ValueError("noise='real' needs a NoiseBank")
            w = bank.draw(len(y), rng)
        else:
            w = _noise(len(y), rng, noise)
        y = y + w * rms / 10 ** (snr_db / 20)
    params = {"n_digits": n_digits, "gap_s": list(gap_s), "snr_db": snr_db, "noise": noise, "step_db": step,
              "drift_db": drift_db, "seconds": len(y) / sr}
    return Stream(_to_int16(y), truth, params)


def noise_stream(seconds: float, rng: np.random.Generator, *, kind: str = "pink", rms: float = 300.0,
                 step_db: float = 6.0, sr: int = SR) -> Stream:
    """Noise only (no digits): ``rms`` LSB, with one level step of ``step_db`` halfway."""
    n = int(seconds * sr)
    y = _noise(n, rng, kind) * rms
    y[n // 2 :] *= 10 ** (step_db / 20)
    return Stream(_to_int16(y), [], {"seconds": seconds, "noise": kind, "rms": rms, "step_db": step_db})


def real_noise_stream(seconds: float, rng: np.random.Generator, bank: NoiseBank, *, levels=(30.0, 100.0, 300.0, 1000.0, 3000.0),
                      change_s=(20.0, 60.0), sr: int = SR) -> Stream:
    """Real noise only (no digits): stretches of the bank's recordings whose RMS level (LSB) jumps to another of
    ``levels`` every 20-60 s."""
    n = int(seconds * sr)
    y = bank.draw(n, rng)
    gains, pos = np.empty(n), 0
    while pos < n:
        k = min(n - pos, int(rng.uniform(*change_s) * sr))
        gains[pos : pos + k] = levels[int(rng.integers(0, len(levels)))]
        pos += k
    return Stream(_to_int16(y * gains), [], {"seconds": seconds, "noise": "real", "levels": list(levels)})


def score(events: list, truth: list[Truth], sr: int = SR, *, tolerance_s: float = 1.0) -> dict:
    """MLPerf Tiny streaming rule on one stream.

    ``events``: objects or dicts with ``digit`` (None = rejected) and
    ``end`` (the detection's time: the device reports an utterance once it
    has ended). A detection belongs to the latest utterance that started at
    or before it, if it is no later than that utterance's end + tolerance;
    otherwise it is a false detection. An utterance is recalled when one of
    its detections has its digit; a wrong digit is a substitution; further
    detections for an already matched utterance are repeats (not counted).
    ``recalled_by``: for each recalled utterance, [its index, the index in
    ``events`` of its first right detection]; ``latency_samples``: that
    detection's time minus the end of its speech (`Truth.spoken_end`;
    negative when the digit was decided before the speaker stopped).
    """
    tol = int(tolerance_s * sr)
    hit = [False] * len(truth)
    seen_wrong = [False] * len(truth)
    false_det, subs, rejected = 0, 0, 0
    got: list[int] = []
    latency: list[int] = []
    recalled_by: list[list[int]] = []
    starts = np.array([t.start for t in truth], np.int64)
    for k, ev in enumerate(events):
        d = ev["digit"] if isinstance(ev, dict) else ev.digit
        t = int(ev["end"] if isinstance(ev, dict) else ev.end)
        if d is None:
            rejected += 1
            continue
        got.append(int(d))
        i = int(np.searchsorted(starts, t, side="right")) - 1
        if i < 0 or t > truth[i].end + tol:
            false_det += 1
            continue
        if d == truth[i].digit:
            if not hit[i]:
                latency.append(t - truth[i].spoken_end)
                recalled_by.append([i, k])
            hit[i] = True
        elif not hit[i] and not seen_wrong[i]:
            seen_wrong[i] = True
    subs = sum(1 for i in range(len(truth)) if seen_wrong[i] and not hit[i])
    per_digit = {}
    for dgt in range(10):
        idx = [i for i, t in enumerate(truth) if t.digit == dgt]
        if idx:
            per_digit[dgt] = [sum(hit[i] for i in idx), len(idx)]
    return {"utterances": len(truth), "recalled": int(sum(hit)), "substituted": subs,
            "missed": len(truth) - int(sum(hit)) - subs, "false_detections": false_det, "rejected": rejected,
            "digits": "".join(map(str, got)), "truth_digits": "".join(str(t.digit) for t in truth),
            "string_correct": "".join(map(str, got)) == "".join(str(t.digit) for t in truth),
            "per_digit": per_digit, "latency_samples": latency,
            "recalled_by": recalled_by}
