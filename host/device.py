"""A spoken-digit device behind a serial port (docs/protocol.md).

The port is opened only through ``serial.serial_for_url``, so a device path
(/dev/ttyACM0), a pty path (posix board, QEMU), ``socket://host:port`` and
``loop://`` all work. Every wait is bounded by a timeout.

    with Device("/dev/ttyACM0", retries=2) as dev:
        print(dev.info())
        result = dev.classify_clip(1, samples)   # samples: np.ndarray[int16]
"""

from __future__ import annotations

import dataclasses
import os
import time
import zlib
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import numpy as np
import serial

from host import protocol as p

try:  # pyserial's posix backend lets termios.error (not an OSError) out of tcflush on a dead pty
    import termios

    _PORT_ERRORS: tuple[type[BaseException], ...] = (serial.SerialException, OSError, termios.error)
except ImportError:  # Windows
    _PORT_ERRORS = (serial.SerialException, OSError)

_T = TypeVar("_T")

#: ERROR codes that mean "the request was damaged on the way": resend it, same seq. TOO_LARGE
#: counts too: this host never sends a frame over the limit, so only line damage (a lost
#: delimiter merging two frames) makes one.
RESEND_ERRORS = p.TRANSPORT_ERRORS | {p.ErrorCode.TOO_LARGE}
#: After a damaged frame, resend once the line has been quiet this long (the rest of a split frame),
#: or timeout / 25 if longer.
DAMAGE_SETTLE_SECONDS = 0.02
#: A partial frame followed by this much silence (or timeout / 10 if longer) is ended as if its
#: delimiter had come (the delimiter was lost on the line); it still has to pass the CRC. Scaled
#: with the timeout because an emulated board on a loaded machine can stall mid-frame: ending
#: its frame early and resending while it still transmits overruns its receive ring.
IDLE_FRAME_END_SECONDS = 0.05
#: FEATURES part size when a replayed CLASSIFY (its answer was lost) must be made good and the
#: caller named none: 5 frames of 274 bytes instead of one of 1,338.
DEFAULT_PART_BYTES = 256


class LinkError(serial.SerialException):
    """The port itself failed (the device vanished, the pty closed): reopen it or give up.

    A subclass of ``serial.SerialException`` (so of OSError); raised instead of
    whatever pyserial, the OS or termios raised, which is kept as ``__cause__``.
    """


@dataclass(frozen=True)
class DeviceResult:
    """What the device computed for one clip (CLASSIFY) or one tensor (INFER).

    Attributes:
        label: index of the first largest output, 0 .. K - 1 (a label index).
        output: np.ndarray[int8, shape=(K,)], the model's output tensor (one score per label).
        features: np.ndarray[int8, shape=(1280,)], the model input the device's
            front end computed (row-major, 16 time steps x 80 mel), or None
            when not requested (and always for INFER).
        n_samples: samples the device's front end received (0 for INFER).
        cost: {"frontend", "lstm", "head"}: ints in Info.cost_unit; frontend is
            0 for INFER.
    """

    label: int
    output: np.ndarray
    features: np.ndarray | None
    n_samples: int
    cost: dict[str, int]


def _to_device_result(r: p.Result) -> DeviceResult:
    features = None if r.features is None else np.frombuffer(r.features, dtype=np.int8).copy()
    return DeviceResult(r.label, np.array(r.output, dtype=np.int8), features, r.n_samples, dict(r.cost))


