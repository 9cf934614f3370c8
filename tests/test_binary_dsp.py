"""ADD and MUL: the Cortex-M4 DSP assembly loops equal the reference arithmetic.

firmware/tests/binary_dsp/binary_dsp_main.c runs sd_add_s8 and sd_mul_s8 on
the released model's 9 parameter sets and 48 random ones (offsets, halved
input on either side or neither, multipliers, shifts, output offsets, fused
clamps), each on all 65,536 input pairs plus short sizes for the loops'
remainders, against a naive reference written from TFLite Micro's AddFunc /
MulElementwise with sd_multiply_by_quantized_multiplier. Under QEMU
mps2-an386 that is the assembly (SMMLAR / SSAT) path; on the host the
plain-C fast paths.

Skips when arm-none-eabi-gcc or qemu-system-arm is missing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

FIRMWARE = Path(__file__).resolve().parent.parent / "firmware"
MAIN = "tests/binary_dsp/binary_dsp_main.c"


def _run(board: str) -> str:
    r = subprocess.run(["make", "-s", "-C", str(FIRMWARE), f"BOARD={board}", f"TEST_MAIN={MAIN}", "test"],
                       capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"{MAIN} on {board} failed (status {r.returncode}):\n{out[-4000:]}"
    return out


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="arm-none-eabi-gcc or qemu-system-arm not installed (firmware/tools/install-deps.sh)")
def test_add_mul_dsp_equal_reference_on_cortex_m4():
    out = _run("mps2-an386")
    m = re.search(r"^PASS: (\d+) cases, (\d+) outputs, dsp (\d), 0 failing$", out, re.M)
    assert m, out[-4000:]
    assert int(m.group(3)) == 1, "the Cortex-M4 build did not compile the DSP path"
    assert int(m.group(1)) >= 57 and int(m.group(2)) > 3_000_000


def test_add_mul_c_equal_reference_on_host():
    out = _run("posix")
    m = re.search(r"^PASS: (\d+) cases, (\d+) outputs, dsp 0, 0 failing$", out, re.M)
    assert m, out[-4000:]
