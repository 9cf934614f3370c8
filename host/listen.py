"""Listen continuously: stream a recording or the microphone to a device and print the digits it hears.

    python -m host.listen --port /dev/ttyACM0 --wav number.wav
    python -m host.listen --port emulator --wav number.wav --check --report listen.json
    python -m host.listen --port /dev/ttyACM0 --mic                   # speak; Ctrl-C to stop
    python -m host.listen --port emulator --mic --duration 10 --check --save-wav me.wav

Sends the samples, in order and as one unbroken stream, in STREAM chunks
(docs/protocol.md, "STREAM"); the device's streaming detector
(firmware/src/sd_stream.c, the twin of train/stream.py) finds the utterances
itself, runs the int8 model on each and reports it in the acknowledgement
of the chunk that completed it. No clip boundaries come from the host.

The samples come from a source (host/audio_in.py): ``--wav FILE``, or
``--mic``, the computer's input device (``--device``) through PortAudio
(``sounddevice``; needs libportaudio2), captured mono int16 at the device's
sample rate, or at the input's default rate and resampled. One loop serves
both: it takes samples as they arrive and sends each chunk as soon as it is
full, so with ``--mic`` the board hears the speaker while they speak.
``--duration`` stops after that much audio; Ctrl-C (once) ends the stream
with END, so an open utterance is still decided, then prints the summary
(exit 130); a second Ctrl-C stops at once. ``--save-wav`` writes the samples
that were streamed, to be replayed with ``--wav``.

Stdout: one line per event as the board reports it (the utterance's start
in seconds, the digit or "rejected", its confidence: the int8 output of the
top digit dequantized to a softmax probability), then the digit string.
Stderr: progress and messages (with ``--mic``: input overflows, a link
slower than real time, the latency from an utterance's end to its event).

``--check`` also runs the Python reference (``train.stream.reference_events``
with ``convert.reference.Reference`` of ``--model``) on exactly the samples
sent; the two event lists must be identical (digit, first and last sample,
the ten int8 outputs). ``--report FILE.json`` writes both lists,
``identical``, the digit string, the device's cost per second of audio per
stage and, under ``"input"``, the source (device, capture rate, resampling,
overflows, samples dropped, latencies).

Exit status (as host.parity): 0 all good; 1 a check failed (events differ,
the device reported lost events, or the stream did not complete after
``--attempts`` tries); 2 usage or connection error (bad input file, no
microphone or PortAudio, refused device, a device or the microphone lost
mid-stream); 130 interrupted (partial report; after a Ctrl-C that ended the
stream, ``--check`` still compares what was sent).
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import datetime
import json
import signal
import sys
import threading
import time
import traceback
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from host import protocol as p
from host.session import (
    DEFAULT_MODEL_DIR,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    QEMU_TIMEOUT,
    ClipFailed,
    DeviceLost,
    DeviceSession,
    UsageError,
    check_writable,
    emulator_board,
    load_reference,
    nonneg_int,
    open_link,
    positive_float,
    positive_int,
)
from train.reject import REJECT_LABELS

REPORT_SCHEMA = 1
DEFAULT_ATTEMPTS = 3
STAGES = ("frontend", "lstm", "head")
#: Longest wait of the loop for live samples before it looks at Ctrl-C and the source again.
POLL_SECONDS = 0.05


class LostEvents(p.ProtocolError):
    """The device reported events it could not deliver (its queue overflowed): a broken device."""


def event_dict(index: int | None, start: int, end: int, outputs: Sequence[int], labels: Any = None) -> dict[str, Any]:
    """An event as reported: the top-1 output ``index`` (None: rejected) named by ``labels`` (train/labels.py;
    FSDD digits by default): its ``label`` and the ``digit`` that label is (None when it is not a digit)."""
    from train.stream import Event

    return Event.of_class(index, start, end, outputs, labels).to_dict()


class ListenRun(DeviceSession):
    """One stream through one device session (host/session.py), its samples taken from a source
    (host/audio_in.py): a recording (``--wav``) or the live microphone (``--mic``).

    One loop serves both (:meth:`_stream_once`): it takes samples from the source as they
    arrive, keeps every one it takes (``samples``: what is sent, what ``--check`` runs the
    reference on, what ``--save-wav`` writes), and sends a chunk as soon as a full one is there
    (the rest with END once the source has ended, ``--duration`` is reached or Ctrl-C asked it
    to stop). When a chunk fails for good the stream starts again from sample 0 with every
    sample kept so far, then goes on with the source.
    """

    chunk_fixed = p.STREAM_REQ_FIXED
    needs_stream = True  # the device's detector must be the reference's (INFO's stream-config hash)

    def __init__(self, args: argparse.Namespace, reference: Any, say: Callable[[str], None],
                 out: Callable[[str], None], source: Any = None) -> None:
        super().__init__(args, reference, say)
        self.clip_attempts = args.attempts
        self.mulaw = bool(getattr(args, "mulaw", False))  # STREAM chunks as G.711 mu-law bytes
        self.out = out
        self.source = source
        self.limit: int | None = None  # --duration, in samples
        self._buf = np.zeros(0, np.int16)
        self.n_taken = 0  # samples taken from the source (kept in _buf)
        self.sent = 0  # samples the device acknowledged in the current attempt
        self.input_done = False  # the source will give no more samples to this run
        self.stop_requested = False  # Ctrl-C: end the stream with what has been taken
        self._source_stopped = False
        self.stopped_by: str | None = None
        self.ended = False  # the device acknowledged END: every sample taken is in the stream
        self.arrival_ends: list[int] = []  # samples taken after each block from the source ...
        self.arrival_times: list[float] = []  # ... and the time.monotonic() it was captured
        self.latencies: list[float] = []  # live input: seconds from an utterance's last sample to its event
        self.backlog_max = 0.0
        self._backlog_warn = 1.0
        self.saved_wav: str | None = None
        self.events: list[dict[str, Any]] = []
        self.printed: list[dict[str, Any]] = []  # events already on stdout (a restarted stream repeats them)
        self.cost = {k: 0 for k in STAGES}
        self.frames = 0
        self.attempts = 0
        self.stream_id = int(time.time()) & 0xFFFF_0000
        self.interrupted = False
        self.failed: str | None = None
        self.data_notes: list[str] = []
        self.t_start = time.monotonic()
        self.t_device = 0.0
        self.t_reference = 0.0
        self.reference_events: list[dict[str, Any]] | None = None

    @property
    def samples(self) -> np.ndarray:
        """Every sample taken from the source so far, in order."""
        return self._buf[: self.n_taken]

    @property
    def live(self) -> bool:
        return bool(getattr(self.source, "live", False))

    # -- the source --------------------------------------------------------------------
    def _keep(self, x: np.ndarray) -> None:
        need = self.n_taken + len(x)
        if need > len(self._buf):
            grown = np.zeros(max(need, 2 * len(self._buf), self.ref.cfg.sr), np.int16)
            grown[: self.n_taken] = self._buf[: self.n_taken]
            self._buf = grown
        self._buf[self.n_taken : need] = x
        self.n_taken = need

    def _stop_source(self) -> None:
        if not self._source_stopped:
            self._source_stopped = True
            self.source.stop()

    def _check_stop(self) -> None:
        """After the first Ctrl-C: no more capture; what was taken before it is still sent."""
        if self.stop_requested and not self._source_stopped and not self.input_done:
            self.stopped_by = "interrupt"
            unsent = (self.n_taken - self.sent) / self.ref.cfg.sr + self.source.pending_seconds()
            self.say("stopping: ending the stream with the audio taken so far"
                     + (f" ({unsent:.1f} s of it still to send)" if unsent >= 1 else "")
                     + "; Ctrl-C again to abort at once")
            self._stop_source()

    def _take(self, timeout: float) -> None:
        """Keep what the source has captured since the last call (waiting up to ``timeout`` s for it),
        up to ``--duration``; mark the input done when the source has ended or the limit is reached."""
        if self.input_done:
            return
        self._check_stop()
        x = self.source.read(timeout)
        for w in self.source.take_warnings():
            self.say(f"warning: {w}")
        if x is None:
            self.input_done = True
            self.stopped_by = self.stopped_by or ("input lost" if getattr(self.source, "input_lost", False)
                                                  else "end of input")
            return
        if self.limit is not None:
            x = x[: max(0, self.limit - self.n_taken)]
        if len(x):
            n0 = self.n_taken
            self._keep(x)
            for k, t in self.source.arrivals:
                n0 += k
                self.arrival_ends.append(min(n0, self.n_taken))
                self.arrival_times.append(t)
                if n0 >= self.n_taken:
                    break
        if self.limit is not None and self.n_taken >= self.limit:
            self.input_done = True
            self.stopped_by = self.stopped_by or "duration"
            self._stop_source()

    def _note_backlog(self, sent: int) -> None:
        """Live input: how far the stream is behind the microphone (taken but unsent, plus queued)."""
        if not self.live:
            return
        behind = (self.n_taken - sent) / self.ref.cfg.sr + self.source.pending_seconds()
        self.backlog_max = max(self.backlog_max, behind)
        if behind > self._backlog_warn and not self.input_done:
            self.say(f"warning: the stream is {behind:.1f} s behind the microphone (the link to the board is "
                     f"slower than real time, or a restart is catching up)")
            while self._backlog_warn < behind:
                self._backlog_warn *= 2

    def _latency(self, end: int) -> float | None:
        """Seconds from the capture of sample ``end`` until now (live input)."""
        if not self.live:
            return None
        i = bisect.bisect_right(self.arrival_ends, end)  # the block that holds sample `end`
        if i >= len(self.arrival_ends):
            return None
        return time.monotonic() - self.arrival_times[i]

    # -- the stream --------------------------------------------------------------------
    def confidence(self, outputs: Sequence[int]) -> float:
        """The top output as a probability (the model's output is a quantized softmax)."""
        q = max(int(v) for v in outputs)
        return float((q - int(self.ref.output_zero_point)) * float(self.ref.output_scale))

    def _report_event(self, ev: dict[str, Any]) -> None:
        k = len(self.events)
        self.events.append(ev)
        if k < len(self.printed):  # a restarted stream: the device must find the same events again
            if self.printed[k] != ev:
                self.say(f"warning: after the restart, event {k + 1} differs from the one printed: {ev}")
            return
        self.printed.append(ev)
        lat = self._latency(ev["end"])
        if lat is not None:
            self.latencies.append(round(lat, 3))
        sr = self.ref.cfg.sr
        what = (f"digit {ev['digit']}" if ev["digit"] is not None else
                f"{ev['label']}" if ev.get("label") is not None else "rejected")
        self.out(f"{ev['start'] / sr:9.2f} s  {what:<9} confidence {self.confidence(ev['outputs']):.2f}"
                 f"  (samples {ev['start']}..{ev['end']})")

    def _chunk_limit(self, dev: Any) -> int:
        """Largest STREAM chunk that fits the device's receive window (one byte a sample with --mulaw)."""
        return dev.max_stream_samples(mulaw=self.mulaw)

    def _send_chunk(self, offset: int, x: np.ndarray, *, begin: bool, end: bool) -> p.StreamAck:
        """The one place where samples become a STREAM chunk on the wire.

        With ``--mulaw`` the chunk goes as G.711 mu-law bytes (train/mulaw.py), and what the device
        decodes replaces ``x`` in the kept samples (``x`` is a view into them), so ``--check`` runs the
        reference on what the device heard and ``--save-wav`` writes it; a restart sends the
        decoded samples again, and mu-law encodes them to the same bytes.
        """
        assert self.dev is not None
        if self.mulaw:
            from train import mulaw

            u = mulaw.encode(np.ascontiguousarray(x, np.int16))
            x[:] = mulaw.decode(u)
            return self.dev.send_stream(self.stream_id, offset, u, begin=begin, end=end, mulaw=True,
                                        timeout=self.timeout)
        return self.dev.send_stream(self.stream_id, offset, x, begin=begin, end=end, timeout=self.timeout)

    def _stream_once(self, bar: Any) -> None:
        """Stream from sample 0 (a new stream id): every sample kept so far, then on with the
        source until it ends, ``--duration`` is reached or Ctrl-C stops it; the last chunk has END."""
        assert self.dev is not None and self.source is not None
        self.attempts += 1
        if self.attempts > 1:
            again = (f": the {self.n_taken / self.ref.cfg.sr:.2f} s captured so far again, then on with "
                     f"the microphone" if self.live and not self.input_done else "")
            self.say(f"restarting the stream from sample 0 (attempt {self.attempts}){again}")
        self.stream_id = (self.stream_id + 1) & 0xFFFFFFFF
        self.events, self.cost, self.frames = [], {k: 0 for k in STAGES}, 0
        self.ended, self.sent = False, 0
        bar.reset(total=self._bar_total())
        off = 0
        while True:
            self._check_stop()
            while self.n_taken - off < self.chunk and not self.input_done:
                self._take(POLL_SECONDS)
            k = min(self.chunk, self.n_taken - off)
            last = self.input_done and off + k >= self.n_taken
            ack = self._send_chunk(off, self.samples[off : off + k], begin=off == 0, end=last)
            if ack.lost:
                raise LostEvents(f"the device lost {ack.lost} event(s) (its queue was full)")
            if ack.events_total != len(self.events) + len(ack.events):
                raise p.ProtocolError(f"STREAM ack counts {ack.events_total} events, the host has "
                                      f"{len(self.events) + len(ack.events)}")
            for e in ack.events:
                self._report_event(event_dict(e.digit, e.start, e.end, e.output, self.ref.labels))
            for s in STAGES:
                self.cost[s] += ack.cost[s]
            self.frames += ack.frames
            off += k
            self.sent = off
            bar.update(k)
            self._note_backlog(off)
            if last:
                self.ended = True
                return

    def _bar_total(self) -> int | None:
        if self.live:
            return self.limit
        n = len(self.source.samples)
        return n if self.limit is None else min(n, self.limit)

    def _catch_sigint(self) -> Callable[[], None]:
        """While streaming, the first Ctrl-C asks the loop to end the stream (so an open utterance is
        decided); a second one interrupts at once. Returns the undo."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def on_sigint(signum: int, frame: Any) -> None:
            if self.stop_requested:
                raise KeyboardInterrupt
            self.stop_requested = True

        previous = signal.signal(signal.SIGINT, on_sigint)
        return lambda: signal.signal(signal.SIGINT, previous)

    def stream(self, progress: bool) -> None:
        from tqdm import tqdm

        t0 = time.monotonic()
        bar = tqdm(total=self._bar_total(), desc=f"listen {self.args.port}", unit="sample", unit_scale=True,
                   file=sys.stderr, disable=not progress, leave=False)
        restore = self._catch_sigint()
        try:
            self.source.start()
            if self.live:
                until = (f"for {self.limit / self.ref.cfg.sr:g} s" if self.limit is not None
                         else "until Ctrl-C")
                self.say(f"listening to {self.source.label} {until} ...")
            self._attempt(lambda: self._stream_once(bar))
        except ClipFailed as exc:
            self.failed = f"the stream did not complete after {exc.attempts} attempt(s): {exc.cause}"
            if isinstance(exc.cause, LostEvents):
                self.failed = str(exc.cause)
            self.say(f"error: {self.failed}")
        finally:
            self._stop_source()  # capture stops before Ctrl-C goes back to raising KeyboardInterrupt
            restore()
            bar.close()
            self.t_device = time.monotonic() - t0
            self._collect_stats()
            if self.stop_requested:
                self.interrupted = True

    # -- the reference ---------------------------------------------------------------
    def run_reference(self) -> None:
        from train import stream as S

        t0 = time.monotonic()
        r = self.ref
        evs, _ = S.reference_events(self.samples, r.cfg, r.infer, r.input_scale, r.input_zero_point, S.DEFAULT_STREAM,
                                    getattr(r, "_mel", None), labels=r.labels)
        self.reference_events = [e.to_dict() for e in evs]
        self.t_reference = time.monotonic() - t0

    # -- the report -----------------------------------------------------------------------
    def finish(self) -> dict[str, Any]:
        # The stream as the device has it: every sample taken once it ended, else those of the last attempt.
        n = self.sent
        seconds = n / self.ref.cfg.sr
        complete = self.ended and not self.failed and not self.aborted
        identical = None
        if self.reference_events is not None and complete:
            identical = self.events == self.reference_events
        input_lost = bool(getattr(self.source, "input_lost", False))
        failures = []
        if self.failed:
            failures.append(self.failed)
        if identical is False:
            failures.append(self._first_difference())
        if input_lost:
            failures.append(f"{self.source.label} stopped delivering audio after "
                            f"{self.n_taken / self.ref.cfg.sr:.2f} s")
        digits = "".join(str(e["digit"]) for e in self.events if e["digit"] is not None)
        # noise and other (train/reject.py) are what the model heard instead of a word: not words heard
        heard = [e["label"] for e in self.events if e.get("label") is not None and e["label"] not in REJECT_LABELS]
        per_second = {s: (self.cost[s] / seconds if seconds else None) for s in STAGES}
        per_second["total"] = sum(self.cost.values()) / seconds if seconds else None
        if self.interrupted:
            status = EXIT_INTERRUPTED
        elif self.aborted or input_lost:
            status = EXIT_USAGE
        else:
            status = EXIT_FAILED if failures else EXIT_OK
        source = self.source.report() if self.source is not None else {}
        lat = sorted(self.latencies)
        return {
            "schema": REPORT_SCHEMA,
            "tool": "host.listen",
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "port": self.args.port,
            "url": self.url,
            "wav": str(self.args.wav) if self.args.wav else None,
            "input": {
                **source,
                "samples_taken": self.n_taken,
                "duration_limit_samples": self.limit,
                "stopped_by": self.stopped_by,
                "saved_wav": self.saved_wav,
                "backlog_max_seconds": round(self.backlog_max, 3) if self.live else None,
                "event_latency_seconds": self.latencies if self.live else None,
                "event_latency_median_seconds": lat[len(lat) // 2] if lat else None,
            },
            "device": dataclasses.asdict(self.info) if self.info else None,
            "reference": {"model_dir": str(self.args.model), "model_sha256": self.ref.sha256,
                          "frontend_sha256": self.ref.cfg.sha256(), "sample_rate": self.ref.cfg.sr},
            "checks": self.checks,
            "samples": n,
            "seconds": seconds,
            "ended": self.ended,
            "frames": self.frames,
            "chunk_samples": self.chunk,
            "encoding": "mulaw" if self.mulaw else "pcm16",
            "events": self.events,
            "reference_events": self.reference_events,
            "identical": identical,
            "digits": digits,
            "labels": list(self.ref.labels.names),
            "heard": heard,
            "cost": {"unit": self.info.cost_unit if self.info else None, "total": dict(self.cost),
                     "per_second_of_audio": per_second},
            "attempts": self.attempts,
            "device_stats": {**self.device_stats, "recoveries": self.recoveries},
            "link": self.link_report(),
            "faults": self.fault_link.stats() if self.fault_link is not None else None,
            "wall_seconds": time.monotonic() - self.t_start,
            "device_seconds": self.t_device,
            "reference_seconds": self.t_reference,
            "data_notes": self.data_notes,
            "failures": failures,
            "interrupted": self.interrupted,
            "aborted": self.aborted,
            "exit_status": status,
        }

    def _first_difference(self) -> str:
        dev, ref = self.events, self.reference_events or []
        for i, (a, b) in enumerate(zip(dev, ref)):
            if a != b:
                return f"event {i + 1} differs: device {a}, reference {b}"
        return f"the device reported {len(dev)} event(s), the reference {len(ref)}"


# ---- CLI -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m host.listen",
        description="Stream a recording (any length) or the live microphone to a spoken-digit device as one "
                    "unbroken stream and print each word as the board reports it (time in seconds, label: a digit for "
                    "FSDD's model, confidence), then what it heard. Exit status: 0 all good, 1 a check failed, 2 usage/connection error, "
                    "130 interrupted.",
    )
    d = ap.add_argument_group("device")
    d.add_argument("--port", required=True,
                   help="serial port: a device path (/dev/ttyACM0), a pty path, socket://host:port, "
                        "or emulator[:posix|mps2-an386|netduinoplus2] to build, start and stop an emulated board")
    d.add_argument("--baud", type=positive_int, default=115200, help="baud rate (default: %(default)s)")
    d.add_argument("--timeout", type=positive_float, default=None, metavar="SECONDS",
                   help=f"seconds to wait for each acknowledgement (default: {DEFAULT_TIMEOUT:g}, "
                        f"{QEMU_TIMEOUT:g} on emulated Cortex-M boards)")
    d.add_argument("--retries", type=nonneg_int, default=DEFAULT_RETRIES, metavar="N",
                   help="resends of a chunk (same seq) after a timeout or a damaged frame; the device "
                        "recognizes a resent chunk by its offset (default: %(default)s)")
    d.add_argument("--attempts", type=positive_int, default=DEFAULT_ATTEMPTS, metavar="N",
                   help="times the stream is tried in all: when a chunk fails for good or the device lost the "
                        "stream, the host sends RESET and streams again from sample 0 (default: %(default)s)")
    d.add_argument("--chunk-samples", type=positive_int, default=None, metavar="N",
                   help="samples per STREAM message (default: the device's maximum, 512)")
    d.add_argument("--mulaw", action="store_true",
                   help="send 8-bit G.711 mu-law samples instead of 16-bit ones: 64 kbit/s of audio, which a "
                        "115,200-baud UART carries in real time; the device decodes them, and --check runs the "
                        "reference on the decoded samples (events stay identical)")
    d.add_argument("--faults", default=None, metavar="SPEC",
                   help="run through the fault-injecting proxy (host/faultlink.py), e.g. 'rate=1e-3,seed=1'; "
                        "see python -m host.faultlink --help")
    i = ap.add_argument_group("input (one of --wav, --mic)")
    src = i.add_mutually_exclusive_group(required=True)
    src.add_argument("--wav", metavar="FILE",
                     help="the recording: a WAV file of any length; mono 16-bit at the device's sample rate "
                          "(8 kHz) is sent as it is, stereo is mixed to mono and other rates are resampled "
                          "(said on stderr)")
    src.add_argument("--mic", action="store_true",
                     help="live: capture the computer's default input device (or --device) through PortAudio "
                          "(needs libportaudio2) and send its samples as they arrive; Ctrl-C ends the stream "
                          "(an open utterance is still decided) and prints the summary")
    i.add_argument("--device", metavar="NAME_OR_INDEX", default=None,
                   help="with --mic: the input device, by PortAudio index or (part of) its name; "
                        "list them with python -m sounddevice (default: the system's default input)")
    i.add_argument("--duration", type=positive_float, default=None, metavar="SECONDS",
                   help="stop after this much audio (with --mic: instead of waiting for Ctrl-C; with --wav: "
                        "only the recording's start)")
    i.add_argument("--save-wav", metavar="FILE", default=None,
                   help="write the samples that were streamed (mono 16-bit at the device's rate) to this WAV "
                        "file, so that a --mic session can be replayed with --wav")
    m = ap.add_argument_group("reference")
    m.add_argument("--model", default=DEFAULT_MODEL_DIR, metavar="DIR",
                   help="released model directory (model_int8.tflite, frontend.json): INFO's model hash must "
                        "match it, and --check runs it (default: %(default)s)")
    m.add_argument("--check", action="store_true",
                   help="also run the Python reference on the same samples; exit 1 unless the device's events "
                        "are identical (label, first and last sample, the int8 outputs)")
    o = ap.add_argument_group("output")
    o.add_argument("--report", metavar="FILE.json", default=None,
                   help="write the events, the reference's events, identical, the digit string and the cost "
                        "per second of audio per stage here (default: none)")
    o.add_argument("--no-progress", action="store_true", help="no progress bar")
    o.add_argument("--verbose", "-v", action="store_true", help="full tracebacks")
    return ap


def _say(msg: str) -> None:
    from tqdm import tqdm

    tqdm.write(msg, file=sys.stderr)


def _out(line: str) -> None:
    print(line, flush=True)


def _read_input(path: str, sr: int, notes: list[str]) -> np.ndarray:
    from train.data import WavError, read_wav

    try:
        return read_wav(path, sr, notes=notes, max_seconds=None)
    except WavError as exc:
        raise UsageError(str(exc)) from exc


def _write_report(report: dict[str, Any], args: argparse.Namespace) -> None:
    if not args.report:
        return
    path = Path(args.report)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    tmp.replace(path)
    _say(f"report: {path}")


def _save_wav(run: ListenRun, path_text: str) -> None:
    """--save-wav: the samples taken (all of them streamed once the stream ended), as mono 16-bit."""
    from scipy.io import wavfile

    if run.n_taken == 0:
        _say(f"--save-wav {path_text}: no samples were captured; nothing written")
        return
    path = Path(path_text)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        wavfile.write(f, run.ref.cfg.sr, np.ascontiguousarray(run.samples))
    tmp.replace(path)
    run.saved_wav = str(path)
    _say(f"saved {run.n_taken} samples ({run.n_taken / run.ref.cfg.sr:.2f} s at {run.ref.cfg.sr} Hz) to {path}; "
         f"replay them with --wav {path}")


def heard_line(report: dict[str, Any], none: str = "") -> str:
    """"digits: 4071" for a digit model (FSDD's labels), else "heard: yes stop go" (the label names);
    ``none`` stands for nothing heard."""
    from train.labels import Labels

    labels = Labels(tuple(report.get("labels") or Labels().names))
    if all(labels.digit(i) is not None or labels.names[i] in REJECT_LABELS for i in range(len(labels))):
        return f"digits: {report['digits'] or none}"
    return f"heard: {' '.join(report.get('heard') or []) or none}"


def _summary(report: dict[str, Any]) -> str:
    lines = [f"{heard_line(report, '(none)')}  ({len(report['events'])} event(s) in "
             f"{report['seconds']:.2f} s of audio, {report['frames']} frames)"]
    if report["identical"] is not None:
        lines.append("reference: " + ("identical events" if report["identical"] else "EVENTS DIFFER"))
    ps = report["cost"]["per_second_of_audio"]
    if report["cost"]["unit"] and ps["total"] is not None:
        unit = report["cost"]["unit"]
        lines.append("device cost per second of audio: " + ", ".join(
            f"{s} {ps[s]:,.0f}" for s in (*STAGES, "total")) + f" {unit}")
    inp = report["input"]
    if inp.get("source") == "mic":
        rate = f"{inp['capture_rate']} Hz, resampled to {inp['sample_rate']} Hz" if inp["resampled"] \
            else f"{inp['capture_rate']} Hz"
        lines.append(f"microphone {inp['device']!r}: {inp['samples_taken'] / inp['sample_rate']:.2f} s taken "
                     f"({rate}), stopped by {inp['stopped_by'] or '-'}; input overflows {inp['overflows']}, "
                     f"samples dropped at a full queue {inp['dropped_samples']}, most behind "
                     f"{inp['backlog_max_seconds']:.2f} s")
        if inp["event_latency_seconds"]:
            lines.append(f"latency from an utterance's last sample to its event: median "
                         f"{inp['event_latency_median_seconds']:.2f} s, max {max(inp['event_latency_seconds']):.2f} s")
    for f in report["failures"]:
        lines.append(f"FAILED: {f}")
    return "\n".join(lines)


def _open_source(args: argparse.Namespace, sr: int, notes: list[str], stack: ExitStack) -> Any:
    """The samples' source: the --wav recording, or the --mic input device (opened, not started)."""
    from host.audio_in import ArraySource, MicSource, import_sounddevice, parse_device

    if not args.mic:
        samples = _read_input(args.wav, sr, notes)
        for note in notes:
            _say(note)
        _say(f"{args.wav}: {len(samples)} samples, {len(samples) / sr:.2f} s at {sr} Hz")
        return ArraySource(samples, args.wav)
    source = MicSource(import_sounddevice(), parse_device(args.device), sr, _say)
    stack.callback(source.close)
    source.open()
    for note in source.notes:
        _say(note)
    notes.extend(source.notes)
    source.notes = notes  # one list: a later note (the input lost) reaches the report too
    _say(f"{source.label}: mono 16-bit at {source.capture_rate} Hz, blocks of {source.blocksize} samples")
    return source


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    progress = not args.no_progress
    run: ListenRun | None = None

    def conclude() -> int:
        assert run is not None
        if args.save_wav:
            _save_wav(run, args.save_wav)
        report = run.finish()
        _say(_summary(report))
        _write_report(report, args)
        if run.attempts:
            _out(heard_line(report))
        return report["exit_status"]

    try:
        check_writable("--report", args.report)
        check_writable("--save-wav", args.save_wav)
        if args.device is not None and not args.mic:
            raise UsageError("--device chooses the microphone: use it with --mic")
        board = emulator_board(args.port)
        if args.timeout is None:
            args.timeout = QEMU_TIMEOUT if board not in (None, "posix") else DEFAULT_TIMEOUT
        reference = load_reference(args.model)
        sr = reference.cfg.sr
        with ExitStack() as stack:
            notes: list[str] = []
            source = _open_source(args, sr, notes, stack)  # a missing microphone is refused before the board starts
            run = ListenRun(args, reference, _say, _out, source)
            run.data_notes = notes
            if args.duration is not None:
                run.limit = max(1, int(round(args.duration * sr)))
            url, emu, run.fault_link = open_link(stack, args, board, _say)
            stack.callback(run.close)
            run.connect(url, emu)
            assert run.info is not None
            if args.chunk_samples:
                run.chunk = min(run.chunk_max, args.chunk_samples)
            _say(f"{args.port}: board {run.info.board}, firmware {run.info.firmware_version}, "
                 f"model {run.info.model_sha256[:16]} (matches), chunks of {run.chunk} samples")
            try:
                run.stream(progress)
            except DeviceLost as exc:
                run.aborted = f"device lost: {exc}"
                _say(f"error: {run.aborted}")
        if args.check and run.ended and not run.aborted and not run.failed:
            _say(f"running the Python reference on the same {run.n_taken} samples ...")
            run.run_reference()
        return conclude()
    except UsageError as exc:
        _say(f"error: {exc}")
        if run is not None and run.info is not None:
            run.aborted = str(exc)
            return conclude()
        return EXIT_USAGE
    except KeyboardInterrupt:
        _say("interrupted")
        if run is None:
            return EXIT_INTERRUPTED
        run.interrupted = True
        return conclude()
    except Exception as exc:  # a bug or an unexpected failure: keep what was measured
        if args.verbose:
            traceback.print_exc()
        _say(f"error: {type(exc).__name__}: {exc}" + ("" if args.verbose else " (--verbose for the traceback)"))
        if run is not None:
            run.aborted = f"{type(exc).__name__}: {exc}"
            try:
                return conclude()
            except Exception:
                pass
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
