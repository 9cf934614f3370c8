"""The serial protocol: Python codec, C codec, and both against each other.

Golden vectors: the COBS examples are the ones in the COBS paper / Wikipedia
article; the CRC check value 0xCBF43926 is CRC-32/IEEE's published check for
b"123456789"; the worked frame is docs/protocol.md's (also in
firmware/tests/protocol/test_protocol.c). The C side is built here from
firmware/src with the stubs in firmware/tests/protocol (gcc, -Werror); its
stub front end and model are re-computed below (stub_features, stub_model).
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import dataclasses
import struct
import threading
import time
import tty
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from host import protocol as p
from host.device import Device

ROOT = Path(__file__).resolve().parent.parent
FW = ROOT / "firmware"
STUBS = FW / "tests" / "protocol"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", f"-I{FW / 'include'}", f"-I{STUBS}"]
CORE = [FW / "src" / "sd_frame.c", FW / "src" / "sd_protocol.c", FW / "src" / "sd_decide.c"]
STUB_SRC = [STUBS / "stub_frontend.c", STUBS / "stub_model.c", STUBS / "stub_port.c"]

WORKED_FRAME = bytes.fromhex("06 05 01 01 02 03 01 02 11 01 04 a2 f2 9f 00")


# ---- Python codec ---------------------------------------------------------------

COBS_VECTORS = [
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x00\x11\x00", b"\x01\x02\x11\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),
    (bytes(range(0, 255)), b"\x01\xff" + bytes(range(1, 255))),
    (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
    (bytes(range(2, 256)) + b"\x00", b"\xff" + bytes(range(2, 256)) + b"\x01\x01"),
    (bytes(range(3, 256)) + b"\x00\x01", b"\xfe" + bytes(range(3, 256)) + b"\x02\x01"),
]


@pytest.mark.parametrize("raw, encoded", COBS_VECTORS)
def test_cobs_vectors(raw: bytes, encoded: bytes) -> None:
    assert p.cobs_encode(raw) == encoded
    assert p.cobs_decode(encoded) == raw


def test_cobs_round_trips() -> None:
    rng = random.Random(1)
    for n in [0, 1, 253, 254, 255, 256, 507, 508, 509, 1410]:
        for data in (bytes(n), b"\x11" * n, bytes(rng.randrange(256) for _ in range(n)),
                     bytes(rng.choice((0, 0xFF, 7)) for _ in range(n))):
            enc = p.cobs_encode(data)
            assert 0 not in enc
            assert len(enc) <= len(data) + 1 + len(data) // 254
            assert p.cobs_decode(enc) == data


def test_crc_is_zlib() -> None:
    assert zlib.crc32(b"123456789") == 0xCBF43926


def test_worked_example() -> None:
    wire = p.encode_frame(p.Frame(p.MsgType.PING, 0x0201, b"\x00\x11\x00"))
    assert wire == WORKED_FRAME
    assert p.decode_frame(wire[:-1]) == p.Frame(p.MsgType.PING, 0x0201, b"\x00\x11\x00")


def test_docs_examples_match_the_code() -> None:
    doc = (ROOT / "docs" / "protocol.md").read_text()
    assert "on wire    06 05 01 01 02 03 | 01 | 02 11 | 01 | 04 a2 f2 9f | 00" in doc
    assert WORKED_FRAME.hex(" ") == "06 05 01 01 02 03 01 02 11 01 04 a2 f2 9f 00"
    info = p.encode_frame(p.Frame(p.MsgType.INFO, 1), leading_delimiter=True)
    assert f"on wire    {info.hex(' ')}" in doc
    err = p.cobs_decode(p.encode_frame(p.Frame(p.MsgType.ERROR, 1, bytes([8, 0x11]) + b"no open clip"))[:-1])
    assert f"frame      {err[:6].hex(' ')} | {err[6:-4].hex(' ')} | {err[-4:].hex(' ')}" in doc


def _c_constants() -> dict[str, int]:
    """#defines and enum members of firmware/include/sd_protocol.h (and sd_stream.h, which it includes) that are
    plain integers, or another such #define's name."""
    import re

    text = "\n".join((FW / "include" / h).read_text() for h in ("sd_stream.h", "sd_protocol.h"))
    out = {m[1]: int(m[2], 0) for m in re.finditer(r"#define (SD_\w+) (0x[0-9A-Fa-f]+|\d+)u?\b", text)}
    out.update({m[1]: int(m[2], 0) for m in re.finditer(r"^\s+(SD_\w+) = (0x[0-9A-Fa-f]+|\d+),", text, re.M)})
    out.update({m[1]: out[m[2]] for m in re.finditer(r"#define (SD_\w+) (SD_\w+)\b", text) if m[2] in out})
    return out


