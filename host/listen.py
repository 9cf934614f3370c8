"""Listen continuously: stream a recording to a device and print the digits it hears.

    python -m host.listen --port /dev/ttyACM0 --wav number.wav
    python -m host.listen --port emulator --wav number.wav --check --report listen.json

Sends the recording's samples, in order and as one unbroken stream, in
STREAM chunks (docs/protocol.md, "STREAM"); the device's streaming detector
(firmware/src/sd_stream.c, the twin of train/stream.py) finds the utterances
itself, runs the int8 model on each and reports it in the acknowledgement
of the chunk that completed it. No clip boundaries come from the host.

Stdout: one line per event as the board reports it (the utterance's start
in seconds, the digit or "rejected", its confidence: the int8 output of the
top digit dequantized to a softmax probability), then the digit string.
Stderr: progress and messages.

``--check`` also runs the Python reference (``train.stream.reference_events``
with ``convert.reference.Reference`` of ``--model``) on the same samples; the
two event lists must be identical (digit, first and last sample, the ten int8
outputs). ``--report FILE.json`` writes both lists, ``identical``, the digit
string and the device's cost per second of audio per stage.

Exit status (as host.parity): 0 all good; 1 a check failed (events differ,
the device reported lost events, or the stream did not complete after
``--attempts`` tries); 2 usage or connection error (bad input file, refused
device, a device lost mid-stream); 130 interrupted (partial report).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
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

REPORT_SCHEMA = 1
DEFAULT_ATTEMPTS = 3
STAGES = ("frontend", "lstm", "head")


class LostEvents(p.ProtocolError):
    """The device reported events it could not deliver (its queue overflowed): a broken device."""


def event_dict(digit: int | None, start: int, end: int, outputs: Sequence[int]) -> dict[str, Any]:
    return {"digit": digit, "start": int(start), "end": int(end), "outputs": [int(v) for v in outputs]}


class ListenRun(DeviceSession):
    """One recording streamed through one device session (host/session.py)."""

    chunk_fixed = p.STREAM_REQ_FIXED

    def __init__(self, args: argparse.Namespace, reference: Any, say: Callable[[str], None],
                 out: Callable[[str], None]) -> None:
        super().__init__(args, reference, say)
        self.clip_attempts = args.attempts
        self.out = out
        self.samples: np.ndarray | None = None
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

    # -- the stream --------------------------------------------------------------
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
        sr = self.ref.cfg.sr
        what = f"digit {ev['digit']}" if ev["digit"] is not None else "rejected"
        self.out(f"{ev['start'] / sr:9.2f} s  {what:<9} confidence {self.confidence(ev['outputs']):.2f}"
                 f"  (samples {ev['start']}..{ev['end']})")

    def _stream_once(self, bar: Any) -> None:
        """Send the whole recording as one stream, from sample 0 (a new stream id)."""
        assert self.dev is not None and self.samples is not None
        self.attempts += 1
        if self.attempts > 1:
            self.say(f"restarting the stream from sample 0 (attempt {self.attempts})")
        self.stream_id = (self.stream_id + 1) & 0xFFFFFFFF
        self.events, self.cost, self.frames = [], {k: 0 for k in STAGES}, 0
        x = self.samples
        n = len(x)
        bar.reset(total=n)
        off = 0
        while True:
            k = min(self.chunk, n - off)
            last = off + k >= n
            ack = self.dev.send_stream(self.stream_id, off, x[off : off + k], begin=off == 0, end=last,
                                       timeout=self.timeout)
            if ack.lost:
                raise LostEvents(f"the device lost {ack.lost} event(s) (its queue was full)")
            if ack.events_total != len(self.events) + len(ack.events):
                raise p.ProtocolError(f"STREAM ack counts {ack.events_total} events, the host has "
                                      f"{len(self.events) + len(ack.events)}")
            for e in ack.events:
                self._report_event(event_dict(e.digit, e.start, e.end, e.output))
            for s in STAGES:
                self.cost[s] += ack.cost[s]
            self.frames += ack.frames
            off += k
            bar.update(k)
            if last:
                return

    def stream(self, progress: bool) -> None:
        from tqdm import tqdm

        t0 = time.monotonic()
        bar = tqdm(total=len(self.samples), desc=f"listen {self.args.port}", unit="sample", unit_scale=True,
                   file=sys.stderr, disable=not progress, leave=False)
        try:
            self._attempt(lambda: self._stream_once(bar))
        except ClipFailed as exc:
            self.failed = f"the stream did not complete after {exc.attempts} attempt(s): {exc.cause}"
            if isinstance(exc.cause, LostEvents):
                self.failed = str(exc.cause)
            self.say(f"error: {self.failed}")
        finally:
            bar.close()
            self.t_device = time.monotonic() - t0
            self._collect_stats()

    # -- the reference ---------------------------------------------------------------
    def run_reference(self) -> None:
        from train import stream as S

        assert self.samples is not None
        t0 = time.monotonic()
        r = self.ref
        evs, _ = S.reference_events(self.samples, r.cfg, r.infer, r.input_scale, r.input_zero_point, S.DEFAULT_STREAM,
                                    getattr(r, "_mel", None))
        self.reference_events = [event_dict(e.digit, e.start, e.end, e.outputs) for e in evs]
        self.t_reference = time.monotonic() - t0

    # -- the report -----------------------------------------------------------------------
    def finish(self) -> dict[str, Any]:
        assert self.samples is not None or self.aborted
        n = len(self.samples) if self.samples is not None else 0
        seconds = n / self.ref.cfg.sr
        complete = not self.failed and not self.interrupted and not self.aborted and self.attempts > 0
        identical = None
        if self.reference_events is not None and complete:
            identical = self.events == self.reference_events
        failures = []
        if self.failed:
            failures.append(self.failed)
        if identical is False:
            failures.append(self._first_difference())
        digits = "".join(str(e["digit"]) for e in self.events if e["digit"] is not None)
        per_second = {s: (self.cost[s] / seconds if seconds else None) for s in STAGES}
        per_second["total"] = sum(self.cost.values()) / seconds if seconds else None
        if self.interrupted:
            status = EXIT_INTERRUPTED
        elif self.aborted:
            status = EXIT_USAGE
        else:
            status = EXIT_FAILED if failures else EXIT_OK
        return {
            "schema": REPORT_SCHEMA,
            "tool": "host.listen",
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "port": self.args.port,
            "url": self.url,
            "wav": str(self.args.wav),
            "device": dataclasses.asdict(self.info) if self.info else None,
            "reference": {"model_dir": str(self.args.model), "model_sha256": self.ref.sha256,
                          "frontend_sha256": self.ref.cfg.sha256(), "sample_rate": self.ref.cfg.sr},
            "checks": self.checks,
            "samples": n,
            "seconds": seconds,
            "frames": self.frames,
            "chunk_samples": self.chunk,
            "events": self.events,
            "reference_events": self.reference_events,
            "identical": identical,
            "digits": digits,
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
        description="Stream a recording (any length) to a spoken-digit device as one unbroken stream and "
                    "print each digit as the board reports it (time in seconds, digit, confidence), then the "
                    "digit string. Exit status: 0 all good, 1 a check failed, 2 usage/connection error, "
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
    d.add_argument("--faults", default=None, metavar="SPEC",
                   help="run through the fault-injecting proxy (host/faultlink.py), e.g. 'rate=1e-3,seed=1'; "
                        "see python -m host.faultlink --help")
    i = ap.add_argument_group("input")
    i.add_argument("--wav", required=True, metavar="FILE",
                   help="the recording: a WAV file of any length; mono 16-bit at the device's sample rate "
                        "(8 kHz) is sent as it is, stereo is mixed to mono and other rates are resampled "
                        "(said on stderr)")
    m = ap.add_argument_group("reference")
    m.add_argument("--model", default=DEFAULT_MODEL_DIR, metavar="DIR",
                   help="released model directory (model_int8.tflite, frontend.json): INFO's model hash must "
                        "match it, and --check runs it (default: %(default)s)")
    m.add_argument("--check", action="store_true",
                   help="also run the Python reference on the same samples; exit 1 unless the device's events "
                        "are identical (digit, first and last sample, the ten int8 outputs)")
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


def _summary(report: dict[str, Any]) -> str:
    lines = [f"digits: {report['digits'] or '(none)'}  ({len(report['events'])} event(s) in "
             f"{report['seconds']:.2f} s of audio, {report['frames']} frames)"]
    if report["identical"] is not None:
        lines.append("reference: " + ("identical events" if report["identical"] else "EVENTS DIFFER"))
    ps = report["cost"]["per_second_of_audio"]
    if report["cost"]["unit"] and ps["total"] is not None:
        unit = report["cost"]["unit"]
        lines.append("device cost per second of audio: " + ", ".join(
            f"{s} {ps[s]:,.0f}" for s in (*STAGES, "total")) + f" {unit}")
    for f in report["failures"]:
        lines.append(f"FAILED: {f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    progress = not args.no_progress
    run: ListenRun | None = None

    def conclude() -> int:
        assert run is not None
        report = run.finish()
        _say(_summary(report))
        _write_report(report, args)
        if run.attempts:
            _out(f"digits: {report['digits']}")
        return report["exit_status"]

    try:
        check_writable("--report", args.report)
        board = emulator_board(args.port)
        if args.timeout is None:
            args.timeout = QEMU_TIMEOUT if board not in (None, "posix") else DEFAULT_TIMEOUT
        reference = load_reference(args.model)
        notes: list[str] = []
        samples = _read_input(args.wav, reference.cfg.sr, notes)
        for note in notes:
            _say(note)
        run = ListenRun(args, reference, _say, _out)
        run.data_notes = notes
        run.samples = samples
        _say(f"{args.wav}: {len(samples)} samples, {len(samples) / reference.cfg.sr:.2f} s at {reference.cfg.sr} Hz")
        with ExitStack() as stack:
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
        if args.check and not run.aborted and not run.failed:
            _say("running the Python reference on the same samples ...")
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
        if run is None or run.samples is None:
            return EXIT_INTERRUPTED
        run.interrupted = True
        return conclude()
    except Exception as exc:  # a bug or an unexpected failure: keep what was measured
        if args.verbose:
            traceback.print_exc()
        _say(f"error: {type(exc).__name__}: {exc}" + ("" if args.verbose else " (--verbose for the traceback)"))
        if run is not None and run.samples is not None:
            run.aborted = f"{type(exc).__name__}: {exc}"
            try:
                return conclude()
            except Exception:
                pass
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
