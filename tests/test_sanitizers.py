"""The host C tests again, built with clang under AddressSanitizer + UBSan.

Builds: `make -C firmware SAN=1 ...` (build/posix-san) and
`make -C firmware/tests/protocol SAN=1 ...` (build-san): clang,
-fsanitize=address,undefined -fno-sanitize-recover=all, -Werror for our
sources, so any report aborts the program and fails the test.

Programs run sanitized:
- the protocol unit tests (test_protocol.c, stubs) and the stub device
  (fake_device) in a session over pipes;
- the integer real FFT against its Python definition (tests/rfft/test_rfft_q15.c);
- the front end (frontend_main.c) on stress signals and FSDD clips, and the
  int8 model with every kernel it uses (test_model_main.c) on the front end's
  tensors plus random and extreme inputs; outputs must equal the plain gcc
  build's (build/posix) bit for bit;
- the posix firmware itself (sd_firmware) driven by host.device.Device over
  its pseudo-terminal: INFO, a clip, INFER; it must exit 0 (LeakSanitizer
  runs at exit).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from firmware_build import FIRMWARE, build_test, require_generated
from host import protocol as p

PROTO = FIRMWARE / "tests" / "protocol"
SAN_OUT = FIRMWARE / "build" / "posix-san"
FEATURES = 16 * 80
ENV = {**os.environ, "ASAN_OPTIONS": "abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=1",
       "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}

pytestmark = pytest.mark.skipif(shutil.which("clang") is None, reason="clang is not installed (make deps)")


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, env=ENV, timeout=kw.pop("timeout", 600), **kw)
    out = r.stdout if isinstance(r.stdout, str) else r.stdout.decode(errors="replace")
    err = r.stderr if isinstance(r.stderr, str) else r.stderr.decode(errors="replace")
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} exited {r.returncode}:\n{out[-3000:]}\n{err[-6000:]}"
    assert "runtime error" not in err and "Sanitizer" not in err, err[-6000:]
    return r


def san_test(main: str, *extra: str) -> Path:
    r = run(["make", "-s", "-C", str(FIRMWARE), "SAN=1", "BOARD=posix", f"TEST_MAIN={main}", "test-elf", *extra],
            text=True)
    exe = FIRMWARE / r.stdout.strip().splitlines()[-1]
    assert exe.parent.parent == SAN_OUT, exe
    return exe


# ---- protocol ---------------------------------------------------------------------


def test_protocol_unit_tests_sanitized():
    r = run(["make", "-s", "-C", str(PROTO), "SAN=1", "test"], text=True)
    assert "test_protocol: PASS" in r.stdout


def test_stub_device_session_sanitized():
    run(["make", "-s", "-C", str(PROTO), "SAN=1", "build-san/fake_device"], text=True)
    rng = np.random.default_rng(3)
    samples = rng.integers(-32768, 32768, 1000).astype("<i2").tobytes()
    frames = [p.Frame(p.MsgType.INFO, 1), p.Frame(p.MsgType.PING, 2, bytes(range(256)) * 5),
              p.Frame(p.MsgType.AUDIO, 3, p.build_audio(7, 0, samples[:1024], begin=True)),
              p.Frame(p.MsgType.AUDIO, 4, p.build_audio(7, 512, samples[1024:], begin=False)),
              p.Frame(p.MsgType.AUDIO, 4, p.build_audio(7, 512, samples[1024:], begin=False)),  # resent
              p.Frame(p.MsgType.CLASSIFY, 5, p.build_classify(7, want_features=True)),
              p.Frame(p.MsgType.CLASSIFY, 5, p.build_classify(7, want_features=True)),  # replayed
              p.Frame(p.MsgType.INFER, 6, bytes(rng.integers(0, 256, p.INPUT_SIZE, dtype=np.uint8))),
              p.Frame(0x55, 7)]
    wire = b"\x01\x02\x03" + b"".join(p.encode_frame(f, leading_delimiter=True) for f in frames)
    wire += b"\x00" + b"\xff" * 3000 + b"\x00"  # oversize garbage, no header: no answer
    r = run([str(PROTO / "build-san" / "fake_device")], input=wire, timeout=60)
    got = [f for f in p.FrameDecoder().feed(r.stdout) if isinstance(f, p.Frame)]
    assert [(f.seq, f.type) for f in got] == [(1, 0x82), (2, 0x81), (3, 0x90), (4, 0x90), (4, 0x90), (5, 0x91),
                                              (5, 0x91), (6, 0x92), (7, 0xFF)]
    assert p.parse_audio_ack(got[4].payload).received == 1000
    first, replay = p.parse_classify(got[5].payload, 12), p.parse_classify(got[6].payload, 12)  # the stub has 12 labels
    assert first.features is not None and replay.replayed and replay.output == first.output
    assert p.parse_error(got[8].payload).code == p.ErrorCode.UNKNOWN_TYPE


# ---- integer FFT, front end, model --------------------------------------------------------


def test_rfft_sanitized():
    r = run(["make", "-s", "-C", str(FIRMWARE), "SAN=1", "BOARD=posix", "TEST_MAIN=tests/rfft/test_rfft_q15.c",
             "TEST_SRCS=src/sd_rfft_q15.c generated/sd_frontend_tables.c", "TEST_LIB=0", "test"], text=True)
    assert "PASS" in r.stdout


def stress_clips() -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    t = np.arange(4000) / 8000
    return [np.zeros(4000, np.int16), rng.integers(-32768, 32768, 4000).astype(np.int16),
            np.clip(np.round(80000 * np.sin(2 * np.pi * 440 * t)), -32768, 32767).astype(np.int16),
            np.full(4000, -32768, np.int16), np.full(4000, 32767, np.int16), np.array([1, -2, 3], np.int16),
            np.zeros(0, np.int16), rng.integers(-20000, 20000, 20000).astype(np.int16)]


def fsdd_clips(fsdd_dir: Path, n: int = 24) -> list[np.ndarray]:
    from train.data import read_wav

    wavs = sorted(fsdd_dir.rglob("*.wav"))
    step = max(1, len(wavs) // n)
    return [np.asarray(read_wav(w), np.int16) for w in wavs[::step][:n]]


def run_frontend(exe: Path, clips: list[np.ndarray], chunk: int) -> np.ndarray:
    blob = b"".join(struct.pack("<II", len(c), chunk) + c.astype("<i2").tobytes() for c in clips)
    out = run([str(exe)], input=blob).stdout
    rec = 4 + FEATURES
    assert len(out) == rec * len(clips)
    for k, c in enumerate(clips):
        assert struct.unpack_from("<I", out, k * rec)[0] == len(c)
    return np.stack([np.frombuffer(out, np.int8, FEATURES, k * rec + 4) for k in range(len(clips))])


def run_model(exe: Path, x: np.ndarray, tmp: Path) -> np.ndarray:
    (tmp / "in.bin").write_bytes(x.astype(np.int8).tobytes())
    run([str(exe), str(tmp / "in.bin"), str(tmp / "out.bin"), str(len(x))])
    return np.frombuffer((tmp / "out.bin").read_bytes(), np.int8).reshape(len(x), -1)  # one row per window


def test_frontend_and_model_sanitized_match_plain_build(fsdd_dir, tmp_path):
    require_generated()
    clips = stress_clips() + fsdd_clips(fsdd_dir)
    fe_san = san_test("tests/frontend/frontend_main.c")
    fe_gcc = build_test("tests/frontend/frontend_main.c")
    for chunk in (0, 100):
        feats = run_frontend(fe_san, clips, chunk)
        assert np.array_equal(feats, run_frontend(fe_gcc, clips, chunk)), f"chunk {chunk}: features differ"
    rng = np.random.default_rng(5)
    x = np.concatenate([feats.astype(np.int8),
                        rng.integers(-128, 128, (8, FEATURES)).astype(np.int8),
                        np.full((1, FEATURES), -128, np.int8), np.full((1, FEATURES), 127, np.int8),
                        np.tile(np.array([-128, 127], np.int8), (1, FEATURES // 2))])
    y_san = run_model(san_test("tests/test_model_main.c"), x, tmp_path)
    y_gcc = run_model(build_test("tests/test_model_main.c"), x, tmp_path)
    bad = np.argwhere(y_san != y_gcc)
    assert len(bad) == 0, f"{len(bad)} outputs differ, first at {bad[:5].tolist()}"


# ---- the posix firmware ----------------------------------------------------------------


def test_posix_firmware_sanitized(fsdd_dir):
    require_generated()
    from host.device import Device

    run(["make", "-s", "-C", str(FIRMWARE), "SAN=1", "BOARD=posix", "firmware"], text=True, timeout=900)
    fw = SAN_OUT / "sd_firmware"
    proc = subprocess.Popen([str(fw), "--exit-on-eof"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.startswith("SERIAL "), line
        clip = fsdd_clips(fsdd_dir, 3)[1]
        with Device(line.split(" ", 1)[1].strip(), timeout=60) as dev:
            info = dev.info()
            assert info.board == "posix" and info.input_size == FEATURES
            res = dev.classify_clip(77, clip, want_features=True, chunk_samples=333)
            assert res.n_samples == len(clip) and res.features is not None
            again = dev.infer(res.features)
            assert np.array_equal(again.output, res.output) and again.label == res.label
        status = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    assert status == 0 and "Sanitizer" not in err and "runtime error" not in err, err[-6000:]
