"""One device session, shared by the host tools (host.parity, host.listen).

A session opens the port (a serial device, a pty, ``socket://``, or
``emulator[:BOARD]``, which builds and starts an emulated board, optionally
behind the fault-injecting proxy of host/faultlink.py), asks INFO and checks
it against the Python reference (model SHA-256, protocol version, front-end
configuration, sample rate, tensor sizes), adopts the device's receive window
and reads its receive counters (STATS) at the start and end, and recovers
after faults: RESET when the device still answers, else close and reopen the
port (continuing the seq) and check that the same model answers again
(docs/protocol.md, "Faults and recovery"). :meth:`DeviceSession._attempt`
runs one exchange (a clip, a stream) with those recoveries, a bounded number
of times.

The tools subclass :class:`DeviceSession` with what they do over it.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np
import serial

from host import protocol as p
from host.device import Device, LinkError

ROOT = Path(__file__).resolve().parent.parent

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

EMULATOR_PREFIX = "emulator"
DEFAULT_MODEL_DIR = "models/released"
DEFAULT_TIMEOUT = 5.0
#: Default response timeout on QEMU boards (slower than hardware or the posix build).
QEMU_TIMEOUT = 20.0
#: Seconds to wait for a vanished port (a board resetting, USB re-enumerating) to come back.
REOPEN_SECONDS = 5.0
DEFAULT_RETRIES = 2
DEFAULT_CLIP_ATTEMPTS = 3
#: INFO requests (each with --retries resends) after reopening the port before the device counts as lost.
REOPEN_INFO_ROUNDS = 3
#: Handshakes tried with an emulated board whose pty failed on the first read.
EMULATOR_HANDSHAKE_TRIES = 3

#: Device errors after which a clip is worth restarting: its request was damaged,
#: or the device lost the clip's state (docs/protocol.md, "host action").
RESTART_ERRORS = frozenset(
    {p.ErrorCode.BAD_CRC, p.ErrorCode.BAD_FRAME, p.ErrorCode.NO_CLIP, p.ErrorCode.CLIP_MISMATCH, p.ErrorCode.SEQUENCE}
)

T = TypeVar("T")

try:  # pyserial's posix backend lets termios.error (not an OSError) out of tcflush on a dead pty
    import termios

    LINK_ERRORS: tuple[type[BaseException], ...] = (LinkError, serial.SerialException, OSError, termios.error)
except ImportError:  # Windows
    LINK_ERRORS = (LinkError, serial.SerialException, OSError)


class UsageError(Exception):
    """Bad arguments, missing files, a port that cannot be used, a refused device: exit 2."""


class DeviceLost(Exception):
    """The device vanished or stopped answering mid-run."""


class ClipFailed(Exception):
    """One exchange failed for good; ``cause`` is the last error, ``attempts`` how often it was tried."""

    def __init__(self, cause: BaseException, attempts: int) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.attempts = attempts


# ---- counting bytes on the wire -----------------------------------------------


@dataclass
class WireMeter:
    """Bytes through the port (``sent``/``received``: everything on the wire,
    COBS, delimiters, headers, CRCs and resends included) and message payload
    bytes of completed requests (``payload_sent``/``payload_received``)."""

    sent: int = 0
    received: int = 0
    payload_sent: int = 0
    payload_received: int = 0
    audio_requests: int = 0  # AUDIO requests made (completed or not) and their resends: the
    audio_resent: int = 0  # host's measure of how well chunks of the current size get through

    def snapshot(self) -> WireMeter:
        return dataclasses.replace(self)

    def since(self, before: WireMeter) -> dict[str, int]:
        return {k: getattr(self, k) - getattr(before, k) for k in ("sent", "received", "payload_sent", "payload_received")}


class _CountingPort:
    """Wraps a pyserial object; counts the bytes of write() and read(), delegates the rest."""

    def __init__(self, ser: Any, meter: WireMeter) -> None:
        object.__setattr__(self, "_ser", ser)
        object.__setattr__(self, "_meter", meter)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ser, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._ser, name, value)

    def write(self, data: bytes) -> int | None:
        self._meter.sent += len(data)
        return self._ser.write(data)

    def read(self, size: int = 1) -> bytes:
        data = self._ser.read(size)
        self._meter.received += len(data)
        return data


class MeteredDevice(Device):
    """A :class:`Device` that counts wire and payload bytes into ``meter``."""

    def __init__(self, url: str, *, meter: WireMeter, **kw: Any) -> None:
        super().__init__(url, **kw)
        self.meter = meter
        self._ser = _CountingPort(self._ser, meter)

    def request(self, msg_type: int, payload: bytes = b"", *, timeout: float | None = None) -> bytes:
        resent = self.stats["resent"]
        try:
            response = super().request(msg_type, payload, timeout=timeout)
        finally:
            if msg_type == p.MsgType.AUDIO:
                self.meter.audio_requests += 1
                self.meter.audio_resent += self.stats["resent"] - resent
        self.meter.payload_sent += len(payload)
        self.meter.payload_received += len(response)
        return response


# ---- the reference and the port ------------------------------------------------


def load_reference(model_dir: str) -> Any:
    """Reference.from_dir, with usage errors that say what to do."""
    from convert.reference import Reference

    path = Path(model_dir)
    if not path.is_dir() and not path.is_absolute() and (ROOT / path).is_dir():
        path = ROOT / path
    if not path.is_dir():
        raise UsageError(f"--model {model_dir}: no such directory")
    if not (path / "frontend.json").is_file():
        raise UsageError(f"{path}: no frontend.json; pass --model with a released model directory")
    try:
        return Reference.from_dir(path)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from exc
    except ValueError as exc:
        raise UsageError(f"{path}: {exc}") from exc


# ---- ports ------------------------------------------------------------------------


def emulator_board(port: str) -> str | None:
    """"emulator" -> "posix", "emulator:<board>" -> board, anything else -> None."""
    if port == EMULATOR_PREFIX:
        return "posix"
    if port.startswith(EMULATOR_PREFIX + ":"):
        from host.emulator import BOARDS

        board = port.split(":", 1)[1]
        if board not in BOARDS:
            raise UsageError(f"--port {port}: unknown emulated board {board!r}; use one of "
                             + ", ".join(f"emulator:{b}" for b in BOARDS))
        return board
    return None


def _port_hint(port: str, exc: BaseException) -> str:
    text = str(exc)
    low = text.lower()
    if "no such file" in low or "could not open port" in low and "errno 2" in low:
        fix = ("check the cable and the name (ls /dev/ttyACM* /dev/ttyUSB*); "
               "without a board use --port emulator or --port emulator:mps2-an386")
    elif "permission denied" in low:
        fix = "add yourself to the dialout group (sudo usermod -aG dialout $USER, then log in again)"
    elif "busy" in low or "lock" in low:
        fix = "another program holds it (screen, minicom, a second host.parity): close that program"
    elif "connection refused" in low or "socket" in low:
        fix = "is the server at that address running?"
    elif "invalid url" in low or "protocol" in low and "not known" in low:
        fix = "use a device path, a pty path, socket://host:port, loop:// or emulator[:board]"
    else:
        fix = "check the port name and that nothing else uses it"
    return f"cannot open port {port}: {text}; {fix}"


# ---- the session ------------------------------------------------------------------


class DeviceSession:
    """A connection to one device, checked against ``reference``, with recovery after faults.

    ``args`` carries the common options (port, baud, timeout, retries, clip_attempts, model);
    ``say`` prints one message line on stderr. ``needs_front_end``: INFO's front-end hash and
    sample rate must match the reference's (else only a warning); ``chunk_fixed``: the fixed
    bytes of the chunked request the tool sends (AUDIO 12, STREAM 16), which bound its chunk.
    """

    needs_front_end = True
    #: INFO's stream-config hash must match train.stream.DEFAULT_STREAM's (the tool streams);
    #: otherwise a difference is only a warning.
    needs_stream = False
    #: Appended to a front-end mismatch that refuses the run (how to run without the front end).
    front_end_hint = ""
    chunk_fixed = p.AUDIO_REQ_FIXED

    def __init__(self, args: argparse.Namespace, reference: Any, say: Callable[[str], None]) -> None:
        self.args = args
        self.ref = reference
        self.say = say
        self.meter = WireMeter()
        self.url: str | None = None
        self.emulator: Any = None
        self.dev: MeteredDevice | None = None
        self.info: p.Info | None = None
        self.checks: dict[str, Any] = {}
        self.timeout = args.timeout
        self.chunk = self.chunk_max = p.MAX_AUDIO_SAMPLES
        self.recoveries = 0
        self.device_stats = {"damaged": 0, "stale": 0, "resent": 0, "timeouts": 0}
        # The device's own receive counters (STATS): the baseline of the open session and the
        # totals of closed ones; what the board lost on the way in shows here.
        self.link_start: p.Stats | None = None
        self.link_totals: dict[str, int] = {}
        self.link_window: int | None = None
        self.link_high_water = 0
        self.link_sessions = 0
        self.link_incomplete: list[str] = []
        self.clip_attempts = getattr(args, "clip_attempts", DEFAULT_CLIP_ATTEMPTS)
        self.fault_link: Any = None  # host.faultlink.FaultLink when --faults is given
        self.aborted: str | None = None

    def _chunk_limit(self, dev: Device) -> int:
        """Largest chunk (samples) of the tool's chunked request that fits the device's receive window:
        AUDIO's here; a tool that sends another chunked request (host.listen: STREAM) overrides it."""
        return dev.max_chunk_samples

    # -- connection ----------------------------------------------------------------
    def _open(self, seq: int | None = None) -> MeteredDevice:
        assert self.url is not None
        return MeteredDevice(self.url, meter=self.meter, baudrate=self.args.baud, timeout=self.timeout,
                             retries=self.args.retries, seq=seq)

    def connect(self, url: str, emulator: Any = None) -> None:
        """Open the port, ask INFO, check it against the reference (UsageError if refused)."""
        self.url, self.emulator = url, emulator
        try:
            self.dev = self._open()
        except (*LINK_ERRORS, ValueError) as exc:
            raise UsageError(_port_hint(self.args.port, exc)) from exc
        if emulator is not None:
            emulator.resume()
        try:
            for left in range(EMULATOR_HANDSHAKE_TRIES - 1, -1, -1):
                try:
                    self._handshake()
                    break
                except UsageError as exc:
                    # Seen on a loaded machine: the first read of an emulated board's fresh pty fails
                    # ("readiness to read but returned no data") though the board runs. Reopen and ask again.
                    if not (left and emulator is not None and emulator.alive()
                            and isinstance(exc.__cause__, LINK_ERRORS)):
                        raise
                    self.say(f"{self.args.port}: {exc}; reopening the port")
                    assert self.dev is not None
                    self.dev.close()
                    time.sleep(0.5)
                    self.dev = self._open()
        except BaseException:
            self.close()
            raise

    def _handshake(self) -> None:
        assert self.dev is not None
        try:
            for left in range(REOPEN_INFO_ROUNDS - 1, -1, -1):
                try:
                    self.info = self.dev.info()  # ~150 bytes back: a noisy line may damage every resend
                    break
                except p.CrcError:
                    if not left:
                        raise
        except p.Timeout as exc:
            raise UsageError(
                f"no answer from {self.args.port} to INFO within {self.timeout:g} s "
                f"({self.args.retries + 1} attempt(s)): is the firmware flashed and running, is this the "
                f"board's port, is another program (screen, minicom) using it? Raise --timeout for a slow link."
            ) from exc
        except p.ProtocolError as exc:
            raise UsageError(f"{self.args.port} answered INFO with {exc}: not this project's firmware, "
                             f"or a different protocol version") from exc
        except LINK_ERRORS as exc:
            raise UsageError(f"{self.args.port}: the port failed while asking INFO: {exc}") from exc
        self._check_info(self.info)
        self._link_begin(self.dev)
        self.chunk_max = max(1, min(self.info.max_audio_samples, p.MAX_AUDIO_SAMPLES,
                                    (self.info.max_payload - self.chunk_fixed) // 2, self._chunk_limit(self.dev)))
        if getattr(self.args, "chunk_samples", None):
            self.chunk_max = min(self.chunk_max, self.args.chunk_samples)
        self.chunk = self.chunk_max

    # -- the device's receive counters (STATS) -------------------------------------------
    def _link_begin(self, dev: Device) -> None:
        """Adopt the device's receive window and take the counters' baseline for this session."""
        try:
            stats = dev.negotiate()
        except (p.ProtocolError, *LINK_ERRORS) as exc:
            if self.link_window is not None:
                dev.rx_window = self.link_window  # the same board: keep to its window
            self.link_start = None
            self.link_incomplete.append(f"STATS at the start of a session failed: {exc}")
            return
        self.link_window = stats.rx_window
        self.link_start = stats
        self.link_sessions += 1

    def _link_end(self) -> None:
        """Add what the device counted since the session's baseline (before its port closes)."""
        if self.dev is None or self.link_start is None:
            return
        start, self.link_start = self.link_start, None
        if self.aborted or (self.emulator is not None and not self.emulator.alive()):
            self.link_incomplete.append("the run ended without the device: no final STATS")
            return
        try:
            # Bounded: a device that went silent must not hold up the report.
            end = p.parse_stats(self.dev.request(p.MsgType.STATS, timeout=min(self.timeout, 2.0)))
        except (p.ProtocolError, *LINK_ERRORS) as exc:
            self.link_incomplete.append(f"STATS at the end of a session failed: {exc}")
            return
        fields = ("rx_bytes", "rx_dropped", "frames_ok", "bad_crc", "bad_frame", "too_large")
        if end.rx_bytes < start.rx_bytes or end.frames_ok < start.frames_ok:
            # The board restarted during the session (counters start at 0 again): count from 0.
            self.link_incomplete.append("the board restarted during a session: counts before its restart are lost")
            start = p.Stats(0, 0, 0, 0, 0, 0, start.rx_window, 0)
        for f in fields:
            self.link_totals[f] = self.link_totals.get(f, 0) + (getattr(end, f) - getattr(start, f)) % 2**32
        self.link_high_water = max(self.link_high_water, end.rx_high_water)

    def link_report(self) -> dict[str, Any] | None:
        """The ``"link"`` section: the device's receive counters over the run."""
        if self.link_window is None:
            return None
        t = self.link_totals
        return {
            "rx_window": self.link_window,
            "rx_high_water": self.link_high_water,
            "rx_bytes": t.get("rx_bytes"),
            "rx_dropped": t.get("rx_dropped"),
            "frames_ok": t.get("frames_ok"),
            "frames_bad": {"bad_crc": t.get("bad_crc"), "bad_frame": t.get("bad_frame"), "too_large": t.get("too_large")},
            "sessions": self.link_sessions,
            "complete": not self.link_incomplete,
            "notes": self.link_incomplete,
        }

    def close(self) -> None:
        if self.dev is not None:
            self._link_end()
            self._collect_stats()
            try:
                self.dev.close()
            except LINK_ERRORS:
                pass
            self.dev = None

    def _check_info(self, info: p.Info) -> None:
        ref, cfg = self.ref, self.ref.cfg
        from train.stream import DEFAULT_STREAM

        model_ok = info.model_sha256 == ref.sha256
        fe_ok = info.frontend_sha256 == cfg.sha256()
        stream_sha = DEFAULT_STREAM.sha256()
        self.checks = {
            "model_sha256": {"device": info.model_sha256, "reference": ref.sha256, "match": model_ok},
            "frontend_sha256": {"device": info.frontend_sha256, "reference": cfg.sha256(), "match": fe_ok},
            "frontend_version": {"device": info.frontend_version, "reference": cfg.version,
                                 "match": info.frontend_version == cfg.version},
            "stream_sha256": {"device": info.stream_sha256, "reference": stream_sha,
                              "match": info.stream_sha256 == stream_sha},
            "protocol_version": {"device": info.protocol_version, "reference": p.PROTOCOL_VERSION,
                                 "match": info.protocol_version == p.PROTOCOL_VERSION},
            "sample_rate": {"device": info.sample_rate, "reference": cfg.sr, "match": info.sample_rate == cfg.sr},
            "tensor_sizes": {"device": [info.input_size, info.output_size],
                             "reference": [int(np.prod(ref.input_shape)), len(ref.labels)],
                             "match": (info.input_size, info.output_size) == (int(np.prod(ref.input_shape)), len(ref.labels))},
            "labels_sha256": {"device": info.labels_sha256, "reference": ref.labels.sha256(),
                              "match": info.labels_sha256 == ref.labels.sha256()},
        }
        problems = []
        if not self.checks["protocol_version"]["match"]:
            problems.append(f"the device speaks protocol version {info.protocol_version}, this host {p.PROTOCOL_VERSION}")
        if not model_ok:
            why = " (all zeros: the firmware was built without a generated model)" if not info.model_sha256.strip("0") else ""
            problems.append(
                f"model SHA-256 differs:\n    device    {info.model_sha256}{why}\n    reference {ref.sha256}"
                f" ({self.args.model})\n  flash firmware built from this model (python -m convert.quantize, then "
                f"make -C firmware BOARD=...), or pass --model with the model the device runs"
            )
        if not self.checks["tensor_sizes"]["match"]:
            problems.append(f"tensor sizes differ: device in/out {info.input_size}/{info.output_size}, "
                            f"reference {self.checks['tensor_sizes']['reference']}")
        if not self.checks["labels_sha256"]["match"]:
            problems.append(
                f"label lists differ: the device's firmware has {info.output_size} labels (SHA-256 "
                f"{info.labels_sha256}), the model folder's labels.json has {len(ref.labels)}: "
                f"{', '.join(ref.labels.names)} (SHA-256 {ref.labels.sha256()}); flash firmware built from "
                f"this model folder, or pass --model with the folder the firmware was built from")
        front_end = self.needs_front_end
        for name, what in (("frontend_sha256", "front-end config SHA-256"), ("sample_rate", "sample rate")):
            c = self.checks[name]
            if c["match"]:
                continue
            msg = f"{what} differs: device {c['device']}, reference {c['reference']}"
            if name == "frontend_sha256" and info.frontend_version != cfg.version:
                from train.features import describe_version

                msg = (f"front ends differ: the device runs front end {describe_version(info.frontend_version)}, "
                       f"the model folder's frontend.json is "
                       f"{cfg.describe()} (config SHA-256 device {c['device']}, reference {c['reference']}); "
                       + ("retrain the model with the current python -m train (v2 is the default), convert it and "
                          "flash firmware built from it" if info.frontend_version == 2 else
                          "flash firmware built from this model (python -m convert.quantize, then make -C firmware)"))
            if front_end:
                problems.append(msg + self.front_end_hint)
            else:
                self.say(f"warning: {msg}; model-only mode does not use the front end")
        c = self.checks["stream_sha256"]
        if not c["match"]:
            msg = (f"stream-config SHA-256 differs: device {c['device']}, reference {c['reference']} "
                   f"(train/stream.py's StreamConfig; regenerate with python -m convert.firmware_gen and rebuild)")
            if self.needs_stream:
                problems.append(msg)
            else:
                self.say(f"warning: {msg}; clips do not use the streaming detector")
        if problems:
            raise UsageError("refusing to run: " + "\n".join(problems))

    def _recover(self, link_lost: bool) -> None:
        """After a failed exchange: RESET if the device still answers, else reopen the port.

        A RESET that fails with damaged frames or an ERROR shows a device behind a noisy line, not a
        lost one: the clip's next attempt starts with AUDIO BEGIN, which drops whatever the device
        held, so nothing more is needed. Only silence or a failing port leads to a reopen. Raises
        DeviceLost when the device cannot be reached any more.
        """
        self.recoveries += 1
        if self.emulator is not None and not self.emulator.alive():
            tail = "\n".join(self.emulator.log().splitlines()[-10:])
            raise DeviceLost(f"the emulated {self.emulator.board} board exited" + (f":\n{tail}" if tail else ""))
        assert self.dev is not None
        if not link_lost:
            try:
                self.dev.reset()  # with the usual resends: on a noisy line one RESET may be damaged
                return
            except p.Timeout:
                pass  # silence: reopen
            except p.ProtocolError:
                return  # it answered, damaged: it is there
            except LINK_ERRORS:
                pass
        self._reopen()

    def _reopen(self) -> None:
        assert self.dev is not None and self.info is not None
        if self.link_start is not None:
            self.link_incomplete.append("the port was reopened: counts of the session before it are lost")
        self.link_start = None
        self._collect_stats()
        seq = self.dev.seq  # continue the seq: a late answer to the old port must not match a new request
        try:
            self.dev.close()
        except LINK_ERRORS:
            pass
        deadline = time.monotonic() + max(self.timeout, REOPEN_SECONDS)
        while True:
            try:
                dev = self._open(seq)
                break
            except (*LINK_ERRORS, ValueError) as exc:
                if time.monotonic() > deadline:
                    raise DeviceLost(f"{self.args.port} vanished and did not come back ({exc})") from exc
                time.sleep(0.2)
        info = None
        for _ in range(REOPEN_INFO_ROUNDS):  # a noisy line may damage INFO (142 bytes and 3 strings) a few times
            try:
                info = dev.info()
                break
            except p.Timeout as exc:  # silence
                dev.close()
                raise DeviceLost(f"{self.args.port} does not answer any more ({exc})") from exc
            except (p.ProtocolError, *LINK_ERRORS) as exc:
                last: BaseException = exc
        if info is None:
            dev.close()
            raise DeviceLost(f"{self.args.port} does not answer INFO intelligibly any more ({last})")
        if info.model_sha256 != self.info.model_sha256:
            dev.close()
            raise DeviceLost(f"after reconnecting, {self.args.port} reports model {info.model_sha256}, "
                             f"not {self.info.model_sha256}")
        self.dev = dev
        self._link_begin(dev)
        self.say(f"reconnected to {self.args.port}")

    def _collect_stats(self) -> None:
        if self.dev is not None:
            for k in self.device_stats:
                self.device_stats[k] += self.dev.stats.get(k, 0)
            self.dev.stats = {k: 0 for k in self.dev.stats}

    def _attempt(self, fn: Callable[[], T]) -> tuple[T, int]:
        """Run one exchange; on failure recover (RESET or reopen) and restart it from the
        beginning, at most ``clip_attempts`` times in all.

        Returns (result, attempts). Raises ClipFailed when it fails for good,
        DeviceLost when the device cannot be reached any more.
        """
        attempt = 1
        while True:
            if attempt > 1:
                self._before_retry()
            try:
                return fn(), attempt
            except p.DeviceError as exc:
                if exc.code not in RESTART_ERRORS or attempt >= self.clip_attempts:
                    raise ClipFailed(exc, attempt) from exc
                self._recover(link_lost=False)
            except p.ProtocolError as exc:  # Timeout, CrcError, a replayed CLASSIFY without features, ...
                if attempt >= self.clip_attempts:
                    self._recover(link_lost=False)  # leave the device clean for the next clip
                    raise ClipFailed(exc, attempt) from exc
                self._recover(link_lost=False)
            except LINK_ERRORS as exc:  # the port itself failed
                self._recover(link_lost=True)  # DeviceLost if it is gone for good
                if attempt >= self.clip_attempts:
                    raise ClipFailed(exc, attempt) from exc
            attempt += 1

    def _before_retry(self) -> None:
        """Called before an exchange is tried again (after the recovery); tools adapt here."""

    def _stat_total(self, key: str) -> int:
        return self.device_stats[key] + (self.dev.stats.get(key, 0) if self.dev is not None else 0)



def _header_define(path: Path, name: str) -> str | None:
    import re

    try:
        m = re.search(rf'#define {name} "([0-9a-fA-F]{{64}})"', path.read_text())
    except OSError:
        return None
    return m[1].lower() if m else None


def firmware_sources(model_dir: str | Path, say: Callable[[str], None] | None = None) -> Path | None:
    """The generated C an emulated board is built from for ``model_dir``: None (firmware/generated, the
    release) when that holds this model, else the model folder's own (convert.quantize writes it to
    ``<model>/firmware``). Picked by the model's SHA-256 and its labels' hash, so a board never runs
    another model than the one the host checks against; UsageError when no sources hold it."""
    import hashlib

    from convert.quantize import C_SUBDIR, FIRMWARE_GENERATED
    from train.labels import Labels

    model_dir = Path(model_dir)
    tflite = model_dir / "model_int8.tflite"
    if not tflite.is_file():
        return None  # the reference's own loading says what is missing
    sha = hashlib.sha256(tflite.read_bytes()).hexdigest()
    try:
        labels = Labels.load(model_dir).sha256()
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    tried = []
    for gen in (FIRMWARE_GENERATED, model_dir / C_SUBDIR):
        have = (_header_define(gen / "sd_model_graph.h", "SD_MODEL_SHA256"),
                _header_define(gen / "sd_labels.h", "SD_LABELS_SHA256"))
        if have == (sha, labels):
            if gen != FIRMWARE_GENERATED and say is not None:
                say(f"firmware: building {model_dir}'s own generated sources ({gen})")
            return None if gen == FIRMWARE_GENERATED else gen.resolve()
        tried.append(f"{gen}: model {(have[0] or 'none')[:16]}, labels {(have[1] or 'none')[:16]}")
    raise UsageError(f"no generated firmware sources hold {model_dir}'s model (SHA-256 {sha[:16]}, labels "
                     f"{labels[:16]}); tried " + "; ".join(tried) +
                     f". Run `python -m convert.quantize --model {model_dir}` (it writes {model_dir / C_SUBDIR})")


def open_link(stack: ExitStack, args: argparse.Namespace, board: str | None, say: Callable[[str], None],
              expected_clips: int = 1) -> tuple[str, Any, Any]:
    """Start what ``--port`` (and ``--faults``) ask for inside ``stack``: the fault-injecting proxy,
    an emulated board, or nothing. Returns (url to open, emulator or None, fault link or None);
    UsageError when it cannot be started."""
    emu = None
    link = None
    if getattr(args, "faults", None) is not None:
        from host.emulator import EmulatorError
        from host.faultlink import FaultLink, FaultSpec, FaultSpecError

        try:
            spec = FaultSpec.parse(args.faults)
            link = FaultLink(spec, url=None if board else args.port, board=board,
                             expected_clips=expected_clips, baudrate=args.baud, say=say,
                             gen=firmware_sources(args.model, say) if board else None)
        except FaultSpecError as exc:
            raise UsageError(f"--faults {args.faults}: {exc}") from exc
        say(f"starting the fault-injecting link to {args.port} ...")
        try:
            emu = stack.enter_context(link)
        except (EmulatorError, *LINK_ERRORS, ValueError) as exc:
            raise UsageError(f"--port {args.port}: {exc}") from exc
        return link.host_port, emu, link
    if board is not None:
        from host.emulator import EmulatorError, start_emulator

        say(f"building and starting the emulated {board} board ...")
        try:
            emu = stack.enter_context(start_emulator(board, build=True, gen=firmware_sources(args.model, say)))
        except EmulatorError as exc:
            raise UsageError(f"--port {args.port}: {exc}") from exc
        return emu.port, emu, None
    return args.port, None, None


# ---- argparse types shared by the tools' command lines ----------------------------------


def positive_int(text: str) -> int:
    v = int(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return v


def nonneg_int(text: str) -> int:
    v = int(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return v


def positive_float(text: str) -> float:
    v = float(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return v


def check_writable(opt: str, value: str | None) -> None:
    """Refuse an output path that cannot be written before the run, not after it."""
    if not value:
        return
    path = Path(value)
    try:
        if path.is_dir():
            raise OSError(f"{path} is a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(path.name + ".tmp"), "w"):
            pass
        path.with_name(path.name + ".tmp").unlink()
    except OSError as exc:
        raise UsageError(f"{opt} {value}: cannot write there ({exc}); pass a writable file path") from exc


