"""Board ports, the firmware build and the emulator launcher.

- Echo: firmware/tests/port_echo/ (every byte received is sent back) on
  posix, mps2-an386 and netduinoplus2, driven through host/emulator.py and
  pyserial exactly as host tools drive the real firmware.
- Cost counter: firmware/tests/port_cost/ times a loop of known length
  (2 instructions per iteration) under QEMU -icount shift=0.
- the integer FFT: firmware/tests/rfft/ runs sd_rfft_power_q15 (512 points) against
  its Python definition (golden vectors from firmware/tests/rfft/gen_rfft_q15_ref.py);
  the output bits must be identical on the host and both QEMU boards.

Skips (with the reason) when arm-none-eabi-gcc or qemu-system-arm is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from host.emulator import EmulatorError, start_emulator

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"

HAVE_ARM_GCC = shutil.which("arm-none-eabi-gcc") is not None
HAVE_QEMU = shutil.which("qemu-system-arm") is not None
INSTALL = "run firmware/tools/install-deps.sh"

needs_arm = pytest.mark.skipif(not HAVE_ARM_GCC, reason=f"arm-none-eabi-gcc not installed ({INSTALL})")
needs_qemu = pytest.mark.skipif(
    not (HAVE_ARM_GCC and HAVE_QEMU), reason=f"arm-none-eabi-gcc or qemu-system-arm not installed ({INSTALL})"
)

BOARDS = [
    pytest.param("posix", id="posix"),
    pytest.param("mps2-an386", id="mps2-an386", marks=needs_qemu),
    pytest.param("netduinoplus2", id="netduinoplus2", marks=needs_qemu),
]
QEMU_BOARDS = [p for p in BOARDS if p.values[0] != "posix"]


def make(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-s", "-C", str(FIRMWARE), *args],
                          capture_output=True, text=True, timeout=timeout)


def run_c_test(board: str, test_main: str, srcs: str = "") -> str:
    """Build and run a C test program on `board`; return its output."""
    res = make(f"BOARD={board}", "TEST_LIB=0", f"TEST_MAIN={test_main}", *([f"TEST_SRCS={srcs}"] if srcs else []), "test")
    out = res.stdout + res.stderr
    assert res.returncode == 0, f"{test_main} on {board} failed (status {res.returncode}):\n{out}"
    assert "PASS" in out, out
    return out


RFFT_SRCS = "src/sd_rfft_q15.c generated/sd_frontend_tables.c"


def echo_roundtrip(ser, data: bytes, chunk: int = 128, timeout: float = 20.0) -> bytes:
    got = bytearray()
    deadline = time.monotonic() + timeout
    for i in range(0, len(data), chunk):
        ser.write(data[i : i + chunk])
        # Wait for each chunk's echo before the next: the ports have no flow control, and
        # the STM32 port's receive ring is 256 bytes (enough for request/response, where the
        # device never transmits while a request arrives). Streaming while it echoes could
        # overrun that ring when the emulator is starved of CPU, which is not what this tests.
        while len(got) < min(len(data), i + chunk) and time.monotonic() < deadline:
            got += ser.read(max(1, ser.in_waiting))
    while len(got) < len(data) and time.monotonic() < deadline:
        got += ser.read(max(1, min(ser.in_waiting, len(data) - len(got))))
    return bytes(got)


@pytest.mark.parametrize("board", BOARDS)
def test_echo(board: str) -> None:
    data = np.random.default_rng(7).integers(0, 256, 2048, dtype=np.uint8).tobytes()
    with start_emulator(board, program="port_echo") as emu:
        ser = emu.open_serial(timeout=0.5)
        try:
            assert echo_roundtrip(ser, data) == data
        finally:
            ser.close()
        # the host closes and reopens the port: the board keeps serving
        ser = emu.open_serial(timeout=0.5)
        try:
            assert echo_roundtrip(ser, b"again\x00\xff") == b"again\x00\xff"
        finally:
            ser.close()
        assert emu.alive(), emu.log()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_posix_idle_does_not_spin() -> None:
    with start_emulator("posix", program="port_echo") as emu:
        ser = emu.open_serial(timeout=0.5)
        assert echo_roundtrip(ser, b"hi") == b"hi"
        ser.close()  # client gone: the port must wait, not spin
        pid = emu._proc.pid  # type: ignore[union-attr]
        c0 = _cpu_seconds(pid)
        time.sleep(1.0)
        used = _cpu_seconds(pid) - c0
        assert used < 0.3, f"idle posix firmware used {used:.2f} s of CPU in 1 s"


def test_posix_exit_on_eof() -> None:
    with start_emulator("posix", program="port_echo", exit_on_eof=True) as emu:
        ser = emu.open_serial(timeout=0.5)
        assert echo_roundtrip(ser, b"bye") == b"bye"
        ser.close()
        deadline = time.monotonic() + 5
        while emu.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not emu.alive(), "posix firmware did not exit after the client closed"
        assert emu._proc is not None and emu._proc.returncode == 0


def test_missing_firmware_message(tmp_path: Path) -> None:
    with pytest.raises(EmulatorError, match="does not exist"):
        start_emulator("posix", firmware=tmp_path / "nope")
    with pytest.raises(EmulatorError, match="unknown board"):
        start_emulator("arduino-uno")


@pytest.mark.parametrize("board", QEMU_BOARDS)
def test_cost_counter_counts_instructions(board: str) -> None:
    out = run_c_test(board, "tests/port_cost/test_cost.c")
    assert "cost unit instructions" in out
    # 8e8 instructions cross at least one 24-bit SysTick wrap on both boards
    m = re.search(r"loop n=400000000: (\d+) instructions", out)
    assert m and abs(int(m.group(1)) - 800_000_000) <= 200, out


def test_rfft_matches_its_python_definition_everywhere() -> None:
    """The integer FFT: plain C on the host, SIMD instructions on the Cortex-M4 boards, the same bits."""
    boards = ["posix"] + (["mps2-an386", "netduinoplus2"] if HAVE_ARM_GCC and HAVE_QEMU else [])
    hashes = {}
    for board in boards:
        out = run_c_test(board, "tests/rfft/test_rfft_q15.c", RFFT_SRCS)
        assert " 0 mismatches" in out, out
        hashes[board] = re.search(r"output hash (0x[0-9a-f]+)", out).group(1)
    assert len(set(hashes.values())) == 1, hashes


def test_builds_are_quiet_unless_asked(tmp_path) -> None:
    """One 'CC file' line per compiled file, 'LD' per link; V=1 prints the full commands instead."""
    quiet = subprocess.run(["make", "--no-print-directory", "-C", str(FIRMWARE), "BOARD=posix", f"OUT={tmp_path}/q"],
                           capture_output=True, text=True, timeout=600)
    assert quiet.returncode == 0, quiet.stderr
    lines = quiet.stdout.splitlines()
    assert "  CC   src/sd_frontend.c" in lines and any(x.startswith("  LD   ") for x in lines)
    assert not any("-Werror" in x for x in lines)
    loud = subprocess.run(["make", "--no-print-directory", "-C", str(FIRMWARE), "BOARD=posix", f"OUT={tmp_path}/v",
                           "V=1"], capture_output=True, text=True, timeout=600)
    assert loud.returncode == 0 and any("-Werror" in x and "sd_frontend.c" in x for x in loud.stdout.splitlines())


def test_rfft_golden_vectors_are_current() -> None:
    """rfft_q15_ref.h is what gen_rfft_q15_ref.py makes from train/intfront.py today."""
    import importlib.util

    path = FIRMWARE / "tests/rfft/gen_rfft_q15_ref.py"
    spec = importlib.util.spec_from_file_location("gen_rfft_q15_ref", path)
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert gen.render() == (FIRMWARE / "tests/rfft/rfft_q15_ref.h").read_text()


@needs_qemu
def test_qemu_cost_is_deterministic() -> None:
    costs = [re.search(r"cost (\d+) instructions", run_c_test("mps2-an386", "tests/rfft/test_rfft_q15.c", RFFT_SRCS)).group(1)
             for _ in range(2)]
    assert costs[0] == costs[1]


@needs_arm
def test_nucleo_f446re_builds() -> None:
    res = make("BOARD=nucleo-f446re", "echo")
    assert res.returncode == 0, res.stdout + res.stderr
    image = (FIRMWARE / "build/nucleo-f446re/port_echo.elf").read_bytes()
    assert image[:4] == b"\x7fELF"
    # the flash image starts with the vector table: stack top, then reset
    res = subprocess.run(["arm-none-eabi-objcopy", "-O", "binary",
                          str(FIRMWARE / "build/nucleo-f446re/port_echo.elf"), "/dev/stdout"],
                         capture_output=True)
    sp, reset = np.frombuffer(res.stdout[:8], dtype="<u4")
    assert sp == 0x20020000
    assert 0x08000000 <= reset < 0x08080000 and reset & 1  # Thumb