def test_constants_agree_with_the_c_header() -> None:
    """host/protocol.py mirrors sd_protocol.h: every shared number is the same on both sides."""
    c = _c_constants()
    pairs = {
        "SD_PROTO_VERSION": p.PROTOCOL_VERSION, "SD_PROTO_HEADER_SIZE": p.HEADER_SIZE,
        "SD_PROTO_CRC_SIZE": p.CRC_SIZE, "SD_PROTO_MAX_PAYLOAD": p.MAX_PAYLOAD,
        "SD_PROTO_MAX_SAMPLES": p.MAX_AUDIO_SAMPLES, "SD_PROTO_INPUT_SIZE": p.INPUT_SIZE,
        "SD_PROTO_MAX_OUTPUTS": p.MAX_OUTPUTS, "SD_MSG_RESPONSE": p.RESPONSE_BIT,
        "SD_AUDIO_BEGIN": p.AUDIO_BEGIN, "SD_CLASSIFY_WANT_FEATURES": p.CLASSIFY_WANT_FEATURES,
        "SD_RESULT_FEATURES": p.RESULT_FEATURES, "SD_RESULT_REPLAYED": p.RESULT_REPLAYED,
        "SD_AUDIO_REQ_FIXED": p.AUDIO_REQ_FIXED, "SD_STATS_RSP_SIZE": p._STATS_RSP.size,
        "SD_INFO_RSP_FIXED": p._INFO_RSP.size, "SD_CLASSIFY_RSP_HEAD": p._CLASSIFY_RSP.size,
        "SD_INFER_RSP_HEAD": p._INFER_RSP.size, "SD_AUDIO_RSP_SIZE": p._AUDIO_RSP.size,
        "SD_STREAM_BEGIN": p.STREAM_BEGIN, "SD_STREAM_END": p.STREAM_END, "SD_STREAM_ENDED": p.STREAM_ENDED,
        "SD_STREAM_REPLAYED": p.STREAM_REPLAYED, "SD_STREAM_REJECTED": p.STREAM_REJECTED,
        "SD_STREAM_QUEUE": p.STREAM_QUEUE, "SD_STREAM_REQ_FIXED": p._STREAM_REQ.size,
        "SD_STREAM_RSP_FIXED": p._STREAM_RSP.size, "SD_STREAM_EVENT_HEAD": p.STREAM_EVENT_HEAD,
    }
    pairs.update({f"SD_MSG_{t.name}": int(t) for t in p.MsgType})
    pairs.update({f"SD_ERR_{e.name}": int(e) for e in p.ErrorCode})
    for name, value in pairs.items():
        assert c.get(name) == value, f"{name}: C {c.get(name)}, Python {value}"
    c_msgs = {k for k in c if k.startswith("SD_MSG_") and k != "SD_MSG_RESPONSE"}
    assert c_msgs == {f"SD_MSG_{t.name}" for t in p.MsgType}
    assert {k for k in c if k.startswith("SD_ERR_") and k != "SD_ERR_NONE"} == {f"SD_ERR_{e.name}" for e in p.ErrorCode}


def test_receive_window_sizes() -> None:
    """wire_size bounds what the host writes; audio_samples_for_window fits the largest chunk."""
    rng = random.Random(5)
    for n in [0, 1, 243, 244, 245, 497, 498, 1036, 1400]:
        for fill in (b"\x00", b"\x01", None):
            payload = bytes(rng.randrange(256) for _ in range(n)) if fill is None else fill * n
            wire = p.encode_frame(p.Frame(p.MsgType.PING, 0x0101, payload), leading_delimiter=True) + b"\x00"
            assert len(wire) <= p.wire_size(n)
    assert p.wire_size(p.MAX_PAYLOAD) == 1419
    assert p.audio_samples_for_window(0) == p.MAX_AUDIO_SAMPLES
    assert p.audio_samples_for_window(2048) == p.MAX_AUDIO_SAMPLES
    for w in (26, 27, 64, 256, 1053, 1054):
        k = p.audio_samples_for_window(w)
        assert p.wire_size(12 + 2 * k) <= w and (k == 512 or p.wire_size(12 + 2 * (k + 1)) > w)
    assert p.audio_samples_for_window(256) == 115 and p.audio_samples_for_window(1054) == 512 and p.audio_samples_for_window(1053) == 511
    assert p.audio_samples_for_window(25) == 0


def test_decode_frame_errors() -> None:
    body = bytearray(p.cobs_decode(WORKED_FRAME[:-1]))
    body[7] ^= 0x10
    with pytest.raises(p.CrcError):
        p.decode_frame(p.cobs_encode(bytes(body)))
    with pytest.raises(p.ProtocolError):
        p.decode_frame(b"\x05\x01\x02")  # truncated block
    with pytest.raises(p.ProtocolError):
        p.decode_frame(p.cobs_encode(b"\x01\x01\x00\x00"))  # too short
    with pytest.raises(p.FrameTooLarge):
        p.encode_frame(p.Frame(p.MsgType.PING, 1, bytes(p.MAX_PAYLOAD + 1)))
    with pytest.raises(p.FrameTooLarge):
        p.decode_frame(p.cobs_encode(bytes(p.MAX_FRAME + 1)))


def test_frame_decoder_resyncs() -> None:
    rng = random.Random(2)
    good = [p.Frame(p.MsgType.PING | p.RESPONSE_BIT, i, bytes(rng.randrange(256) for _ in range(i * 7)))
            for i in range(20)]
    stream = bytearray()
    for f in good:
        stream += bytes(rng.randrange(256) for _ in range(rng.randrange(50)))  # garbage
        stream += p.encode_frame(f, leading_delimiter=True)
    stream += b"\x55" * 100_000 + p.encode_frame(good[0], leading_delimiter=True)  # oversize, then a frame
    dec = p.FrameDecoder()
    events: list[p.Frame | p.ProtocolError] = []
    for i in range(0, len(stream), 37):  # in arbitrary pieces
        events += dec.feed(bytes(stream[i : i + 37]))
    assert [e for e in events if isinstance(e, p.Frame)] == good + [good[0]]
    assert any(isinstance(e, p.FrameTooLarge) for e in events)
    assert len(dec._buf) == 0


