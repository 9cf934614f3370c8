"""The two paths of the int8 FULLY_CONNECTED kernel compute the same outputs.

firmware/tests/fc_dsp/fc_dsp_main.c runs sd_fully_connected_s8_dsp (SMLAD /
UXTB16, Cortex-M4 DSP extension) and sd_fully_connected_s8_c (plain C) on the
same inputs - 600 cases of randomized shapes (odd row and column counts, one
and several 128-column chunks, batches 1-3), random and extreme weights and
inputs, bias NULL / random / INT32 extremes / int32 within the fast path's
bound (sd_fc_params_t.bias_small, at its edges), per-tensor and per-channel
multipliers over the whole range, extreme output offsets and clamps - and
compares them element for element, and both with a naive reference decoded
from the packed layout. Under QEMU mps2-an386 (Cortex-M4F) both paths run;
on the host only the plain-C one (against the naive reference).

Skips when arm-none-eabi-gcc or qemu-system-arm is missing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

FIRMWARE = Path(__file__).resolve().parent.parent / "firmware"
MAIN = "tests/fc_dsp/fc_dsp_main.c"


def _run(board: str) -> str:
    r = subprocess.run(["make", "-s", "-C", str(FIRMWARE), f"BOARD={board}", f"TEST_MAIN={MAIN}", "test"],
                       capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"{MAIN} on {board} failed (status {r.returncode}):\n{out[-4000:]}"
    return out


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="arm-none-eabi-gcc or qemu-system-arm not installed (firmware/tools/install-deps.sh)")
def test_dsp_path_equals_plain_c_on_cortex_m4():
    out = _run("mps2-an386")
    m = re.search(r"^PASS: (\d+) cases, (\d+) outputs, dsp (\d), 0 failing$", out, re.M)
    assert m, out[-4000:]
    assert int(m.group(3)) == 1, "the Cortex-M4 build did not compile the DSP path"
    assert int(m.group(1)) >= 600 and int(m.group(2)) > 10000


def test_plain_c_path_equals_naive_reference_on_host():
    out = _run("posix")
    m = re.search(r"^PASS: (\d+) cases, (\d+) outputs, dsp 0, 0 failing$", out, re.M)
    assert m, out[-4000:]


def test_generator_marks_only_normalized_channels():
    """convert/codegen_lower.py promises SD_FC_PER_CHANNEL_NORMALIZED only where the DSP path's one-pass
    requantization is exact (every multiplier >= 2^30, every shift in [-23, -1]); the value is the header's."""
    from convert.codegen_lower import FC_NORMALIZED_MAX_RIGHT_SHIFT, FC_PER_CHANNEL_NORMALIZED, fc_channels_normalized

    header = (FIRMWARE / "include" / "sd_kernels.h").read_text()
    m = re.search(r"#define SD_FC_PER_CHANNEL_NORMALIZED (\d+)", header)
    assert m and int(m.group(1)) == FC_PER_CHANNEL_NORMALIZED
    assert "[-23, -1]" in header and FC_NORMALIZED_MAX_RIGHT_SHIFT == 23
    assert fc_channels_normalized([1 << 30, 2**31 - 1], [-1, -23])
    assert not fc_channels_normalized([1 << 30, 1 << 30], [-1, -24])  # hz would overflow
    assert not fc_channels_normalized([1 << 30, 0], [-1, -5])  # a zero scale: multiplier 0
    assert not fc_channels_normalized([1 << 30, 1 << 30], [-1, 0])  # no right shift


def test_generator_marks_only_small_int32_biases():
    """convert/codegen_lower.py marks an int32 effective bias FC_BIAS_INT32_SMALL only where every |b| +
    accum_depth 2^14 < 2^23 (the DSP path's inner routine then starts from it exactly); the values are the
    headers'."""
    from convert.codegen_lower import (FC_BIAS_INT16, FC_BIAS_INT32, FC_BIAS_INT32_SMALL, FC_BIAS_SMALL_LIMIT,
                                       fc_bias_small)

    kernels = (FIRMWARE / "include" / "sd_kernels.h").read_text()
    m = re.search(r"#define SD_FC_BIAS_SMALL_LIMIT \(1L << (\d+)\)", kernels)
    assert m and 1 << int(m.group(1)) == FC_BIAS_SMALL_LIMIT
    graph = (FIRMWARE / "include" / "sd_graph.h").read_text()
    for name, v in (("INT32", FC_BIAS_INT32), ("INT16", FC_BIAS_INT16), ("INT32_SMALL", FC_BIAS_INT32_SMALL)):
        m = re.search(rf"#define SD_FC_BIAS_{name} (\d+)", graph)
        assert m and int(m.group(1)) == v, name
    lim = (1 << 23) - 128 * (1 << 14)
    assert fc_bias_small([lim - 1, -(lim - 1), 0, 40000], 128)
    assert not fc_bias_small([lim, 0], 128)
    assert not fc_bias_small([-lim, 0], 128)
    assert fc_bias_small([lim], 127) and not fc_bias_small([0], 512)
