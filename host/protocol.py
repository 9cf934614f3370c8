"""The serial protocol between the host and the firmware (docs/protocol.md).

Frames are ``version u8 | type u8 | seq u16 | length u16 | payload | crc32 u32``
(little-endian), the CRC being ``zlib.crc32`` (IEEE 802.3) of header + payload,
sent COBS-encoded and followed by a 0x00 delimiter. This module only packs and
unpacks bytes (stdlib only); host/device.py does the I/O.

Constants mirror firmware/include/sd_protocol.h: change both together.
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass

PROTOCOL_VERSION = 5
HEADER_SIZE = 6
CRC_SIZE = 4
MAX_PAYLOAD = 1400
MAX_FRAME = HEADER_SIZE + MAX_PAYLOAD + CRC_SIZE
MAX_AUDIO_SAMPLES = 512
INPUT_SIZE = 1280
#: Model outputs (labels) at most; the device's count is INFO's output_size (its labels.json).
MAX_OUTPUTS = 32
RESPONSE_BIT = 0x80

AUDIO_BEGIN = 0x01
CLASSIFY_WANT_FEATURES = 0x01
RESULT_FEATURES = 0x01
RESULT_REPLAYED = 0x02
STREAM_BEGIN = 0x01
STREAM_END = 0x02
STREAM_ENDED = 0x01
STREAM_REPLAYED = 0x02
#: STREAM request flag: the chunk's samples are G.711 mu-law bytes (train/mulaw.py), one per sample.
STREAM_MULAW = 0x04
#: STREAM event label meaning "rejected": the top-1 output did not lead the runner-up by the margin.
STREAM_REJECTED = 0xFF
#: Events one STREAM acknowledgement can carry (the device's queue, SD_STREAM_QUEUE).
STREAM_QUEUE = 2
STREAM_REQ_FIXED = 16
STREAM_RSP_FIXED = 46
STREAM_EVENT_HEAD = 17  # then the K outputs

_HEADER = struct.Struct("<BBHH")
_AUDIO_REQ = struct.Struct("<IIBBH")
_AUDIO_RSP = struct.Struct("<II")
_CLASSIFY_REQ = struct.Struct("<IBB")
_CLASSIFY_RSP = struct.Struct("<IBBIQQQI")  # 38 bytes (input CRC-32 last), then K outputs, then 1280 features if flagged
_INFER_RSP = struct.Struct("<BBQQQI")  # 30 bytes, then K outputs
_INFO_RSP = struct.Struct("<BBHHHHI32s32s32s32s")  # 142 bytes, then 3 length-prefixed strings
_FEATURES_REQ = struct.Struct("<IHH")  # 8 bytes; the response repeats them, then n bytes
_TENSOR_REQ = struct.Struct("<HH")  # 4 bytes, then n bytes; the response repeats them
_STATS_RSP = struct.Struct("<IIIIIIHH")  # 28 bytes
_STREAM_REQ = struct.Struct("<IQBBH")  # 16 bytes, then n int16 samples
_STREAM_RSP = struct.Struct("<IQIBBHHQQQ")  # 46 bytes, then count events
_STREAM_EVENT = struct.Struct("<BQQ")  # 17 bytes, then K outputs


class MsgType(enum.IntEnum):
    """Header byte 1. A response has the request's type | 0x80, or ERROR."""

    PING = 0x01
    INFO = 0x02
    RESET = 0x03
    STATS = 0x04
    AUDIO = 0x10
    CLASSIFY = 0x11
    INFER = 0x12
    STREAM = 0x13
    FEATURES = 0x14
    TENSOR = 0x15
    ERROR = 0xFF


class ErrorCode(enum.IntEnum):
    """ERROR payload byte 0."""

    BAD_CRC = 1
    BAD_FRAME = 2
    TOO_LARGE = 3
    BAD_VERSION = 4
    UNKNOWN_TYPE = 5
    BAD_LENGTH = 6
    BAD_ARGUMENT = 7
    NO_CLIP = 8
    CLIP_MISMATCH = 9
    SEQUENCE = 10
    MODEL = 11


#: Errors meaning "the request was damaged on the way": resend it, same seq.
TRANSPORT_ERRORS = frozenset({ErrorCode.BAD_CRC, ErrorCode.BAD_FRAME})


class ProtocolError(Exception):
    """A frame or message that breaks the protocol."""


class CrcError(ProtocolError):
    """A frame whose CRC-32 does not match (damaged in transit)."""