def test_message_builders() -> None:
    assert p.build_audio(7, 512, b"\x01\x00\xff\xff", begin=False) == bytes.fromhex("07000000 00020000 00 00 0200 0100ffff")
    assert p.build_classify(0x01020304, want_features=True) == bytes.fromhex("04030201 01 00")
    with pytest.raises(p.FrameTooLarge):
        p.build_audio(1, 0, bytes(1026), begin=True)
    err = p.parse_error(bytes([8, 0x11]) + b"no open clip")
    assert err.code == p.ErrorCode.NO_CLIP and err.text == "no open clip" and err.request_type == 0x11


# ---- C codec and firmware, built from firmware/src with the test stubs ------------


def _gcc(out: Path, sources: list[Path]) -> Path:
    cmd = ["gcc", *CFLAGS, "-o", str(out), *map(str, sources)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return out


@pytest.fixture(scope="module")
def cbuild(tmp_path_factory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    return tmp_path_factory.mktemp("protocol_c")


def test_c_unit_tests(cbuild: Path) -> None:
    exe = _gcc(cbuild / "test_protocol", [STUBS / "test_protocol.c", *CORE, *STUB_SRC])
    res = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout
    assert "PASS" in res.stdout


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
def test_firmware_sources_build_for_cortex_m4(tmp_path: Path) -> None:
    for src in [*CORE, FW / "src" / "sd_app.c"]:
        cmd = ["arm-none-eabi-gcc", *CFLAGS, "-Os", "-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16",
               "-mfloat-abi=hard", "-c", str(src), "-o", str(tmp_path / (src.stem + ".o"))]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr


@pytest.fixture(scope="module")
def codec_tool(cbuild: Path) -> Path:
    return _gcc(cbuild / "codec_tool", [STUBS / "codec_tool.c", FW / "src" / "sd_frame.c"])


def _random_frames(seed: int, count: int) -> list[p.Frame]:
    rng = random.Random(seed)
    lengths = [0, 1, 253, 254, 255, 508, p.MAX_PAYLOAD] + [rng.randrange(p.MAX_PAYLOAD + 1) for _ in range(count)]
    frames = []
    for n in lengths:
        kind = rng.randrange(3)
        payload = bytes(n) if kind == 0 else bytes(rng.randrange(256) for _ in range(n)) if kind == 1 else b"\xff" * n
        frames.append(p.Frame(rng.randrange(256), rng.randrange(65536), payload))
    return frames


def test_python_frames_decode_in_c(codec_tool: Path) -> None:
    rng = random.Random(3)
    stream = bytearray()
    expected: list[str] = []
    for f in _random_frames(4, 40):
        stream += p.encode_frame(f, leading_delimiter=rng.random() < 0.5)
        expected.append(f"OK {f.type} {f.seq} {f.payload.hex() or '-'}")
        r = rng.random()
        if r < 0.2:  # a damaged copy: C must report BAD_CRC with the header
            body = bytearray(p.cobs_decode(p.encode_frame(f)[:-1]))
            body[rng.randrange(p.HEADER_SIZE, len(body))] ^= 1 << rng.randrange(8)
            stream += p.cobs_encode(bytes(body)) + b"\x00"
            expected.append(f"BAD {p.ErrorCode.BAD_CRC} 1 {f.seq}")
        elif r < 0.3:  # one byte too large
            body = p.cobs_decode(p.encode_frame(p.Frame(1, f.seq, b"\x07" * p.MAX_PAYLOAD))[:-1])
            stream += p.cobs_encode(body[:-4] + b"\x07" + body[-4:]) + b"\x00"
            expected.append(f"BAD {p.ErrorCode.TOO_LARGE} 1 {f.seq}")
        elif r < 0.4:  # noise that never reaches a delimiter on its own
            stream += bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 3000)))
            stream += b"\x00"
            expected.append("BAD*")
    res = subprocess.run([str(codec_tool), "decode"], input=bytes(stream), capture_output=True, timeout=60)
    assert res.returncode == 0
    lines = res.stdout.decode().splitlines()
    assert len(lines) == len(expected)
    for got, want in zip(lines, expected):
        if want == "BAD*":
            assert got.startswith("BAD ")
        else:
            assert got == want


