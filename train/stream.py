"""Continuous recognition: finding digits in an unbroken stream, defined once.

This module is the reference for the device's streaming mode: the C twin
(firmware/src/sd_stream.c) follows it frame by frame, with every constant
emitted from `StreamConfig` by convert/firmware_gen.py. Every decision is
made in integers, so the two sides cannot round differently.

The stream's frames are the front end's frames (train/features.py, steps 2
and 3) of the whole stream taken as one clip: frame ``k`` is centred on
sample ``k * hop`` (zeros before the stream's first sample) and is complete
once hop ``k`` has arrived, so a stream of ``n`` samples has ``n // hop``
frames. For each frame ``k`` the device already has its exact integer energy
``e[k]`` (sum of squared samples under the frame) and its fine int16 log-mel
values. With ``frame_pool`` 2 (train/features.py, step 3) everything below
counts time steps instead: step ``k`` is frames ``2k`` and ``2k + 1``, its
values their floor mean, its energies (``e`` and ``b``) the sums of theirs,
and its samples those of a frame of hop ``2 * hop`` (``step_hop``). Then, per
frame, in this order:

1. **Level.** ``L[k] = level(b[k])``: ``16 * floor(log2 b)`` plus the four
   bits below the leading one (0 for ``b <= 1``), a monotone integer
   approximation of ``16 * log2(b)``: one unit is 3.01 / 16 = 0.19 dB.
   ``b[k]`` is the frame's *band* energy: the exact integer sum of squares
   of ``y = (1 - z^-1) (1 + z^-1)^band_order x`` over the frame's two hops
   (samples before the stream are zeros): an integer FIR band-pass with a
   zero at DC and ``band_order`` zeros at 4 kHz (taps ``band_taps``; for
   order 4: 1 3 2 -2 -3 -1, most gain between 0.3 and 1.5 kHz), which keeps
   most of a voice's energy (its fundamental and first formants) and drops
   most of a broadband noise's, so a quiet digit stands further above a
   noisy floor and a DC offset or hiss does not look like speech. The device
   runs it as a cascade (a first difference, then ``band_order`` sums of
   neighbours) with its state carried from hop to hop: the same integers.
   With ``band_order = 0`` it is the frame energy ``e[k]`` itself (the
   detector of protocol version 3).
2. **Warm-up.** The first ``n_frames - 1`` frames only train the noise
   floor (the first model window is complete at frame ``n_frames - 1``).
   The floor ``F`` is kept in sixteenths of a level unit and starts at
   ``16 * L[0]``.
3. **Idle.** An utterance starts at ``k`` when ``L[k] >= F // 16 +
   start_delta`` and ``L[k] >= min_level``. Otherwise the floor follows the
   level: down by ``(F - 16 L) >> fall_shift``, up by ``(16 L - F) >>
   rise_shift``.
4. **Active** (from the start frame ``s`` on). A frame with ``L[k] >= F //
   16 + stop_delta`` is loud: it becomes the utterance's last frame and
   clears the quiet count; any other frame adds one to it. The floor keeps
   rising, slowly (``active_rise_shift``), so that a step up in the
   background cannot hold the detector active for ever. The utterance ends
   when the quiet count exceeds ``hangover`` (its last frame is the last
   loud one) or when it has lasted ``max_frames`` frames (its last frame is
   then the current one). One that ends shorter than ``min_frames`` frames
   (first to last) is dropped there and then: no event, idle again.
5. **Window.** While the utterance is open, each frame ``k`` closes the
   model window of frames ``k - n_frames + 1 .. k``; it is a candidate when
   it starts no earlier than ``s - window_pre``. The utterance is decided at
   the first frame ``D`` at which it has ended and has a candidate (a short
   word waits until ``s - window_pre + n_frames - 1``; frames in between
   only move the floor and offer windows). It is classified on the
   candidate with the largest summed frame energy, the earliest on a tie:
   the clip window rule (train/features.py step 3) applied to the frames
   ``s - window_pre .. D``. Like an FSDD clip, a short word starts its
   window and a long one gets its loudest part. The device does this with
   the clip mode's ring of ``n_frames`` fine frames and one saved int8
   window, nothing more.
6. **Event.** The window is quantized like a clip's (band-mean
   normalization over the window) and run through the int8 model; the event
   is the top-1 digit (first maximum) or ``None`` when the top-1 output
   exceeds the runner-up by less than ``reject_margin`` (int8 units), the
   utterance's first sample ``(s - 1) * hop`` (at least 0), its last sample
   ``(last + 1) * hop - 1`` and the ten int8 outputs. The detector is idle
   again from frame ``D + 1``.
7. **End of stream.** An utterance still open when the stream ends is
   decided at the stream's last frame, as if its quiet count had run out,
   if it has a candidate window and is at least ``min_frames`` long.

With ``slide_stride = s > 0`` (sliding windows) steps 5-7 are replaced:

5s. **Windows** (`Evaluation`). Let ``k0 = first - window_pre + n_frames -
   1``. While the utterance is open, the window ending at frame ``k`` is
   evaluated when ``k >= k0`` and ``(k - k0) % s == 0``; once it has ended
   (steps 3-4: quiet count, ``max_frames``) at frame ``c``, the window
   ending at the current frame is evaluated as its last, at frame ``max(c,
   min(k0, c + close_wait))``: a short word waits for ``k0`` (and its window
   starts ``window_pre`` frames before it), or at most ``close_wait`` frames,
   and then its window starts earlier, with the word towards its end. A
   click (shorter than ``min_frames``) with no window evaluated yet is
   dropped as before.
6s. **Decision** (`Smoother`: its docstring has the integer rule). Each
   window's int8 outputs join the utterance's last ``smooth_windows``; an
   event fires when the averaged top label is reportable and passes the
   threshold, the margin, the minimum count and the suppression time; an
   utterance that closes without one gives one event with its top
   rejection class, or rejected. The event's first sample is the
   utterance's, its last the decided window's: ``(k + 1) * hop - 1``.
7s. **End of stream.** An open utterance is closed at the last frame (if it
   has not ended before, ``c`` is that frame). When its last evaluation is
   due there (step 5s) it is evaluated there, or, when that frame's window
   was just evaluated, closed without a new window (`Evaluation.window`
   False); one whose evaluation is not due yet is dropped.

Samples are counted from the stream's first (``uint64`` on the device:
streams of any length).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from train import features as F


@dataclass(frozen=True, kw_only=True)
class StreamConfig:
    """Detector and rejection constants shared by the Python reference and the device.

    The defaults go with the released model (`noise` class, train/release.py) and were chosen for it by
    `python -m benchmarks.tune_stream` on *training*-split streams and the *training* noise recordings only,
    over the release recipe's three seeds: of 200 settings, the best mean recall with at most 12 false digits
    per hour on the training noise (docs/rejection.md, "Choosing the detector"): sliding windows behind a
    low gate (start_delta 20, stop_delta 10). Since then, on the same streams with three times the training
    noise (30 minutes per model) and slide_stride 12 (for cost: docs/rejection.md, "Cost"), the best mean
    recall at no more false digits than that choice: window_pre 2, outputs averaged over 2 windows and a
    top-1 margin of 224 (seven eighths of the softmax's range): 53.7 % against 52.2 %, 18.7 against 19.3
    false digits per hour (docs/rejection.md, "The window's start"). The gate's band filter and
    timing constants were chosen earlier, on 48 training-split streams and 12 minutes of noise.
    suppress_frames 16 stops a digit from firing again at later windows of the same utterance.
    The release since then trains on the detector's own windows (``--stream-windows``); the constants were not
    chosen again for it, because its training noise is now in the model's training (docs/rejection.md,
    "Training on the detector's own windows").
    """

    start_delta: int = 20
    """Level above the noise floor that starts an utterance (level units: 40 = 7.5 dB, 20 = 3.75 dB)."""
    stop_delta: int = 10
    """Level above the noise floor that keeps an utterance going (16 = 3.0 dB, 10 = 1.9 dB)."""
    min_level: int = 336
    """Lowest level that can start an utterance: 336 = level(2**21), for the band energy (step 1)
    (the frame energy of RMS 64 of full scale 32768 when band_taps is empty)."""
    hangover: int = 2
    """Quiet frames tolerated inside an utterance before it ends (2 x 32 ms)."""
    min_frames: int = 3
    """Shortest utterance that is classified, first to last loud frame (3 frames = 96 ms)."""
    max_frames: int = 48
    """Longest utterance: it is decided after this many frames (48 = 1.5 s)."""
    fall_shift: int = 2
    """The idle floor moves down a quarter of the way to a quieter frame's level."""
    rise_shift: int = 4
    """The idle floor moves up a sixteenth of the way to a louder frame's level."""
    active_rise_shift: int = 8
    """While active, the floor moves up 1/256 of the way to a louder frame's level."""
    window_pre: int = 2
    """The model window starts at most this many frames before the utterance's first loud frame."""
    reject_margin: int = 224
    """Minimum top-1 minus runner-up int8 output for a digit; below it the event is rejected (0: never).
    64 is a quarter of the softmax's range (output scale 1/256), 192 three quarters."""
    band_order: int = 4
    """The band filter of step 1: (1 - z^-1)(1 + z^-1)^band_order; 0 = none (the frame energy)."""
    slide_stride: int = 12
    """Sliding windows (steps 5s-6s): the model runs every this many frames while the gate is open;
    0 = one window per utterance, chosen by energy (steps 5-6)."""
    smooth_windows: int = 2
    """Sliding: outputs are averaged over this many most recent windows of the utterance (1-8)."""
    detect_threshold: int = -128
    """Sliding: the averaged top output must reach this (int8; scale 1/256 from -128: 0 = probability 0.5)."""
    min_count: int = 1
    """Sliding: windows needed in the average before a label can fire (the utterance's last window always can)."""
    suppress_frames: int = 16
    """Sliding: frames after a label event in which the same utterance fires no other."""
    close_wait: int = 255
    """Sliding: frames an ended utterance waits for its first window's end ``k0`` (step 5s); after that it is
    evaluated on the window ending at the current frame, which then starts before ``first - window_pre``. It
    bounds the latency of a word shorter than the window (0: decided where it ends; 255: never binding, as for
    any window of up to 256 frames, the rule before 2026-12-08)."""

    @property
    def band_taps(self) -> tuple[int, ...]:
        """The band filter's integer taps, newest sample first; () when band_order is 0."""
        if not self.band_order:
            return ()
        taps = np.array([1, -1], np.int64)
        for _ in range(self.band_order):
            taps = np.convolve(taps, [1, 1])
        return tuple(int(t) for t in taps)

    def __post_init__(self) -> None:
        ints = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name, v in ints.items():
            if not isinstance(v, int) or isinstance(v, bool) or (v < 0 and name != "detect_threshold"):
                raise ValueError(f"stream config {name} must be a non-negative integer, got {v!r}")
        if not -128 <= self.detect_threshold <= 127:
            raise ValueError(f"detect_threshold must be in -128 .. 127 (an int8 output), got {self.detect_threshold}")
        if self.stop_delta > self.start_delta:
            raise ValueError(f"stop_delta ({self.stop_delta}) must not exceed start_delta ({self.start_delta})")
        if not 1 <= self.min_frames <= self.max_frames:
            raise ValueError(f"need 1 <= min_frames <= max_frames, got {self.min_frames}, {self.max_frames}")
        if ints["band_order"] > 7:  # the device's int32 cascade: |y| <= 2^16 * 2^7
            raise ValueError(f"band_order must be in 0 .. 7, got {ints['band_order']}")
        for name in ("fall_shift", "rise_shift", "active_rise_shift"):
            if not 0 <= ints[name] <= 16:
                raise ValueError(f"{name} must be in 0 .. 16, got {ints[name]}")
        if self.reject_margin > 255:
            raise ValueError(f"reject_margin must be in 0 .. 255 (int8 outputs), got {self.reject_margin}")
        if self.slide_stride and not 4 <= self.slide_stride <= 64:
            raise ValueError(f"slide_stride must be 0 (one window per utterance) or 4 .. 64 frames (a STREAM chunk "
                             f"completes at most 3 frames), got {self.slide_stride}")
        if not 1 <= self.smooth_windows <= MAX_SMOOTH:
            raise ValueError(f"smooth_windows must be in 1 .. {MAX_SMOOTH}, got {self.smooth_windows}")
        if not 1 <= self.min_count <= self.smooth_windows:
            raise ValueError(f"min_count must be in 1 .. smooth_windows ({self.smooth_windows}), got {self.min_count}")
        if self.close_wait > 255:
            raise ValueError(f"close_wait must be in 0 .. 255, got {self.close_wait}")
        if self.suppress_frames > 1000:
            raise ValueError(f"suppress_frames must be in 0 .. 1000, got {self.suppress_frames}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "StreamConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown stream config fields: {unknown}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def sha256(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def changes(self, base: "StreamConfig | None" = None) -> str:
        """The fields that differ from ``base`` (default: the defaults) as ``name=value ...``; "(defaults)" if none."""
        b = (base or StreamConfig()).to_dict()
        return " ".join(f"{k}={v}" for k, v in self.to_dict().items() if b[k] != v) or "(defaults)"


MAX_SMOOTH = 8
"""Most windows `smooth_windows` may average (the device keeps that many outputs per utterance)."""

DEFAULT_STREAM = StreamConfig()

LEVEL_FRAC_BITS = 4
"""Bits below the leading one that `level` keeps (16 steps per octave)."""


def level(energy: int) -> int:
    """Integer level of a frame energy: 16 * floor(log2 e) + the next four bits (0 for e <= 1)."""
    e = int(energy)
    if e <= 1:
        return 0
    b = e.bit_length() - 1
    frac = ((e << LEVEL_FRAC_BITS) >> b) - (1 << LEVEL_FRAC_BITS)
    return (b << LEVEL_FRAC_BITS) + frac


def levels(energies: np.ndarray) -> np.ndarray:
    """`level` of every frame energy, int64 [shape=(T,)]."""
    return np.fromiter((level(int(e)) for e in energies), np.int64, count=len(energies))


@dataclass
class Utterance:
    """What the detector decided: frames, samples and the chosen model window."""

    first_frame: int
    last_frame: int
    decided_frame: int
    window_start: int
    """First frame of the chosen n_frames window."""

    def samples(self, hop: int) -> tuple[int, int]:
        return max(0, (self.first_frame - 1) * hop), (self.last_frame + 1) * hop - 1


@dataclass
class Evaluation:
    """Sliding mode (step 5s): a model window the detector asks for, or the end of an utterance.

    ``frame`` is the window's last frame; ``first_frame``/``last_frame`` the
    utterance's first and (so far) last loud frames; ``first``: the
    utterance's first evaluation; ``last``: its last (the smoothing closes
    it); ``window`` False: no new window (an utterance ended by the end of
    the stream at a frame already evaluated), only the close."""

    frame: int
    first_frame: int
    last_frame: int
    window_start: int
    first: bool
    last: bool
    window: bool = True

    @property
    def decided_frame(self) -> int:
        return self.frame

    def samples(self, hop: int) -> tuple[int, int]:
        """The event's first and last samples: the utterance's start, the evaluated window's end."""
        return max(0, (self.first_frame - 1) * hop), (self.frame + 1) * hop - 1


@dataclass
class Event:
    """A decided utterance: its label (the top-1 output's name, None when rejected), the digit that label
    stands for (None when rejected or not a digit: train/labels.py), its samples and the int8 outputs."""

    digit: int | None
    start: int
    end: int
    outputs: list[int]
    label: str | None = None

    def to_dict(self) -> dict:
        return {"digit": self.digit, "label": self.label, "start": self.start, "end": self.end,
                "outputs": list(self.outputs)}

    @classmethod
    def from_dict(cls, d: dict) -> "Event":
        return cls(d["digit"], int(d["start"]), int(d["end"]), [int(v) for v in d["outputs"]], d.get("label"))

    @classmethod
    def of_class(cls, index: int | None, start: int, end: int, outputs, labels=None) -> "Event":
        """The event of the top-1 output ``index`` (None: rejected), named by ``labels`` (FSDD digits by default)."""
        from train.labels import Labels

        lab = Labels() if labels is None else labels
        return cls(lab.digit(index), int(start), int(end), [int(v) for v in outputs], lab.name(index))


class Detector:
    """The per-frame state machine of the module docstring (steps 1-5, 7), fed one frame at a time.

    ``push(energy)`` takes frame k's exact energy and returns the utterances
    decided at that frame (at most one), or, when sliding, the `Evaluation`
    asked for there (at most one); ``finish()`` decides (closes) an
    utterance still active at the end of the stream. The window energies are kept as
    the device keeps them: the sum over the last n_frames frames.
    """

    def __init__(self, scfg: StreamConfig = DEFAULT_STREAM, n_frames: int = 16) -> None:
        if scfg.window_pre >= n_frames:
            raise ValueError(f"window_pre ({scfg.window_pre}) must be below the window's {n_frames} frames")
        self.scfg = scfg
        self.n = n_frames
        self.k = -1  # index of the last frame pushed
        self.floor = 0
        self.active = False
        self.recent: list[int] = []  # energies of the last n frames
        self.window_sum = 0
        self._reset_utterance()

    def _reset_utterance(self) -> None:
        self.active = False
        self.closing = False  # the utterance has ended; waiting for its first window to be complete
        self.first = self.last = -1
        self.quiet = 0
        self.best_sum = -1
        self.best_end = -1
        self.evals = 0  # sliding: windows evaluated in this utterance
        self.last_eval = -1  # sliding: the frame of the last one
        self.closed_at = -1  # the frame at which the utterance ended (quiet count, max_frames)

    def _first_window_end(self) -> int:
        """Sliding: the last frame of the utterance's first window (it starts window_pre frames early)."""
        return self.first - self.scfg.window_pre + self.n - 1

    def _evaluate(self, last: bool) -> Evaluation:
        ev = Evaluation(self.k, self.first, self.last, self.k - self.n + 1, self.evals == 0, last)
        self.evals += 1
        self.last_eval = self.k
        if last:
            self._reset_utterance()
        return ev

    def _due(self) -> int:
        """Sliding: the frame at which an ended utterance is evaluated for the last time: k0, or close_wait frames
        after it ended when that is sooner (and never before it ended)."""
        return max(self.closed_at, min(self._first_window_end(), self.closed_at + self.scfg.close_wait))

    def _slide(self) -> list:
        """Steps 5s: the window ending at this frame is evaluated on the schedule k0, k0 + stride, ...
        while the utterance is open, and once more (its last) when it has ended: at k0, or close_wait frames
        after its end when that is sooner."""
        if self.closing:
            return [self._evaluate(True)] if self.k >= self._due() else []
        k0 = self._first_window_end()
        if self.k < k0:
            return []
        if (self.k - k0) % self.scfg.slide_stride == 0:
            return [self._evaluate(False)]
        return []

    def _consider_window(self) -> None:
        start = self.k - self.n + 1
        if start >= 0 and start >= self.first - self.scfg.window_pre and self.window_sum > self.best_sum:
            self.best_sum = self.window_sum  # strict: the earliest wins a tie
            self.best_end = self.k

    def _decide(self, last: int) -> Utterance | None:
        u = Utterance(self.first, last, self.k, self.best_end - self.n + 1)
        keep = last - self.first + 1 >= self.scfg.min_frames
        self._reset_utterance()
        return u if keep else None

    def push(self, energy: int, band: int | None = None) -> list[Utterance]:
        """Frame k's energy (the window rule's) and band energy (the level's; None: the energy)."""
        c = self.scfg
        e = int(energy)
        self.k += 1
        self.recent.append(e)
        self.window_sum += e
        if len(self.recent) > self.n:
            self.window_sum -= self.recent.pop(0)
        lv = level(e if band is None else int(band))
        if self.k == 0:
            self.floor = lv << 4
        out: list[Utterance] = []
        if not self.active:
            if (self.k >= self.n - 1 and lv >= (self.floor >> 4) + c.start_delta and lv >= c.min_level):
                self.active = True
                self.first = self.last = self.k
                self.quiet = 0
                if c.slide_stride:
                    return self._slide()
                self._consider_window()
                return out
            target = lv << 4
            if target < self.floor:
                self.floor -= (self.floor - target) >> c.fall_shift
            else:
                self.floor += (target - self.floor) >> c.rise_shift
            return out
        # active
        target = lv << 4
        if not self.closing:
            if lv >= (self.floor >> 4) + c.stop_delta:
                self.last = self.k
                self.quiet = 0
            else:
                self.quiet += 1
            if self.quiet > c.hangover:
                if self.last - self.first + 1 < c.min_frames and self.evals == 0:  # a click: drop it, listen again
                    self._reset_utterance()
                    return out
                self.closing = True
                self.closed_at = self.k
            elif self.k - self.first + 1 >= c.max_frames:
                self.last = self.k
                self.closing = True
                self.closed_at = self.k
        if target > self.floor:
            self.floor += (target - self.floor) >> c.active_rise_shift
        if c.slide_stride:
            return self._slide()
        self._consider_window()
        if self.closing and self.best_end >= 0:
            u = self._decide(self.last)
            if u is not None:
                out.append(u)
        return out

    def finish(self) -> list:
        if self.scfg.slide_stride:
            # step 7s: an open utterance is closed at the last frame (if it has not ended yet) and, when its
            # evaluation is due there, evaluated there, or only closed when that frame was just evaluated; one
            # whose evaluation is not due yet is dropped like a click
            if not self.active:
                return []
            if not self.closing:
                self.closed_at = self.k
            if self.k < self._due():
                return []
            if self.evals == 0 and self.last - self.first + 1 < self.scfg.min_frames:
                return []
            if self.last_eval == self.k:
                ev = Evaluation(self.k, self.first, self.last, self.k - self.n + 1, False, True, window=False)
                self._reset_utterance()
                return [ev]
            return [self._evaluate(True)]
        if not self.active or self.best_end < 0:  # no candidate window yet: nothing to classify
            return []
        u = self._decide(self.last)
        return [u] if u is not None else []


def detect(energies: Iterable[int], scfg: StreamConfig = DEFAULT_STREAM, n_frames: int = 16,
           bands: Iterable[int] | None = None) -> list[Utterance]:
    """Every utterance the detector decides in a stream's frame energies, end of stream included
    (sliding: every `Evaluation`, in order).

    ``bands``: the frames' band energies (`band_energies`) for the level; None uses ``energies``."""
    det = Detector(scfg, n_frames)
    out: list[Utterance] = []
    es = [int(e) for e in energies]
    bs = [None] * len(es) if bands is None else [int(b) for b in bands]
    if len(bs) != len(es):
        raise ValueError(f"{len(bs)} band energies for {len(es)} frames")
    for e, b in zip(es, bs):
        out.extend(det.push(e, b))
    out.extend(det.finish())
    return out


def band_energies(samples: np.ndarray, cfg: F.FrontendConfig, taps: tuple[int, ...]) -> np.ndarray | None:
    """Exact int64 band energy (step 1) of each complete time step, or None when ``taps`` is empty.

    Frame k covers hops k - 1 and k (hop -1 is the zeros before the stream), like its energy; a step's is the
    sum of its frames' (`F.pool_energies`; frame_pool 1: a step is a frame)."""
    if not taps:
        return None
    x = F.as_int16(samples).astype(np.int64)
    hop = cfg.hop_length
    n = len(x) // hop
    if n == 0:
        return np.zeros(0, np.int64)
    y = np.convolve(x[: n * hop], np.asarray(taps, np.int64))[: n * hop]  # causal, zeros before the stream
    per_hop = (y.reshape(n, hop) ** 2).sum(axis=1)
    return F.pool_energies(per_hop + np.concatenate([[0], per_hop[:-1]]), cfg)


def stream_energies(samples: np.ndarray, cfg: F.FrontendConfig) -> np.ndarray:
    """Exact int64 energy of each of the stream's ``len(samples) // step_hop`` complete time steps (frames with
    frame_pool 1; else the sums of `F.pool_energies`)."""
    x = F.as_int16(samples)
    n = len(x) // cfg.hop_length
    if n == 0:
        return np.zeros(0, np.int64)
    return F.pool_energies(F.frame_energies(x, cfg)[:n], cfg)


def stream_frames(samples: np.ndarray, cfg: F.FrontendConfig) -> np.ndarray:
    """Log-mel of all the stream's ``len(samples) // step_hop`` complete time steps, float32 [shape=(T, n_mels)]
    (frames with frame_pool 1; else `F.pool_frames` of them).

    Front end v2 carries state from frame to frame (train/intfront.py steps
    6-7), so a frame's values depend on every frame before it: they are
    computed once, from the stream's first frame, as the device does.
    """
    x = F.as_int16(samples)
    n = len(x) // cfg.hop_length
    if n == 0:
        return np.zeros((0, cfg.n_mels), np.float32)
    if cfg.is_integer:
        return F.pool_frames(F.int_logmel_frames(x, cfg, n), cfg)
    return stream_logmel(x, cfg, slice(0, n))


def stream_logmel(samples: np.ndarray, cfg: F.FrontendConfig, frames: slice, mel_basis=None) -> np.ndarray:
    """Log-mel of the stream frames in ``frames`` (a slice of frame indices), float32 [shape=(len, n_mels)].

    v1 (stateless): computed on just the samples those frames cover (frame k
    spans samples k*hop - n_fft/2 .. k*hop + n_fft/2 - 1, zeros outside the
    stream), so the result equals the whole stream's frames without the
    whole-stream STFT. v2: the frames of `stream_frames` (its state starts
    at the stream's first frame).
    """
    x = F.as_int16(samples)
    if cfg.is_integer:
        return F.int_logmel_frames(x, cfg, frames.stop)[frames]
    half, hop = cfg.n_fft // 2, cfg.hop_length
    k0, k1 = frames.start, frames.stop
    lo, hi = k0 * hop - half, (k1 - 1) * hop + half
    seg = np.zeros(hi - lo, np.int16)
    a, b = max(lo, 0), min(hi, len(x))
    if b > a:
        seg[a - lo : b - lo] = x[a:b]
    # seg[j * hop : j * hop + n_fft] is frame k0 + j: an uncentred STFT of seg gives exactly those frames
    import librosa

    y = seg.astype(np.float32) * np.float32(1.0 / 32768.0)
    spec = librosa.stft(y, n_fft=cfg.n_fft, hop_length=hop, window="hann", center=False)
    power = (spec.real * spec.real + spec.imag * spec.imag).astype(np.float32)
    basis = F.mel_filterbank(cfg) if mel_basis is None else mel_basis
    mel = basis @ power
    return np.log(mel + np.float32(cfg.log_floor)).T.astype(np.float32)


def _top_and_runner(scores: np.ndarray) -> tuple[int, int]:
    """The first maximum's index and the largest other value (a model has at least 2 outputs)."""
    top = int(np.argmax(scores))
    return top, int(np.max(np.delete(scores, top)))


def decide_event(outputs: np.ndarray, scfg: StreamConfig) -> int | None:
    """Top-1 output index of int8 outputs (first maximum), or None when its margin is below reject_margin."""
    o = np.asarray(outputs, np.int64).reshape(-1)
    top, runner = _top_and_runner(o)
    return None if int(o[top]) - runner < scfg.reject_margin else top


class Smoother:
    """Step 6s, the sliding mode's decision: integer averaging of the utterance's recent outputs.

    Fed each `Evaluation` of the detector with its window's int8 outputs
    (None for a close without a window), it returns the event decided there,
    if any. Within one utterance it keeps the outputs of its last
    ``smooth_windows`` windows; ``sums`` are their per-class sums and
    ``count`` how many there are. The top class is the first maximum of the
    sums, the runner-up the largest other sum. A *label event* fires when
    the top class is reportable (not a rejection class, train/reject.py's
    REJECT_LABELS), ``sums[top] >= detect_threshold * count``, ``sums[top] -
    runner >= reject_margin * count``, at least ``min_count`` windows are in
    the average or the evaluation is the utterance's last, and the
    utterance has fired no label event in the last ``suppress_frames``
    frames. An utterance that closes without any label event gives one
    event at its close: the top class when it is a rejection class (e.g.
    ``noise``), else None (rejected). An event's outputs are the averages
    ``floor(sums / count)``.
    """

    def __init__(self, scfg: StreamConfig, labels=None) -> None:
        from train.labels import Labels
        from train.reject import REJECT_LABELS

        self.scfg = scfg
        self.labels = Labels() if labels is None else labels
        self.reportable = [n not in REJECT_LABELS for n in self.labels.names]
        self.hist: list[np.ndarray] = []
        self.fired = False
        self.fired_frame = -1

    def step(self, ev: Evaluation, outputs, hop: int) -> Event | None:
        c = self.scfg
        if ev.first:
            self.hist, self.fired, self.fired_frame = [], False, -1
        if outputs is not None:
            if np.size(outputs) != len(self.reportable):
                raise ValueError(f"the model gave {np.size(outputs)} outputs but the stream's labels name "
                                 f"{len(self.reportable)}: pass the model folder's labels (train.labels.Labels)")
            self.hist.append(np.asarray(outputs, np.int64).reshape(-1))
            del self.hist[: -c.smooth_windows]
        if not self.hist:
            return None
        count = len(self.hist)
        sums = np.sum(self.hist, axis=0)
        top, runner = _top_and_runner(sums)
        avg = sums // count  # floor, like the device's
        start, end = ev.samples(hop)
        if (self.reportable[top] and int(sums[top]) >= c.detect_threshold * count
                and int(sums[top]) - runner >= c.reject_margin * count and (count >= c.min_count or ev.last)
                and (not self.fired or ev.frame - self.fired_frame >= c.suppress_frames)):
            self.fired, self.fired_frame = True, ev.frame
            return Event.of_class(top, start, end, avg, self.labels)
        if ev.last and not self.fired:
            return Event.of_class(None if self.reportable[top] else top, start, end, avg, self.labels)
        return None


class StreamAnalysis:
    """A stream's samples with what the detector and the windows read from them, computed once.

    The frame energies, the band energies (per filter) and the integer front
    end's frames do not depend on the detector's constants, so a sweep over
    `StreamConfig`s (benchmarks/tune_stream.py) passes one of these to
    `reference_events` again and again instead of the samples.
    """

    def __init__(self, samples: np.ndarray, cfg: F.FrontendConfig) -> None:
        self.samples, self.cfg = F.as_int16(samples), cfg
        self._bands: dict[tuple[int, ...], np.ndarray | None] = {}
        self._energies: np.ndarray | None = None
        self._frames: np.ndarray | None = None

    @property
    def energies(self) -> np.ndarray:
        if self._energies is None:
            self._energies = stream_energies(self.samples, self.cfg)
        return self._energies

    def bands(self, taps: tuple[int, ...]) -> np.ndarray | None:
        if taps not in self._bands:
            self._bands[taps] = band_energies(self.samples, self.cfg, taps)
        return self._bands[taps]

    @property
    def frames(self) -> np.ndarray:
        """`stream_frames` (the integer front end's state runs from the stream's first frame)."""
        if self._frames is None:
            self._frames = stream_frames(self.samples, self.cfg)
        return self._frames


def reference_events(samples, cfg: F.FrontendConfig, infer: Callable[[np.ndarray], np.ndarray],
                     scale: float, zero_point: int, scfg: StreamConfig = DEFAULT_STREAM,
                     mel_basis=None, labels=None) -> tuple[list[Event], list[Utterance]]:
    """The events the device must report for a stream of int16 samples (or its `StreamAnalysis`).

    ``infer`` maps int8 windows [shape=(n, n_frames, n_mels)] to int8
    outputs [shape=(n, classes)] (the TFLite Micro reference);
    ``scale``/``zero_point`` are the model input's quantization. Returns the
    events and, for each, what decided it: its `Utterance` (one window per
    utterance) or its `Evaluation` (sliding).
    """
    a = samples if isinstance(samples, StreamAnalysis) else StreamAnalysis(samples, cfg)
    if a.cfg != cfg:
        raise ValueError("the StreamAnalysis was computed with another front-end config than the model's")
    utts = detect(a.energies, scfg, cfg.n_frames, a.bands(scfg.band_taps))
    if not utts:
        return [], []
    if scfg.slide_stride:
        wins = [u for u in utts if u.window]
        outs = iter(_window_outputs(a, cfg, [u.window_start for u in wins], infer, scale, zero_point, mel_basis))
        sm = Smoother(scfg, labels)
        decided = [(e, u) for u in utts for e in [sm.step(u, next(outs) if u.window else None, cfg.step_hop)] if e]
        return [e for e, _ in decided], [u for _, u in decided]
    outs = _window_outputs(a, cfg, [u.window_start for u in utts], infer, scale, zero_point, mel_basis)
    events = []
    for u, o in zip(utts, outs):
        start, end = u.samples(cfg.step_hop)
        events.append(Event.of_class(decide_event(o, scfg), start, end, o, labels))
    return events, utts


def _window_outputs(a: StreamAnalysis, cfg: F.FrontendConfig, starts: list[int], infer, scale: float,
                    zero_point: int, mel_basis=None) -> np.ndarray:
    """The int8 model outputs of the stream's windows starting at the frames ``starts``
    [shape=(len(starts), classes)], quantized like a clip's."""
    if not starts:
        return np.zeros((0, 0), np.int8)
    n = cfg.n_frames
    if cfg.is_integer:
        windows = np.stack([a.frames[k : k + n] for k in starts])
    else:
        basis = F.mel_filterbank(cfg) if mel_basis is None else mel_basis
        windows = np.stack([stream_logmel(a.samples, cfg, slice(k, k + n), basis) for k in starts])
    feats = F.quantize_logmel(windows, cfg, scale, zero_point)
    return np.asarray(infer(feats), np.int8).reshape(len(starts), -1)