class FrameTooLarge(ProtocolError):
    """A frame or payload larger than MAX_FRAME / MAX_PAYLOAD."""


class Timeout(ProtocolError, TimeoutError):
    """No matching response within the time allowed."""


class DeviceError(ProtocolError):
    """The device answered ERROR.

    Attributes:
        code: ErrorCode value (an int if the code is unknown to this host).
        text: the device's ASCII explanation.
        request_type: type byte of the request that failed.
    """

    def __init__(self, code: int, text: str, request_type: int = 0) -> None:
        try:
            self.code: int = ErrorCode(code)
            name = self.code.name
        except ValueError:
            self.code = code
            name = str(code)
        self.text = text
        self.request_type = request_type
        super().__init__(f"device error {name} on request 0x{request_type:02x}: {text}")


# ---- COBS -------------------------------------------------------------------


def cobs_encode(data: bytes) -> bytes:
    """COBS-encode ``data`` (no delimiter added); the result has no 0x00.

    A block that ends the data after 254 non-zero bytes gets no trailing
    0x01 block (the same bytes as the firmware's sd_frame_write).
    """
    out = bytearray()
    pos, n = 0, len(data)
    while True:
        end = data.find(b"\x00", pos, min(pos + 254, n))
        run = (min(pos + 254, n) if end < 0 else end) - pos
        out.append(run + 1)
        out += data[pos : pos + run]
        pos += run
        if pos >= n:
            return bytes(out)
        if run < 254:
            pos += 1  # the zero this block's code stands for


def cobs_decode(data: bytes) -> bytes:
    """Decode one COBS block sequence (without its delimiter).

    Raises:
        ProtocolError: a 0x00 inside, or a block longer than the data.
    """
    out = bytearray()
    pos, n = 0, len(data)
    while pos < n:
        code = data[pos]
        if code == 0:
            raise ProtocolError("COBS: 0x00 inside a frame")
        end = pos + code
        if end > n:
            raise ProtocolError("COBS: truncated block")
        block = data[pos + 1 : end]
        if 0 in block:
            raise ProtocolError("COBS: 0x00 inside a frame")
        out += block
        pos = end
        if code != 0xFF and pos < n:
            out.append(0)
    return bytes(out)