def test_c_frames_decode_in_python(codec_tool: Path) -> None:
    frames = _random_frames(5, 40)
    lines = "".join(f"{f.type} {f.seq} {f.payload.hex() or '-'}\n" for f in frames)
    res = subprocess.run([str(codec_tool), "encode"], input=lines.encode(), capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout == b"".join(p.encode_frame(f) for f in frames)  # byte-identical encoders
    assert p.FrameDecoder().feed(res.stdout) == frames


# ---- Device against the C firmware (sd_app.c main loop + stubs) on a pty ----------


def stub_features(x: np.ndarray) -> np.ndarray:
    """firmware/tests/protocol/stub_frontend.c, in Python."""
    acc = 0
    for s in x.astype(np.uint16).tolist():
        acc = (acc * 31 + s) & 0xFFFFFFFF
    return np.array([((acc >> (i % 24)) + i) & 0xFF for i in range(p.INPUT_SIZE)], dtype=np.uint8).view(np.int8)


#: The stub firmware's label count (firmware/tests/protocol/sd_labels.h): 12, not FSDD's 10, so
#: every message is tested with an output count other than the release's.
STUB_OUTPUTS = 12


def stub_model(features: np.ndarray) -> tuple[np.ndarray, int]:
    """firmware/tests/protocol/stub_model.c, in Python: (output, cost.lstm)."""
    u = features.view(np.uint8).astype(np.int64)
    out = np.array([u[k :: STUB_OUTPUTS].sum() & 0xFF for k in range(STUB_OUTPUTS)], dtype=np.uint8).view(np.int8)
    return out, 1000 + int(u[0])


@pytest.fixture(scope="module")
def firmware_pty(cbuild: Path) -> Iterator[str]:
    """The firmware's main loop with stub front end, model and port, on a pty; yields the pty path."""
    exe = _gcc(cbuild / "fake_device", [FW / "src" / "sd_app.c", *CORE, *STUB_SRC])
    master, slave = os.openpty()
    tty.setraw(slave)
    proc = subprocess.Popen([str(exe)], stdin=master, stdout=master, close_fds=True)
    os.close(master)
    try:
        yield os.ttyname(slave)
    finally:
        os.close(slave)  # the firmware reads EIO once every slave fd is closed, and exits
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def dev(firmware_pty: str) -> Iterator[Device]:
    with Device(firmware_pty, timeout=3.0) as d:
        yield d


def test_device_info_ping(dev: Device) -> None:
    info = dev.info()
    assert info.protocol_version == p.PROTOCOL_VERSION
    assert (info.max_payload, info.max_audio_samples) == (p.MAX_PAYLOAD, p.MAX_AUDIO_SAMPLES)
    assert (info.input_size, info.output_size, info.sample_rate) == (1280, STUB_OUTPUTS, 8000)
    assert info.labels_sha256 == "3c" * 32 and dev.n_outputs == STUB_OUTPUTS
    assert info.model_sha256 == "00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210"
    assert info.frontend_sha256 == "a5" * 32
    assert info.stream_sha256 == "5a" * 32
    assert (info.firmware_version, info.board, info.cost_unit) == ("0.1.0", "stub", "ticks")
    assert dev.ping() == b""
    blob = bytes(range(256)) * 5 + bytes(120)
    assert dev.ping(blob[: p.MAX_PAYLOAD]) == blob[: p.MAX_PAYLOAD]


def test_device_stats_and_receive_window(dev: Device) -> None:
    """STATS: the engine's counters and the stub port's numbers (dropped 3, window 64, high water
    17); negotiate() adopts the window: AUDIO chunks shrink to fit it, a bigger request is refused."""
    s0 = dev.device_stats()
    assert (s0.rx_dropped, s0.rx_window, s0.rx_high_water) == (3, 64, 17)
    assert s0.rx_bytes > 0 and s0.frames_ok >= 1
    dev.ping(b"abc")
    s1 = dev.negotiate()
    # PING with a 3-byte payload: 1 + 14 + 1 + 1 + 1 wire bytes (seq 2 bytes never 0 here or the
    # COBS length is the same), and STATS: 1 + 11 + 1 + 1.
    assert s1.frames_ok == s0.frames_ok + 2
    assert s1.rx_bytes - s0.rx_bytes == len(p.encode_frame(p.Frame(1, dev.seq - 1, b"abc"), leading_delimiter=True)) + 1 \
        + len(p.encode_frame(p.Frame(p.MsgType.STATS, dev.seq), leading_delimiter=True)) + 1
    assert s1.frames_bad == s0.frames_bad
    assert dev.rx_window == 64 and dev.max_chunk_samples == p.audio_samples_for_window(64) == 19
    x = np.random.default_rng(3).integers(-32768, 32768, size=200, dtype=np.int16)
    dev.info()  # the output count; a Device that has not asked asks INFO before its first CLASSIFY
    sent: list[int] = []
    write = dev._ser.write
    dev._ser.write = lambda data: sent.append(len(data)) or write(data)  # type: ignore[method-assign]
    try:
        r = dev.classify_clip(77, x, want_features=True)
    finally:
        dev._ser.write = write  # type: ignore[method-assign]
    np.testing.assert_array_equal(r.features, stub_features(x))
    assert max(sent) <= 64 and len(sent) == 11 + 1  # ceil(200 / 19) AUDIO + CLASSIFY
    with pytest.raises(p.FrameTooLarge, match="receive window"):
        dev.ping(bytes(60))
    with pytest.raises(p.FrameTooLarge):
        dev.infer(np.zeros(p.INPUT_SIZE, np.int8))
    dev.ping(bytes(40))  # 40 + 10 + 5 = 55 bytes: fits


@pytest.mark.parametrize("n", [0, 1, 512, 513, 4000])
def test_device_classify_clip(dev: Device, n: int) -> None:
    x = np.random.default_rng(n).integers(-32768, 32768, size=n, dtype=np.int16)
    r = dev.classify_clip(1000 + n, x)
    feats = stub_features(x)
    out, lstm = stub_model(feats)
    assert r.n_samples == n
    np.testing.assert_array_equal(r.features, feats)
    np.testing.assert_array_equal(r.output, out)
    assert r.label == int(np.argmax(out))
    assert r.cost["lstm"] == lstm and r.cost["head"] == 7 and r.cost["frontend"] > 0
    r2 = dev.classify_clip(1, x, want_features=False, chunk_samples=100)
    assert r2.features is None
    np.testing.assert_array_equal(r2.output, out)


def test_device_infer_and_errors(dev: Device) -> None:
    x = np.random.default_rng(9).integers(-128, 128, size=(16, 80), dtype=np.int8)
    r = dev.infer(x)
    out, lstm = stub_model(x.reshape(-1))
    np.testing.assert_array_equal(r.output, out)
    assert r.label == int(np.argmax(out)) and r.cost == {"frontend": 0, "lstm": lstm, "head": 7}
    bad = x.reshape(-1).copy()
    bad[:4] = 0x7F  # the stub model fails on this
    with pytest.raises(p.DeviceError) as e:
        dev.infer(bad)
    assert e.value.code == p.ErrorCode.MODEL
    with pytest.raises(p.DeviceError) as e:
        dev.request(p.MsgType.CLASSIFY, p.build_classify(5, want_features=False))
    assert e.value.code == p.ErrorCode.NO_CLIP
    with pytest.raises(p.DeviceError) as e:
        dev.request(0x42)
    assert e.value.code == p.ErrorCode.UNKNOWN_TYPE
    dev.send_audio(77, 0, np.zeros(10, np.int16), begin=True)
    dev.reset()
    with pytest.raises(p.DeviceError) as e:
        dev.send_audio(77, 10, np.zeros(10, np.int16), begin=False)
    assert e.value.code == p.ErrorCode.NO_CLIP
    # Garbage on the line, then normal service.
    dev._ser.write(b"\x01\x01\x01\x02" + bytes(range(1, 256)) * 10 + b"\x00")
    assert dev.ping(b"ok") == b"ok"


# ---- Device against a scripted fake over socket:// and loop:// --------------------

Responder = Callable[[int, p.Frame], bytes]


@pytest.fixture
def fake_device() -> Iterator[Callable[[Responder], str]]:
    """A TCP server answering each decoded request with ``responder(count, frame)`` bytes."""
    servers: list[socket.socket] = []

    def start(responder: Responder) -> str:
        srv = socket.create_server(("127.0.0.1", 0))
        servers.append(srv)

        def serve() -> None:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                dec, count = p.FrameDecoder(), 0
                while True:
                    try:
                        data = conn.recv(4096)
                    except OSError:
                        return
                    if not data:
                        return
                    for ev in dec.feed(data):
                        if isinstance(ev, p.Frame):
                            conn.sendall(responder(count, ev))
                            count += 1

        threading.Thread(target=serve, daemon=True).start()
        return f"socket://127.0.0.1:{srv.getsockname()[1]}"

    yield start
    for srv in servers:
        srv.close()


def _answer(f: p.Frame, payload: bytes | None = None) -> bytes:
    return p.encode_frame(p.Frame(f.type | p.RESPONSE_BIT, f.seq, f.payload if payload is None else payload))


def _damaged(f: p.Frame) -> bytes:
    body = bytearray(p.cobs_decode(_answer(f)[:-1]))
    body[-1] ^= 0xFF
    return p.cobs_encode(bytes(body)) + b"\x00"


def test_device_skips_garbage_stale_and_damaged(fake_device) -> None:
    def responder(_: int, f: p.Frame) -> bytes:
        stale = p.encode_frame(p.Frame(f.type | p.RESPONSE_BIT, (f.seq - 1) & 0xFFFF, b"old"))
        return b"\x13\x37garbage" + b"\x00" + stale + _damaged(f) + b"\xfe\xfe" + b"\x00" + _answer(f, b"new")

    with Device(fake_device(responder), timeout=2.0) as d:
        assert d.request(p.MsgType.PING, b"x") == b"new"
        assert d.stats["stale"] == 1 and d.stats["damaged"] >= 2


def test_device_timeout_is_bounded(fake_device) -> None:
    with Device(fake_device(lambda n, f: b""), timeout=0.3) as d:
        t0 = time.monotonic()
        with pytest.raises(p.Timeout):
            d.ping()
        assert time.monotonic() - t0 < 1.0
    with Device("loop://", timeout=0.3) as d:  # hears only its own request
        with pytest.raises(p.Timeout):
            d.info()
        assert d.stats["stale"] == 1


def test_device_retries_same_seq(fake_device) -> None:
    seqs: list[int] = []

    def responder(n: int, f: p.Frame) -> bytes:
        seqs.append(f.seq)
        if n == 0:
            return b""  # response lost
        if n == 1:
            return _damaged(f)
        if n == 2:
            return p.encode_frame(p.Frame(p.MsgType.ERROR, f.seq, bytes([p.ErrorCode.BAD_CRC, f.type]) + b"crc"))
        return _answer(f)

    with Device(fake_device(responder), timeout=0.3, retries=3) as d:
        assert d.ping(b"hello") == b"hello"
        assert len(set(seqs)) == 1 and len(seqs) == 4 and d.stats["resent"] == 3
    with Device(fake_device(lambda n, f: _damaged(f)), timeout=0.2, retries=1) as d:
        with pytest.raises(p.CrcError):
            d.ping()


def test_device_recovers_lost_delimiters_and_too_large(fake_device) -> None:
    """A response whose delimiter was lost is taken once the line goes idle (it still passes the CRC);
    ERROR TOO_LARGE (two requests merged on the line) is resent like BAD_CRC."""

    def responder(n: int, f: p.Frame) -> bytes:
        if n == 0:
            return p.encode_frame(p.Frame(p.MsgType.ERROR, f.seq, bytes([p.ErrorCode.TOO_LARGE, f.type]) + b"big"))
        return _answer(f)[:-1]  # no delimiter after it

    with Device(fake_device(responder), timeout=2.0, retries=1) as d:
        t0 = time.monotonic()
        assert d.ping(b"idle") == b"idle"
        assert time.monotonic() - t0 < 1.0 and d.stats["resent"] == 1 and d.stats["timeouts"] == 0


def test_device_resends_at_once_after_a_damaged_response(fake_device) -> None:
    with Device(fake_device(lambda n, f: _damaged(f) if n < 3 else _answer(f)), timeout=5.0, retries=3) as d:
        t0 = time.monotonic()
        assert d.ping(b"x") == b"x"
        assert time.monotonic() - t0 < 1.0  # not 3 x the 5 s timeout
        assert d.stats["resent"] == 3 and d.stats["damaged"] == 3


def test_device_seq_continues_across_reopen(fake_device) -> None:
    seqs: list[int] = []
    url = fake_device(lambda n, f: seqs.append(f.seq) or _answer(f))
    with Device(url, timeout=1.0) as d:
        d.ping()
        d.ping()
        last = d.seq
    url2 = fake_device(lambda n, f: seqs.append(f.seq) or _answer(f))
    with Device(url2, timeout=1.0, seq=last) as d:
        d.ping()
    assert seqs[1:] == [(seqs[0] + 1) & 0xFFFF, (seqs[0] + 2) & 0xFFFF]


def test_dead_pty_raises_link_error() -> None:
    """The peer of a pty goes away: every port failure (termios.error from tcflush, OSError, pyserial's
    SerialException) comes out of Device as LinkError, never as a hang."""
    from host.device import LinkError

    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    dev = Device(path, timeout=0.5, retries=2)
    os.close(slave)
    os.close(master)
    t0 = time.monotonic()
    with pytest.raises(LinkError):
        dev.ping(b"anyone?")
    assert time.monotonic() - t0 < 2.0
    dev.close()  # closing a dead port does not raise


# ---- STREAM (protocol version 3, unchanged in 4): messages, and the C engine with the stub front end ----------

STUB_EVENT_EVERY = 4096  # firmware/tests/protocol/stub_frontend.c


def _stub_digit(out: np.ndarray) -> int | None:
    """The device's rejection rule: the first argmax, unless it leads the runner-up by less than 64."""
    o = out.astype(np.int64)
    top = int(np.argmax(o))
    return None if o[top] - np.delete(o, top).max() < 64 else top


def stub_stream_events(x: np.ndarray) -> list[tuple[int | None, int, int, tuple[int, ...], int]]:
    """stub_frontend.c's streaming mode with stub_model.c: (digit, start, end, outputs, cost.lstm) per event."""
    acc, events = 0, []

    def decide(first: int, last: int) -> None:
        feats = np.array([((acc >> (i % 24)) + i) & 0xFF for i in range(p.INPUT_SIZE)], np.uint8).view(np.int8)
        out, lstm = stub_model(feats)
        events.append((_stub_digit(out), first, last, tuple(int(v) for v in out), lstm))

    for i, s in enumerate(x.astype(np.uint16).tolist()):
        acc = (acc * 31 + s) & 0xFFFFFFFF
        if (i + 1) % STUB_EVENT_EVERY == 0:
            decide(i + 1 - 3072, i + 1 - 1025)
    if len(x) % STUB_EVENT_EVERY >= 1024:
        decide(len(x) - len(x) % STUB_EVENT_EVERY, len(x) - 1)
    return events


def test_stream_messages_encode_decode() -> None:
    req = p.build_stream(7, 2**40 + 3, np.arange(3, dtype="<i2").tobytes(), begin=False, end=True)
    assert req == struct.pack("<IQBBH", 7, 2**40 + 3, p.STREAM_END, 0, 3) + b"\x00\x00\x01\x00\x02\x00"
    assert p.build_stream(1, 0, b"", begin=True)[12] == p.STREAM_BEGIN
    with pytest.raises(p.FrameTooLarge):
        p.build_stream(1, 0, bytes(1025))
    with pytest.raises(p.FrameTooLarge):
        p.build_stream(1, 0, b"\x00")
    ev = struct.pack("<BQQ10s", 4, 2**33, 2**33 + 99, bytes([0x80, 0x7F] + [0] * 8))
    rej = struct.pack("<BQQ10s", p.STREAM_REJECTED, 5, 6, bytes(10))
    payload = struct.pack("<IQIBBHHQQQ", 7, 2**40, 12, p.STREAM_ENDED, 2, 2, 0, 11, 22, 33) + ev + rej
    ack = p.parse_stream_ack(payload, 10)
    assert (ack.stream_id, ack.received, ack.events_total, ack.ended, ack.replayed) == (7, 2**40, 12, True, False)
    assert (ack.frames, ack.lost, ack.cost) == (2, 0, {"frontend": 11, "lstm": 22, "head": 33})
    assert ack.events == (p.StreamEvent(4, 2**33, 2**33 + 99, (-128, 127) + (0,) * 8),
                          p.StreamEvent(None, 5, 6, (0,) * 10))
    with pytest.raises(p.ProtocolError):
        p.parse_stream_ack(payload[:-1], 10)  # an event cut short
    with pytest.raises(p.ProtocolError):  # more events than the queue holds
        p.parse_stream_ack(payload[:17] + b"\x03" + payload[18:] + rej, 10)
    with pytest.raises(p.ProtocolError):
        p.parse_stream_ack(payload[:46] + b"\x0a" + payload[47:], 10)  # label 10 of a 10-output model
    with pytest.raises(p.ProtocolError):  # the same bytes read for a 12-output model: the sizes disagree
        p.parse_stream_ack(payload, 12)
    ev12 = struct.pack("<BQQ12s", 11, 1, 2, bytes(range(12)))  # label 11 exists with 12 outputs
    ack12 = p.parse_stream_ack(payload[:17] + b"\x01" + payload[18:46] + ev12, 12)
    assert ack12.events == (p.StreamEvent(11, 1, 2, tuple(range(12))),)
    assert p.stream_samples_for_window(0) == p.MAX_AUDIO_SAMPLES
    assert p.wire_size(16 + 2 * p.stream_samples_for_window(64)) <= 64 < p.wire_size(
        16 + 2 * (p.stream_samples_for_window(64) + 1))


def _stream(dev: Device, sid: int, x: np.ndarray, chunk: int) -> list:
    acks = []
    for off in range(0, max(len(x), 1), chunk):
        acks.append(dev.send_stream(sid, off, x[off : off + chunk], begin=off == 0, end=off + chunk >= len(x)))
    return acks


@pytest.mark.parametrize("n,chunk", [(0, 512), (1000, 512), (10000, 512), (13000, 333)])
def test_device_stream_events(dev: Device, n: int, chunk: int) -> None:
    """Every event the stub decides comes back once, in the ack of the chunk that completed it,
    with the model's outputs, the rejection rule, frames and the model's cost of that chunk."""
    x = np.random.default_rng(n).integers(-32768, 32768, size=n, dtype=np.int16)
    acks = _stream(dev, 40 + n, x, chunk)
    want = stub_stream_events(x)
    got = [(e.digit, e.start, e.end, e.output) for a in acks for e in a.events]
    assert got == [w[:4] for w in want]
    assert acks[-1].ended and acks[-1].events_total == len(want) and not any(a.lost or a.replayed for a in acks)
    assert sum(a.frames for a in acks) == n // 256
    assert all(a.cost["lstm"] == sum(w[4] for w in want if any(w[1] == e.start for e in a.events)) for a in acks)
    assert all(a.cost["head"] == 7 * len(a.events) for a in acks)


def test_device_stream_resent_chunk_is_not_applied_twice(dev: Device) -> None:
    """A chunk sent again (its ack lost) is recognized by its offset: the same ack, events included,
    flagged REPLAYED, and nothing pushed twice (the events after it are still the stub's)."""
    x = np.random.default_rng(5).integers(-32768, 32768, size=9300, dtype=np.int16)
    want = stub_stream_events(x)
    got = []
    for off in range(0, len(x), 512):
        part = np.ascontiguousarray(x[off : off + 512], "<i2").tobytes()
        payload = p.build_stream(9, off, part, begin=off == 0, end=off + 512 >= len(x))
        first = p.parse_stream_ack(dev.request(p.MsgType.STREAM, payload), dev.outputs())
        again = p.parse_stream_ack(dev.request(p.MsgType.STREAM, payload), dev.outputs())
        if off == 0:  # a resent BEGIN restarts the stream: the same state, not a replay
            assert not again.replayed and again == first
        else:
            assert again.replayed and not first.replayed
            assert dataclasses.replace(again, replayed=False) == first
        got += [(e.digit, e.start, e.end, e.output) for e in first.events]
    assert got == [w[:4] for w in want] and len(want) == 3  # 4096, 8192, and the END flush from 8192


def test_device_stream_end_flush_and_errors(dev: Device) -> None:
    x = np.random.default_rng(6).integers(-32768, 32768, size=5200, dtype=np.int16)
    acks = _stream(dev, 3, x[:5000], 512)  # 904 samples after 4096: too short, nothing at the end
    assert [len(a.events) for a in acks][-3:] == [1, 0, 0] and acks[-1].ended
    for off in range(0, 4608, 512):
        dev.send_stream(4, off, x[off : off + 512], begin=off == 0)
    last = dev.send_stream(4, 4608, x[4608:4700])
    assert not last.ended and not last.events
    end = dev.send_stream(4, 4700, x[4700:5200], end=True)  # 1104 samples after 4096: flushed by END
    assert end.ended and [(e.start, e.end) for e in end.events] == [(4096, 5199)]
    assert [(e.digit, e.start, e.end, e.output) for e in end.events] == [w[:4] for w in stub_stream_events(x)][1:]
    again = dev.send_stream(4, 4700, x[4700:5200], end=True)  # its ack lost: replayed, no new event
    assert again.replayed and again.events == end.events and again.events_total == 2
    for payload, code in ((p.build_stream(4, 5200, x[:10].tobytes()), p.ErrorCode.SEQUENCE),  # after END
                          (p.build_stream(5, 5200, b"", end=True), p.ErrorCode.CLIP_MISMATCH),
                          (p.build_stream(4, 7, b"", begin=True), p.ErrorCode.BAD_ARGUMENT),
                          (struct.pack("<IQBBH", 4, 0, 8, 0, 0), p.ErrorCode.BAD_ARGUMENT),
                          (struct.pack("<IQBBH", 4, 0, 0, 0, 2), p.ErrorCode.BAD_LENGTH),
                          (b"\x01", p.ErrorCode.BAD_LENGTH),
                          (struct.pack("<IQBBH", 4, 0, 1, 0, 513) + bytes(1026), p.ErrorCode.TOO_LARGE)):
        with pytest.raises(p.DeviceError) as e:
            dev.request(p.MsgType.STREAM, payload)
        assert e.value.code == code, payload[:16]
    dev.send_stream(6, 0, x[:100], begin=True)
    dev.classify_clip(1, x[:100])  # AUDIO BEGIN ends the stream
    for setup in (lambda: None, dev.reset):
        dev.send_stream(6, 0, x[:100], begin=True)
        setup() if setup is dev.reset else dev.send_audio(2, 0, x[:10], begin=True)
        with pytest.raises(p.DeviceError) as e:
            dev.send_stream(6, 100, x[100:200])
        assert e.value.code == p.ErrorCode.NO_CLIP


# ---- protocol version 4: mu-law STREAM chunks, FEATURES and TENSOR parts ------------------------


def test_mulaw_stream_is_the_decoded_stream(dev: Device) -> None:
    """A stream sent as mu-law bytes is, to the device, the stream of their decoded samples
    (train/mulaw.py's decode, the device's sd_mulaw_decode): the same events as that int16 stream,
    with half the bytes per chunk; a resent mu-law chunk is replayed like any other."""
    from train import mulaw

    x = np.random.default_rng(11).integers(-32768, 32768, size=9000, dtype=np.int16)
    u = mulaw.encode(x)
    want = stub_stream_events(mulaw.decode(u))
    got = []
    for off in range(0, len(u), 512):
        ack = dev.send_stream(70, off, u[off : off + 512], begin=off == 0, end=off + 512 >= len(u), mulaw=True)
        got += [(e.digit, e.start, e.end, e.output) for e in ack.events]
    assert got == [w[:4] for w in want] and len(want) == 2  # at 4096 and 8192
    again = dev.send_stream(70, 8704, u[8704:], end=True, mulaw=True)
    assert again.replayed and again.ended
    # The length rule follows the flag: n bytes with MULAW, 2n without.
    with pytest.raises(p.DeviceError) as e:
        dev.request(p.MsgType.STREAM, struct.pack("<IQBBH", 71, 0, p.STREAM_BEGIN | p.STREAM_MULAW, 0, 4) + bytes(8))
    assert e.value.code == p.ErrorCode.BAD_LENGTH
    # AUDIO knows no MULAW flag.
    with pytest.raises(p.DeviceError) as e:
        dev.request(p.MsgType.AUDIO, struct.pack("<IIBBH", 1, 0, p.AUDIO_BEGIN | p.STREAM_MULAW, 0, 2) + bytes(2))
    assert e.value.code == p.ErrorCode.BAD_ARGUMENT


def test_mulaw_matches_g711_and_round_trips() -> None:
    """Decoding is G.711's table (checked against the standard library's audioop where it still
    exists); every code but 0x7F (negative zero) survives decode -> encode; encode is monotonic."""
    from train import mulaw

    codes = np.arange(256, dtype=np.uint8)
    dec = mulaw.decode(codes)
    assert dec.dtype == np.int16 and dec.max() == 32124 and dec.min() == -32124
    assert (mulaw.encode(dec) == np.where(codes == 0x7F, 0xFF, codes)).all()
    x = np.arange(-32768, 32768, dtype=np.int16)
    y = mulaw.roundtrip(x).astype(np.int64)
    assert (np.diff(y) >= 0).all()  # monotonic
    big = np.abs(x.astype(np.int64)) > 256
    assert (np.abs(y - x)[big] <= np.abs(x.astype(np.int64))[big] / 16).all()  # within half a step: 4 bits kept
    with pytest.raises(ValueError):
        mulaw.encode(np.zeros(3, np.float32))
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import audioop
    except ImportError:
        return
    assert np.frombuffer(audioop.ulaw2lin(codes.tobytes(), 2), np.int16).tolist() == dec.tolist()


def test_device_features_in_parts_and_replayed_classify(dev: Device) -> None:
    """CLASSIFY without features, then FEATURES parts of any size, give the tensor the device's
    front end computed, matching the CRC-32 in the CLASSIFY answer; a replayed CLASSIFY (first
    answer lost) is made good from the same held tensor, not by streaming the clip again."""
    x = np.random.default_rng(12).integers(-32768, 32768, size=3000, dtype=np.int16)
    want = stub_features(x)
    for part in (None, 1280, 256, 100, 7):
        r = dev.classify_clip(80, x, chunk_samples=400, part_bytes=part)
        assert r.features is not None and r.features.tolist() == want.tolist(), part
    # The same CLASSIFY again (same seq, as after a lost answer): REPLAYED, no features inline.
    dev.classify_clip(81, x, want_features=False)
    seq = dev.seq
    dev.seq = seq - 1
    payload = dev.request(p.MsgType.CLASSIFY, p.build_classify(81, want_features=True))
    r = p.parse_classify(payload, dev.outputs())
    assert r.replayed and r.features is None and r.input_crc == zlib.crc32(want.tobytes())
    assert dev.read_features(81, r.input_crc, 300) == want.tobytes()
    with pytest.raises(p.DeviceError) as e:
        dev.read_features(82, None, 300)
    assert e.value.code == p.ErrorCode.NO_CLIP
    with pytest.raises(p.ProtocolError, match="CRC-32"):
        dev.read_features(81, r.input_crc ^ 1, 300)


def test_device_infer_in_tensor_parts(dev: Device) -> None:
    """TENSOR parts + an empty INFER give the same answer as INFER with the tensor inline, and
    the answer names the CRC-32 of the tensor the model ran on."""
    t = np.random.default_rng(13).integers(-128, 128, size=p.INPUT_SIZE, dtype=np.int8)
    whole = dev.infer(t)
    for part in (1280, 64, 333):
        r = dev.infer(t, part_bytes=part)
        assert r.label == whole.label and r.output.tolist() == whole.output.tolist()
    out, _ = stub_model(t)
    assert whole.output.tolist() == out.tolist()
    # TENSOR ends an open clip (the tensor lives where the front end keeps its own).
    dev.send_audio(90, 0, np.zeros(10, np.int16), begin=True)
    dev.request(p.MsgType.TENSOR, p.build_tensor(0, b"\x01"))
    with pytest.raises(p.DeviceError) as e:
        dev.send_audio(90, 10, np.zeros(10, np.int16), begin=False)
    assert e.value.code == p.ErrorCode.NO_CLIP
