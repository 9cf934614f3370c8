"""Training windows cut by the detector itself, from streams of training clips (issue 20).

A clip teaches the model one window per word, cut by a rule. On the device
the windows are cut by the streaming detector (train/stream.py): its gate
opens on whatever is loud enough, a window starts a few frames before the
gate opened and the next ones follow every ``slide_stride`` frames, and the
front end's noise floor has been following the background for seconds.
This module makes training examples exactly that way:

1. streams of the *fitted* training clips (never validation or test clips)
   are strung together by `train.streamgen.make_stream`, clean or over noise
   (the real training recordings of the augmentation pool, or white or pink
   noise, or with ``synthetic_share`` procedural non-stationary noise,
   `train.reject.modulated`) at an SNR drawn in ``snr_db``, with the stream's
   level drifts and steps; and minutes of training noise alone, with level
   jumps;
2. each stream goes through the integer front end from its first frame
   (`StreamAnalysis`: the noise floor is carried, as on the device) and the
   detector's gate, with the default constants but a finer stride and
   several window starts, so that every position a window can take is seen;
3. each window gets a label from the stream's truth: the digit when it
   starts no more than ``start_inside`` frames into the word and holds at
   least ``cover`` of it; `noise` when it overlaps no word (by more than a
   frame): the windows the gate opens on background sounds, which are
   exactly the windows that became false digits; any other window (a word's
   tail, two words) is left out.

Only training material is used: the fitted clips and the pool's recordings
(never `HELD_OUT_NOISE` or `VALIDATION_NOISE`), so the stream benchmark's
voices and noise, and the noise that choices are made on, stay unseen.
Everything is drawn from ``seed``.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, replace
from types import SimpleNamespace

import numpy as np

from train import features as F

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class StreamWindowConfig:
    """How many streams, over what, and which windows become examples."""

    streams: int = 300
    """Digit streams of 10 clips each (0 = none)."""
    noise_minutes: float = 20.0
    """Minutes of training noise alone (real recordings with level jumps, or coloured without a pool)."""
    snr_db: tuple[float, float] = (0.0, 30.0)
    """SNR range of the noisy digit streams, in dB (speech RMS over noise RMS)."""
    clean_share: float = 0.15
    """Share of the digit streams with no added noise."""
    real_share: float = 0.6
    """Share of the noisy digit streams over a real recording (with a pool; else white or pink)."""
    synthetic_share: float = 0.0
    """Share of the noisy digit streams and of the noise-alone minutes over procedural noise (`SYNTHETIC_BANK`
    recordings of `train.reject.modulated`, made from the seed) instead; the rest follow ``real_share``."""
    window_pres: tuple[int, ...] = (0, 2, 4)
    """The detector is run with each of these window_pre values; every window any of them asks for is used."""
    stride: int = 4
    """slide_stride of those runs (finer than the device's, to see more positions)."""
    start_inside: int = 3
    """A digit window starts at most this many frames after the word's first sample."""
    cover: float = 0.7
    """... and holds at least this share of the word (first to last spoken sample)."""
    max_noise_ratio: float = 1.0
    """At most this many `noise` windows per digit window (a seeded draw keeps that many)."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.streams < 0 or self.noise_minutes < 0:
            raise ValueError(f"stream windows: streams ({self.streams}) and noise_minutes ({self.noise_minutes}) "
                             f"must be >= 0")
        lo, hi = self.snr_db
        if not -10.0 <= lo <= hi <= 60.0:
            raise ValueError(f"stream windows: snr_db must be a range within -10..60 dB, got {self.snr_db}")
        for name in ("clean_share", "real_share", "synthetic_share", "cover"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"stream windows: {name} must be in [0, 1], got {getattr(self, name)}")
        if not self.window_pres or any(w < 0 for w in self.window_pres) or self.stride < 1:
            raise ValueError(f"stream windows: need window_pres >= 0 and stride >= 1, got {self.window_pres}, "
                             f"{self.stride}")
        if self.max_noise_ratio < 0:
            raise ValueError(f"stream windows: max_noise_ratio must be >= 0, got {self.max_noise_ratio}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def label_window(start: int, truth, n_frames: int, hop: int, cfg: StreamWindowConfig) -> int | None:
    """The label index of the window of frames [start, start + n_frames) of a stream with ``truth``
    (`train.streamgen.Truth`, digit = label index): a digit, -1 for `noise`, or None (left out)."""
    end = start + n_frames
    hits, touched = [], False
    for t in truth:
        f0, f1 = t.start / hop, (t.spoken_end + 1) / hop
        overlap = max(0.0, min(end, f1) - max(start, f0))
        if overlap > 1.0:
            touched = True
        if start <= f0 + cfg.start_inside and overlap >= cfg.cover * (f1 - f0):
            hits.append(t.digit)
    if len(hits) == 1:
        return int(hits[0])
    return -1 if not touched else None


SYNTHETIC_BANK = (48, 6.0)
"""Procedural recordings made for ``synthetic_share`` (count, seconds each): streams draw 2-10 s stretches of them
as they do of real recordings."""


def synthetic_bank(seed: int):
    """A `train.streamgen.NoiseBank` of `SYNTHETIC_BANK` procedural recordings (`train.reject.modulated`)."""
    from train import reject as RJ
    from train import streamgen as G

    rng = np.random.default_rng((seed, 0x5E17))
    count, seconds = SYNTHETIC_BANK
    return G.NoiseBank.of([RJ.modulated(int(seconds * G.SR), rng) for _ in range(count)])


def _bank(pool):
    """The pool's recordings as a `train.streamgen.NoiseBank` (unit RMS each), or None."""
    from train import streamgen as G

    if pool is None or not pool.noises:
        return None
    return G.NoiseBank.of(pool.noises)


def stream_windows(clips: list, labels: np.ndarray, cfg: F.FrontendConfig, swcfg: StreamWindowConfig,
                   noise_label: int, *, pool=None, progress: bool = False) -> tuple[np.ndarray, np.ndarray, dict]:
    """Normalized training windows and their labels [shapes (n, n_frames, n_mels), (n,)] from streams of
    ``clips`` (int16 arrays, label indices ``labels``), and a summary of what was made.

    ``cfg`` must hold the training set's normalization; ``noise_label`` is the `noise` class's index."""
    from train import stream as S
    from train import streamgen as G

    if not cfg.is_integer:
        raise ValueError("stream windows need the integer front end (--frontend 2): its state is what they carry")
    rng = np.random.default_rng((swcfg.seed, 0x5717))
    bank = _bank(pool)
    made = synthetic_bank(swcfg.seed) if swcfg.synthetic_share > 0 else None
    items = [SimpleNamespace(samples=np.asarray(c, np.int16), digit=int(lab)) for c, lab in zip(clips, labels)]
    n, hop = cfg.n_frames, cfg.step_hop  # the detector counts time steps (frames with frame_pool 1)
    jobs = []
    for _ in range(swcfg.streams):
        if rng.random() < swcfg.clean_share:
            jobs.append(("clean", None, "white"))
        elif made is not None and rng.random() < swcfg.synthetic_share:
            jobs.append(("synthetic", float(rng.uniform(*swcfg.snr_db)), "synthetic"))
        else:
            kind = "real" if bank is not None and rng.random() < swcfg.real_share else ("white", "pink")[int(rng.integers(2))]
            jobs.append((kind, float(rng.uniform(*swcfg.snr_db)), kind))
    for _ in range(int(round(swcfg.noise_minutes))):
        if made is not None and rng.random() < swcfg.synthetic_share:
            jobs.append(("noise", None, "synthetic"))
        else:
            jobs.append(("noise", None, "real" if bank is not None else ("white", "pink")[int(rng.integers(2))]))
    windows, ys = [], []
    counts = {"streams": 0, "digit": 0, "noise_in_digit_streams": 0, "noise_in_noise_streams": 0, "left_out": 0,
              "by_noise": {}}
    it = jobs
    if progress:
        from tqdm import tqdm

        it = tqdm(jobs, desc="stream windows", unit="stream", leave=False)
    for what, snr, kind in it:
        if what == "noise":
            if kind in ("real", "synthetic"):
                st = G.real_noise_stream(60.0, rng, bank if kind == "real" else made)
            else:
                st = G.noise_stream(60.0, rng, kind=kind, rms=float(10 ** rng.uniform(1.5, 3.5)))
        elif kind == "synthetic":
            st = G.make_stream(items, rng, snr_db=snr, noise="real", bank=made)
        else:
            st = G.make_stream(items, rng, snr_db=snr, noise=kind, bank=bank)
        a = S.StreamAnalysis(st.samples, cfg)
        starts: set[int] = set()
        for wp in swcfg.window_pres:
            scfg = replace(S.DEFAULT_STREAM, window_pre=wp, slide_stride=swcfg.stride)
            starts.update(u.window_start for u in S.detect(a.energies, scfg, n, a.bands(scfg.band_taps)) if u.window)
        counts["streams"] += 1
        source = "none" if what == "clean" else kind
        counts["by_noise"][source] = counts["by_noise"].get(source, 0) + 1
        for k in sorted(starts):
            if k < 0 or k + n > len(a.frames):
                continue
            lab = label_window(k, st.truth, n, hop, swcfg)
            if lab is None:
                counts["left_out"] += 1
                continue
            if lab < 0:
                counts["noise_in_noise_streams" if what == "noise" else "noise_in_digit_streams"] += 1
                lab = noise_label
            else:
                counts["digit"] += 1
            windows.append(a.frames[k : k + n])
            ys.append(lab)
    y = np.asarray(ys, np.int64)
    keep = np.arange(len(y))
    noise_rows = np.flatnonzero(y == noise_label)
    cap = int(swcfg.max_noise_ratio * counts["digit"])
    if len(noise_rows) > cap:
        drop = rng.choice(noise_rows, len(noise_rows) - cap, replace=False)
        keep = np.setdiff1d(keep, drop)
    counts["noise_kept"] = int(np.sum(y[keep] == noise_label))
    if not len(keep):
        return np.zeros((0, n, cfg.n_mels), np.float32), np.zeros(0, np.int64), counts
    x = F.normalize(np.stack([windows[i] for i in keep]).astype(np.float32), cfg)
    log.info("stream windows: %s", counts)
    return x, y[keep], counts