# ---- frames -----------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """One decoded frame.

    Attributes:
        type: header byte 1 (MsgType value, | 0x80 for responses).
        seq: 0..65535; a response carries its request's seq.
        payload: 0..MAX_PAYLOAD bytes.
        version: header byte 0.
    """

    type: int
    seq: int
    payload: bytes = b""
    version: int = PROTOCOL_VERSION


def encode_frame(frame: Frame, *, leading_delimiter: bool = False) -> bytes:
    """Bytes for the wire: [0x00] COBS(header + payload + CRC) 0x00.

    Raises:
        FrameTooLarge: payload longer than MAX_PAYLOAD.
    """
    if len(frame.payload) > MAX_PAYLOAD:
        raise FrameTooLarge(f"payload of {len(frame.payload)} bytes > {MAX_PAYLOAD}")
    body = _HEADER.pack(frame.version, frame.type, frame.seq & 0xFFFF, len(frame.payload))
    body += frame.payload
    body += struct.pack("<I", zlib.crc32(body))
    return (b"\x00" if leading_delimiter else b"") + cobs_encode(body) + b"\x00"


def decode_frame(encoded: bytes) -> Frame:
    """Decode one frame's COBS bytes (without the 0x00 delimiter).

    Raises:
        FrameTooLarge: more than MAX_FRAME decoded bytes.
        ProtocolError: COBS invalid, shorter than 10 bytes, length field wrong.
        CrcError: CRC mismatch.
    """
    raw = cobs_decode(encoded)
    if len(raw) > MAX_FRAME:
        raise FrameTooLarge(f"frame of {len(raw)} bytes > {MAX_FRAME}")
    if len(raw) < HEADER_SIZE + CRC_SIZE:
        raise ProtocolError(f"frame of {len(raw)} bytes is shorter than {HEADER_SIZE + CRC_SIZE}")
    (crc,) = struct.unpack_from("<I", raw, len(raw) - CRC_SIZE)
    if zlib.crc32(raw[:-CRC_SIZE]) != crc:
        raise CrcError("frame CRC mismatch")
    version, type_, seq, length = _HEADER.unpack_from(raw)
    if length != len(raw) - HEADER_SIZE - CRC_SIZE:
        raise ProtocolError(f"length field {length} != {len(raw) - HEADER_SIZE - CRC_SIZE}")
    return Frame(type_, seq, raw[HEADER_SIZE:-CRC_SIZE], version)


class FrameDecoder:
    """Splits a byte stream at 0x00 into frames, with a hard size bound.

    Bytes past the largest possible encoded frame are dropped until the next
    delimiter, so garbage costs bounded memory and the decoder resynchronizes
    at the next 0x00.
    """

    #: Largest COBS encoding of a MAX_FRAME frame.
    MAX_ENCODED = MAX_FRAME + MAX_FRAME // 254 + 1

    def __init__(self) -> None:
        self._buf = bytearray()
        self._overflow = False

    def feed(self, data: bytes) -> list[Frame | ProtocolError]:
        """Feed received bytes; return the frames (or errors) they complete, in order.

        Empty frames (consecutive delimiters) produce nothing.
        """
        events: list[Frame | ProtocolError] = []
        for chunk_index, chunk in enumerate(data.split(b"\x00")):
            if chunk_index > 0:  # a delimiter preceded this chunk: close the frame
                events.extend(self._finish())
            if not self._overflow:
                self._buf += chunk
                if len(self._buf) > self.MAX_ENCODED:
                    self._buf.clear()
                    self._overflow = True
        return events

    def pending(self) -> int:
        """Bytes of an unfinished frame held (0 between frames)."""
        return len(self._buf) + (1 if self._overflow else 0)

    def end_frame(self) -> list[Frame | ProtocolError]:
        """End the unfinished frame as if a delimiter had come (the line went idle after a frame
        whose delimiter was lost). The frame is checked as usual: CRC, length."""
        return self._finish()

    def _finish(self) -> list[Frame | ProtocolError]:
        if self._overflow:
            self._overflow = False
            return [FrameTooLarge("frame too large, dropped")]
        if not self._buf:
            return []
        encoded, self._buf = bytes(self._buf), bytearray()
        try:
            return [decode_frame(encoded)]
        except ProtocolError as exc:
            return [exc]


# ---- messages -----------------------------------------------------------------


@dataclass(frozen=True)
class Info:
    """INFO response. Hashes are lower-case hex (64 digits)."""

    protocol_version: int
    max_payload: int
    max_audio_samples: int
    input_size: int
    output_size: int
    sample_rate: int
    model_sha256: str
    frontend_sha256: str
    stream_sha256: str
    firmware_version: str
    board: str
    cost_unit: str
    frontend_version: int = 1
    """The device's front end: 2 integer (train/intfront.py), 1 float (INFO's byte 1 was reserved, 0, before v2)."""
    labels_sha256: str = ""
    """SHA-256 of the model's label names (train.labels.Labels.sha256); output_size is their count."""


@dataclass(frozen=True)
class Stats:
    """STATS response: the device's receive counters since it started (they wrap at 2**32).

    Attributes:
        rx_bytes: bytes the decoder received, up to this request's delimiter.
        rx_dropped: received bytes the board's port lost before the decoder saw them
            (receive buffer full, UART overrun, framing or noise error).
        frames_ok: frames that passed the checks, this request included.
        bad_crc, bad_frame, too_large: damaged frames, by kind.
        rx_window: the most bytes the host may send before it waits for the response (the
            size of the board's interrupt-fed receive ring); 0 = no limit.
        rx_high_water: most bytes ever waiting in the port's receive buffer.
    """

    rx_bytes: int
    rx_dropped: int
    frames_ok: int
    bad_crc: int
    bad_frame: int
    too_large: int
    rx_window: int
    rx_high_water: int

    @property
    def frames_bad(self) -> int:
        return self.bad_crc + self.bad_frame + self.too_large


@dataclass(frozen=True)
class AudioAck:
    """AUDIO response: the clip id and the samples received so far."""

    clip_id: int
    received: int


@dataclass(frozen=True)
class Result:
    """CLASSIFY or INFER response.

    Attributes:
        label: index of the first largest output, 0 .. K - 1.
        output: the K signed int8 scores (K = INFO's output_size, one per label).
        features: INPUT_SIZE bytes of the int8 input tensor (two's complement),
            or None when not requested, INFER, or a replayed CLASSIFY.
        n_samples: samples in the clip (0 for INFER).
        cost: {"frontend", "lstm", "head"} in the device's cost unit.
        clip_id: the clip (None for INFER).
        replayed: answered from the device's replay cache.
        input_crc: CRC-32 (zlib.crc32) of the input tensor the model ran on: the device's own
            features (CLASSIFY) or the tensor it was given (INFER). Features read back in parts
            (FEATURES) are checked against it.
    """

    label: int
    output: tuple[int, ...]
    features: bytes | None
    n_samples: int
    cost: dict[str, int]
    clip_id: int | None = None
    replayed: bool = False
    input_crc: int | None = None