class Device:
    """Request/response client for the firmware's serial protocol.

    Args:
        url: anything ``serial.serial_for_url`` accepts.
        baudrate: ignored by ptys, sockets and USB virtual COM ports.
        timeout: seconds to wait for each response (and for each write).
        retries: times a request is resent (same seq) after a timeout, a
            damaged response or a device report that the request arrived
            damaged. 0 = fail on the first problem.
        seq: the last seq used (the next request uses seq + 1); default random.
            Pass the old Device's ``seq`` when reopening a port mid-run.

    Every wait is bounded (a request takes at most (retries + 1) x timeout).
    A port that fails (the device vanished, a pty closed: pyserial's
    SerialException, OSError, termios.error) raises :class:`LinkError`.
    Resending is safe for every request type (docs/protocol.md, "Sequencing,
    timeouts and retries"); what a result may be trusted for is in "Faults
    and recovery".
    """

    def __init__(self, url: str, *, baudrate: int = 115200, timeout: float = 5.0, retries: int = 0,
                 seq: int | None = None) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0, got {timeout}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.timeout = timeout
        self.retries = retries
        try:
            self._ser = serial.serial_for_url(url, baudrate=baudrate, timeout=0.05, write_timeout=timeout)
        except serial.SerialException:
            raise
        except _PORT_ERRORS as exc:
            raise LinkError(f"cannot open {url}: {exc}") from exc
        self._decoder = p.FrameDecoder()
        # The last seq used. A new session starts at a random one (it differs from a previous
        # session's); pass ``seq=old.seq`` when reopening mid-run, so no seq is reused while a
        # late response to the old session may still arrive.
        self.seq = int.from_bytes(os.urandom(2), "little") if seq is None else seq & 0xFFFF
        #: The device's receive window (STATS ``rx_window``, docs/protocol.md "Flow control"): the
        #: most bytes a request may put on the wire, delimiters included, before the host waits
        #: for its response. 0 = no limit. Set by :meth:`negotiate`.
        self.rx_window = 0
        #: The model's output count (INFO's output_size, one per label); read by the first INFO.
        self.n_outputs: int | None = None
        #: Frames ignored so far (damaged, not a response, stale seq), resends and timed-out waits.
        self.stats = {"damaged": 0, "stale": 0, "resent": 0, "timeouts": 0}

    @property
    def _settle(self) -> float:
        return max(DAMAGE_SETTLE_SECONDS, self.timeout / 25)

    @property
    def _idle_end(self) -> float:
        return max(IDLE_FRAME_END_SECONDS, self.timeout / 10)

    # ---- lifetime -----------------------------------------------------------

    def close(self) -> None:
        """Close the port (never raises for a port that already died)."""
        try:
            self._ser.close()
        except _PORT_ERRORS:
            pass

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- transport ----------------------------------------------------------

    def request(self, msg_type: int, payload: bytes = b"", *, timeout: float | None = None) -> bytes:
        """Send one request, return its response payload.

        Resends the same bytes (same seq) up to ``self.retries`` times after a
        timeout, a damaged response or an ERROR saying the request arrived
        damaged (BAD_CRC, BAD_FRAME, TOO_LARGE). Worst case it takes
        (retries + 1) x timeout.

        Raises:
            DeviceError: the device answered ERROR.
            Timeout: no response within ``timeout`` (default self.timeout) per attempt.
            CrcError: only damaged frames came back.
            ProtocolError: a response of the wrong type.
            LinkError: the port failed (device gone).
        """
        timeout = self.timeout if timeout is None else timeout
        self.seq = (self.seq + 1) & 0xFFFF
        seq = self.seq
        # 0x00 frame 0x00 0x00: with one delimiter lost on the line the other still ends the
        # frame, so the device answers now instead of when the next request comes.
        wire = p.encode_frame(p.Frame(msg_type, seq, payload), leading_delimiter=True) + b"\x00"
        if self.rx_window and len(wire) > self.rx_window:
            # More than the device's receive ring holds: it could drop the tail while it is busy.
            raise p.FrameTooLarge(f"request of {len(wire)} bytes on the wire > the device's receive window "
                                  f"of {self.rx_window} bytes")
        # Nothing received before this request can answer it.
        self._io("flush input", self._ser.reset_input_buffer)
        self._decoder = p.FrameDecoder()
        last: p.ProtocolError = p.Timeout("no attempt")
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats["resent"] += 1
            self._write(wire)
            try:
                frame = self._wait(seq, time.monotonic() + timeout, msg_type, settle=attempt < self.retries)
            except p.Timeout as exc:
                self.stats["timeouts"] += 1
                last = exc
                continue
            except p.CrcError as exc:
                last = exc
                continue
            if frame.type == p.MsgType.ERROR:
                err = p.parse_error(frame.payload)
                if err.code in RESEND_ERRORS and attempt < self.retries:
                    last = err
                    continue
                raise err
            if frame.type != msg_type | p.RESPONSE_BIT:
                raise p.ProtocolError(f"response type 0x{frame.type:02x} to request 0x{msg_type:02x}")
            return frame.payload
        raise last

    def _io(self, what: str, fn: Callable[..., _T], *args: Any) -> _T:
        """Run one port operation; a failing port becomes LinkError."""
        try:
            return fn(*args)
        except serial.SerialTimeoutException:
            raise
        except _PORT_ERRORS as exc:
            raise LinkError(f"{what} failed: {exc}") from exc

    def _write(self, data: bytes) -> None:
        try:
            self._io("write", self._ser.write, data)
            self._io("flush", self._ser.flush)
        except serial.SerialTimeoutException as exc:
            raise p.Timeout(f"write of {len(data)} bytes timed out after {self.timeout} s") from exc

    def _read(self, wait: float) -> bytes:
        if self._ser.timeout != wait:
            self._ser.timeout = wait  # pyserial reconfigures the tty (termios) on every change
        return self._ser.read(max(1, self._ser.in_waiting))

    def _wait(self, seq: int, deadline: float, msg_type: int, *, settle: bool = False) -> p.Frame:
        """Read until the response with ``seq`` arrives; drop everything else.

        With ``settle``, a damaged frame ends the wait early: once the line has
        been quiet for the settle time (the rest of a split frame has
        arrived) without an intact answer, CrcError is raised so the caller
        resends at once instead of waiting out the timeout.
        """
        damaged = 0
        quiet_until: float | None = None
        last_data = time.monotonic()
        while True:
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                break
            if quiet_until is not None and now >= quiet_until:
                break
            wait = min(remaining, 0.05 if quiet_until is None else max(0.001, quiet_until - now))
            data = self._io("read", self._read, wait)
            now = time.monotonic()
            if data:
                last_data = now
                if quiet_until is not None:
                    quiet_until = now + self._settle
                events = self._decoder.feed(data)
            elif self._decoder.pending() and now - last_data >= self._idle_end:
                events = self._decoder.end_frame()
            else:
                events = []
            for event in events:
                if isinstance(event, p.ProtocolError):
                    damaged += 1
                    self.stats["damaged"] += 1
                    if settle:
                        quiet_until = time.monotonic() + self._settle
                elif event.seq != seq or not event.type & p.RESPONSE_BIT:
                    self.stats["stale"] += 1
                else:
                    return event
        try:
            name = p.MsgType(msg_type).name
        except ValueError:
            name = f"0x{msg_type:02x}"
        if damaged:
            raise p.CrcError(f"no intact response to {name} seq {seq}: {damaged} damaged frame(s)")
        raise p.Timeout(f"no response to {name} seq {seq} within the timeout")

    # ---- messages -----------------------------------------------------------

    def ping(self, data: bytes = b"") -> bytes:
        """Echo ``data`` (0..1400 bytes) through the device; returns the echo."""
        echo = self.request(p.MsgType.PING, data)
        if echo != data:
            raise p.ProtocolError("PING echo differs from what was sent")
        return echo

    def info(self) -> p.Info:
        """Protocol and firmware versions, board, hashes, sizes, cost unit."""
        info = p.parse_info(self.request(p.MsgType.INFO))
        self.n_outputs = info.output_size
        return info

    def outputs(self) -> int:
        """The model's output count: from the last INFO, asked now when none was."""
        if self.n_outputs is None:
            self.info()
        assert self.n_outputs is not None
        return self.n_outputs

    def device_stats(self) -> p.Stats:
        """The device's receive counters: bytes, bytes its port dropped, frames by outcome."""
        return p.parse_stats(self.request(p.MsgType.STATS))

    def negotiate(self) -> p.Stats:
        """Ask STATS and adopt the device's receive window (flow control); returns the counters."""
        stats = self.device_stats()
        self.rx_window = stats.rx_window
        return stats

    @property
    def max_chunk_samples(self) -> int:
        """Largest AUDIO chunk whose request fits the receive window (MAX_AUDIO_SAMPLES without one)."""
        return p.audio_samples_for_window(self.rx_window)

    def max_stream_samples(self, *, mulaw: bool = False) -> int:
        """Largest STREAM chunk whose request fits the receive window (MAX_AUDIO_SAMPLES without one);
        ``mulaw``: one byte a sample."""
        return p.stream_samples_for_window(self.rx_window, mulaw=mulaw)

    def send_stream(self, stream_id: int, offset: int, chunk: np.ndarray, *, begin: bool = False,
                    end: bool = False, mulaw: bool = False, timeout: float | None = None) -> p.StreamAck:
        """Send one STREAM chunk (<= 512 samples, starting at stream sample ``offset``); returns its
        acknowledgement, with the events the device decided while taking it.

        ``chunk``: int16 samples, or with ``mulaw`` G.711 mu-law bytes (uint8, train/mulaw.py),
        one per sample: half the bytes on the wire. A resend (same seq, after a lost answer) is
        recognized by the device from the offset and answered with the same events, so none is
        counted twice or lost.
        """
        data = np.ascontiguousarray(chunk, dtype=np.uint8 if mulaw else "<i2").tobytes()
        payload = p.build_stream(stream_id, offset, data, begin=begin, end=end, mulaw=mulaw)
        k = self.outputs()
        ack = p.parse_stream_ack(self.request(p.MsgType.STREAM, payload, timeout=timeout), k)
        want = offset + len(data) // (1 if mulaw else 2)
        if ack.stream_id != stream_id or ack.received != want or (end and not ack.ended):
            raise p.ProtocolError(
                f"STREAM ack stream {ack.stream_id} received {ack.received} ended {ack.ended}, expected stream "
                f"{stream_id} received {want}" + (" ended" if end else "")
            )
        return ack

    def reset(self) -> None:
        """Drop any open clip on the device."""
        self.request(p.MsgType.RESET)

    def send_audio(self, clip_id: int, offset: int, chunk: np.ndarray, *, begin: bool) -> int:
        """Send one AUDIO chunk (<= 512 int16 samples); returns samples received so far."""
        data = np.ascontiguousarray(chunk, dtype="<i2").tobytes()
        ack = p.parse_audio_ack(self.request(p.MsgType.AUDIO, p.build_audio(clip_id, offset, data, begin=begin)))
        if ack.clip_id != clip_id or ack.received != offset + len(data) // 2:
            raise p.ProtocolError(
                f"AUDIO ack clip {ack.clip_id} received {ack.received}, expected clip {clip_id} "
                f"received {offset + len(data) // 2}"
            )
        return ack.received

    def classify_clip(
        self,
        clip_id: int,
        samples: np.ndarray,
        want_features: bool = True,
        *,
        chunk_samples: int = p.MAX_AUDIO_SAMPLES,
        part_bytes: int | None = None,
        timeout: float | None = None,
    ) -> DeviceResult:
        """Stream one clip and classify it on the device.

        Args:
            clip_id: 0..2**32-1, names the clip in every AUDIO/CLASSIFY message.
            samples: np.ndarray[int16, shape=(n,)], n >= 0, at the device's sample rate.
            want_features: also return the device's int8 input tensor.
            chunk_samples: samples per AUDIO message, 1..512; lowered to what the device's
                receive window holds (:attr:`max_chunk_samples`).
            part_bytes: None: the features come inside the CLASSIFY response (one 1,338-byte
                frame). A number: CLASSIFY answers without them (58 bytes) and they are read
                in FEATURES parts of that many bytes, each its own small frame, resent alone
                when damaged: what a noisy line needs. A replayed CLASSIFY (its first answer
                was lost) is made good the same way, never by streaming the clip again.
            timeout: for the CLASSIFY response (front end end + model); default self.timeout.
        """
        x = np.asarray(samples)
        if x.ndim != 1 or x.dtype != np.int16:
            raise ValueError(f"samples must be 1-D int16, got {x.dtype} shape {x.shape}")
        if not 1 <= chunk_samples <= p.MAX_AUDIO_SAMPLES:
            raise ValueError(f"chunk_samples must be in 1..{p.MAX_AUDIO_SAMPLES}, got {chunk_samples}")
        clip_id &= 0xFFFFFFFF
        k = self.outputs()
        chunk_samples = min(chunk_samples, self.max_chunk_samples)
        self.send_audio(clip_id, 0, x[:chunk_samples], begin=True)
        for offset in range(chunk_samples, len(x), chunk_samples):
            self.send_audio(clip_id, offset, x[offset : offset + chunk_samples], begin=False)
        inline = want_features and part_bytes is None
        payload = self.request(
            p.MsgType.CLASSIFY, p.build_classify(clip_id, want_features=inline), timeout=timeout
        )
        r = p.parse_classify(payload, k)
        if r.clip_id != clip_id or r.n_samples != len(x):
            raise p.ProtocolError(f"CLASSIFY: clip {r.clip_id} with {r.n_samples} samples, sent {clip_id} with {len(x)}")
        if want_features and r.features is None:  # asked in parts, or the answer was replayed
            r = dataclasses.replace(r, features=self.read_features(clip_id, r.input_crc, part_bytes or DEFAULT_PART_BYTES))
        return _to_device_result(r)

    def read_features(self, clip_id: int, crc: int | None, part_bytes: int = 256) -> bytes:
        """The last classified clip's input tensor, read in FEATURES parts of ``part_bytes`` bytes;
        checked against ``crc`` (the CLASSIFY response's CRC-32 of it)."""
        if part_bytes < 1:
            raise ValueError(f"part_bytes must be >= 1, got {part_bytes}")
        out = bytearray()
        for off in range(0, p.INPUT_SIZE, part_bytes):
            n = min(part_bytes, p.INPUT_SIZE - off)
            rsp = self.request(p.MsgType.FEATURES, p.build_features(clip_id, off, n))
            out += p.parse_features(rsp, clip_id, off, n)
        if crc is not None and zlib.crc32(out) != crc:
            raise p.ProtocolError(f"features read in parts have CRC-32 {zlib.crc32(out):08x}, "
                                  f"CLASSIFY said {crc:08x}")
        return bytes(out)

    def infer(self, features: np.ndarray, *, part_bytes: int | None = None,
              timeout: float | None = None) -> DeviceResult:
        """Run the model alone on an int8 input tensor (1280 values, any shape).

        ``part_bytes``: None sends the tensor inside the INFER request (one 1,299-byte frame on
        the wire); a number writes it first in TENSOR parts of that many bytes (each resent alone
        when damaged) and sends an empty INFER. Either way the answer carries the CRC-32 of the
        tensor the model ran on, and it must be this one's.
        """
        x = np.asarray(features)
        if x.dtype != np.int8 or x.size != p.INPUT_SIZE:
            raise ValueError(f"features must be int8 with {p.INPUT_SIZE} values, got {x.dtype} shape {x.shape}")
        data = x.tobytes()
        k = self.outputs()
        if part_bytes is not None:
            if part_bytes < 1:
                raise ValueError(f"part_bytes must be >= 1, got {part_bytes}")
            for off in range(0, p.INPUT_SIZE, part_bytes):
                part = data[off : off + part_bytes]
                p.parse_tensor_ack(self.request(p.MsgType.TENSOR, p.build_tensor(off, part)), off, len(part))
        payload = self.request(p.MsgType.INFER, p.build_infer(None if part_bytes is not None else data),
                               timeout=timeout)
        r = p.parse_infer(payload, k)
        if r.input_crc != zlib.crc32(data):
            raise p.ProtocolError(f"INFER ran on a tensor with CRC-32 {r.input_crc:08x}, sent {zlib.crc32(data):08x}")
        return _to_device_result(r)