@dataclass(frozen=True)
class StreamEvent:
    """One utterance the device decided in a stream.

    Attributes:
        digit: the top-1 output's index, 0 .. K - 1 (a label index: a digit for FSDD's labels), or
            None when rejected (STREAM_REJECTED on the wire).
        start, end: the utterance's first and last sample, counted from the stream's first.
        output: the K signed int8 scores of the model on its window.
    """

    digit: int | None
    start: int
    end: int
    output: tuple[int, ...]


@dataclass(frozen=True)
class StreamAck:
    """STREAM response.

    Attributes:
        stream_id: the stream.
        received: samples of the stream the device has taken so far.
        events_total: utterances decided since the stream began (those lost included).
        ended: the stream has ended (an END chunk was applied).
        replayed: this chunk was the last one again: nothing pushed, the same answer.
        events: the events decided while this chunk was applied (at most STREAM_QUEUE).
        frames: front-end frames this chunk completed.
        lost: events since the stream began that the device could not report (0 unless broken).
        cost: {"frontend", "lstm", "head"} spent on this chunk, in the device's cost unit.
    """

    stream_id: int
    received: int
    events_total: int
    ended: bool
    replayed: bool
    events: tuple[StreamEvent, ...]
    frames: int
    lost: int
    cost: dict[str, int]


def wire_size(payload_len: int) -> int:
    """Bytes a request with ``payload_len`` payload bytes can take on the wire as the host sends it
    (leading 0x00, COBS at its worst, delimiter, spare 0x00)."""
    n = HEADER_SIZE + payload_len + CRC_SIZE
    return 1 + n + 1 + n // 254 + 1 + 1


#: The fixed part of an AUDIO request payload (clip, offset, flags, reserved, n).
AUDIO_REQ_FIXED = 12


def audio_samples_for_window(window: int) -> int:
    """Largest AUDIO chunk (samples) whose request fits a receive window of ``window`` bytes
    (0 = no limit: MAX_AUDIO_SAMPLES). 0 when not even an empty chunk fits."""
    if window <= 0:
        return MAX_AUDIO_SAMPLES
    n = MAX_AUDIO_SAMPLES
    while n > 0 and wire_size(AUDIO_REQ_FIXED + 2 * n) > window:
        n -= 1
    return n


def build_audio(clip_id: int, offset: int, samples: bytes, *, begin: bool) -> bytes:
    """AUDIO payload. ``samples``: int16 little-endian, at most MAX_AUDIO_SAMPLES."""
    n, rest = divmod(len(samples), 2)
    if rest or n > MAX_AUDIO_SAMPLES:
        raise FrameTooLarge(f"AUDIO chunk of {len(samples)} bytes (even, <= {2 * MAX_AUDIO_SAMPLES})")
    return _AUDIO_REQ.pack(clip_id, offset, AUDIO_BEGIN if begin else 0, 0, n) + samples


def stream_samples_for_window(window: int, *, mulaw: bool = False) -> int:
    """Largest STREAM chunk (samples) whose request fits a receive window of ``window`` bytes
    (0 = no limit: MAX_AUDIO_SAMPLES). 0 when not even an empty chunk fits."""
    width = 1 if mulaw else 2
    n = MAX_AUDIO_SAMPLES
    while window > 0 and n > 0 and wire_size(STREAM_REQ_FIXED + width * n) > window:
        n -= 1
    return n


def build_stream(stream_id: int, offset: int, samples: bytes, *, begin: bool = False, end: bool = False,
                 mulaw: bool = False) -> bytes:
    """STREAM payload. ``samples``: int16 little-endian, or with ``mulaw`` one G.711 mu-law byte per
    sample; at most MAX_AUDIO_SAMPLES samples. ``offset``: the stream index of the chunk's first
    sample (u64)."""
    width = 1 if mulaw else 2
    n, rest = divmod(len(samples), width)
    if rest or n > MAX_AUDIO_SAMPLES:
        raise FrameTooLarge(f"STREAM chunk of {len(samples)} bytes ({width} per sample, <= {MAX_AUDIO_SAMPLES} samples)")
    flags = (STREAM_BEGIN if begin else 0) | (STREAM_END if end else 0) | (STREAM_MULAW if mulaw else 0)
    return _STREAM_REQ.pack(stream_id, offset, flags, 0, n) + samples


def _check_outputs(n_outputs: int) -> None:
    if not 2 <= n_outputs <= MAX_OUTPUTS:
        raise ProtocolError(f"a model with {n_outputs} outputs (the protocol carries 2 .. {MAX_OUTPUTS})")


def stream_event_size(n_outputs: int) -> int:
    """Bytes of one STREAM event for a model with ``n_outputs`` outputs."""
    return _STREAM_EVENT.size + n_outputs


def parse_stream_ack(payload: bytes, n_outputs: int) -> StreamAck:
    """STREAM response payload -> StreamAck; ``n_outputs``: INFO's output_size."""
    _check_outputs(n_outputs)
    if len(payload) < _STREAM_RSP.size:
        raise ProtocolError(f"STREAM response of {len(payload)} bytes")
    sid, received, total, flags, count, frames, lost, fe, lstm, head = _STREAM_RSP.unpack_from(payload)
    size = stream_event_size(n_outputs)
    _expect_len(payload, _STREAM_RSP.size + count * size, "STREAM response")
    if count > STREAM_QUEUE:
        raise ProtocolError(f"STREAM response with {count} events (the queue holds {STREAM_QUEUE})")
    events = []
    for i in range(count):
        at = _STREAM_RSP.size + i * size
        label, start, end = _STREAM_EVENT.unpack_from(payload, at)
        if label != STREAM_REJECTED and label >= n_outputs:
            raise ProtocolError(f"STREAM event label {label} (the model has {n_outputs} outputs)")
        out = payload[at + _STREAM_EVENT.size : at + size]
        events.append(StreamEvent(None if label == STREAM_REJECTED else label, start, end, _signed(out)))
    return StreamAck(sid, received, total, bool(flags & STREAM_ENDED), bool(flags & STREAM_REPLAYED), tuple(events),
                     frames, lost, {"frontend": fe, "lstm": lstm, "head": head})


def build_classify(clip_id: int, *, want_features: bool) -> bytes:
    """CLASSIFY payload."""
    return _CLASSIFY_REQ.pack(clip_id, CLASSIFY_WANT_FEATURES if want_features else 0, 0)


def build_infer(features: bytes | None) -> bytes:
    """INFER payload: exactly INPUT_SIZE bytes of int8 input tensor, or None for an empty payload
    (the model runs on the tensor TENSOR requests wrote)."""
    if features is None:
        return b""
    if len(features) != INPUT_SIZE:
        raise ProtocolError(f"INFER input of {len(features)} bytes, expected {INPUT_SIZE}")
    return bytes(features)


def build_features(clip_id: int, offset: int, n: int) -> bytes:
    """FEATURES payload: bytes offset .. offset + n - 1 of the last classified clip's input tensor."""
    if offset < 0 or n < 0 or offset + n > INPUT_SIZE:
        raise ProtocolError(f"FEATURES part {offset}+{n} outside the {INPUT_SIZE}-byte input tensor")
    return _FEATURES_REQ.pack(clip_id, offset, n)


def parse_features(payload: bytes, clip_id: int, offset: int, n: int) -> bytes:
    """FEATURES response payload -> the part's bytes; it must repeat the request's clip, offset, n."""
    _expect_len(payload, _FEATURES_REQ.size + n, "FEATURES response")
    if _FEATURES_REQ.unpack_from(payload) != (clip_id, offset, n):
        raise ProtocolError(f"FEATURES response for {_FEATURES_REQ.unpack_from(payload)}, asked ({clip_id}, {offset}, {n})")
    return payload[_FEATURES_REQ.size :]


def build_tensor(offset: int, part: bytes) -> bytes:
    """TENSOR payload: ``part`` written at ``offset`` of the device's held input tensor."""
    if offset < 0 or offset + len(part) > INPUT_SIZE:
        raise ProtocolError(f"TENSOR part {offset}+{len(part)} outside the {INPUT_SIZE}-byte input tensor")
    return _TENSOR_REQ.pack(offset, len(part)) + bytes(part)


def parse_tensor_ack(payload: bytes, offset: int, n: int) -> None:
    """TENSOR response payload: must repeat the request's offset and n."""
    _expect_len(payload, _TENSOR_REQ.size, "TENSOR response")
    if _TENSOR_REQ.unpack(payload) != (offset, n):
        raise ProtocolError(f"TENSOR response for {_TENSOR_REQ.unpack(payload)}, sent ({offset}, {n})")


def _expect_len(payload: bytes, n: int, what: str) -> None:
    if len(payload) != n:
        raise ProtocolError(f"{what} payload of {len(payload)} bytes, expected {n}")


def _signed(raw: bytes) -> tuple[int, ...]:
    return tuple(b - 256 if b > 127 else b for b in raw)


def parse_error(payload: bytes) -> DeviceError:
    """ERROR payload -> DeviceError (returned, not raised)."""
    if len(payload) < 2:
        raise ProtocolError(f"ERROR payload of {len(payload)} bytes")
    return DeviceError(payload[0], payload[2:].decode("ascii", "replace"), payload[1])


def parse_info(payload: bytes) -> Info:
    """INFO response payload -> Info."""
    if len(payload) < _INFO_RSP.size + 3:
        raise ProtocolError(f"INFO payload of {len(payload)} bytes")
    version, fe_version, max_payload, max_samples, in_size, out_size, rate, model, fe, st, lab = _INFO_RSP.unpack_from(payload)
    strings: list[str] = []
    pos = _INFO_RSP.size
    for _ in range(3):
        if pos >= len(payload) or pos + 1 + payload[pos] > len(payload):
            raise ProtocolError("INFO strings truncated")
        strings.append(payload[pos + 1 : pos + 1 + payload[pos]].decode("ascii", "replace"))
        pos += 1 + payload[pos]
    if pos != len(payload):
        raise ProtocolError(f"INFO payload has {len(payload) - pos} extra bytes")
    return Info(version, max_payload, max_samples, in_size, out_size, rate, model.hex(), fe.hex(), st.hex(), *strings,
                frontend_version=fe_version or 1, labels_sha256=lab.hex())


def parse_stats(payload: bytes) -> Stats:
    """STATS response payload -> Stats."""
    _expect_len(payload, _STATS_RSP.size, "STATS response")
    return Stats(*_STATS_RSP.unpack(payload))


def parse_audio_ack(payload: bytes) -> AudioAck:
    """AUDIO response payload -> AudioAck."""
    _expect_len(payload, _AUDIO_RSP.size, "AUDIO response")
    return AudioAck(*_AUDIO_RSP.unpack(payload))


def parse_classify(payload: bytes, n_outputs: int) -> Result:
    """CLASSIFY response payload -> Result; ``n_outputs``: INFO's output_size."""
    _check_outputs(n_outputs)
    fixed = _CLASSIFY_RSP.size + n_outputs
    if len(payload) < fixed:
        raise ProtocolError(f"CLASSIFY response of {len(payload)} bytes")
    clip, label, flags, n, fe, lstm, head, crc = _CLASSIFY_RSP.unpack_from(payload)
    out = payload[_CLASSIFY_RSP.size : fixed]
    has_features = bool(flags & RESULT_FEATURES)
    _expect_len(payload, fixed + (INPUT_SIZE if has_features else 0), "CLASSIFY response")
    if label >= n_outputs:
        raise ProtocolError(f"CLASSIFY label {label} (the model has {n_outputs} outputs)")
    features = payload[fixed:] if has_features else None
    if features is not None and zlib.crc32(features) != crc:
        raise CrcError("CLASSIFY features do not match their CRC-32")
    cost = {"frontend": fe, "lstm": lstm, "head": head}
    return Result(label, _signed(out), features, n, cost, clip, bool(flags & RESULT_REPLAYED), crc)


def parse_infer(payload: bytes, n_outputs: int) -> Result:
    """INFER response payload -> Result; ``n_outputs``: INFO's output_size."""
    _check_outputs(n_outputs)
    _expect_len(payload, _INFER_RSP.size + n_outputs, "INFER response")
    label, _, fe, lstm, head, crc = _INFER_RSP.unpack_from(payload)
    out = payload[_INFER_RSP.size :]
    if label >= n_outputs:
        raise ProtocolError(f"INFER label {label} (the model has {n_outputs} outputs)")
    return Result(label, _signed(out), None, 0, {"frontend": fe, "lstm": lstm, "head": head}, input_crc=crc)
