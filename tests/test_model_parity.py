"""Model parity of the firmware's int8 engine with the released model, on every test clip.

Reference: the TFLite Micro interpreter (convert.reference.Reference.infer) on
the reference front end's int8 input tensors of the official test split.
Device: firmware/src/sd_model.c + kernels + the generated graph, built for the
host (all 300 clips) and for QEMU's Cortex-M4F (a subset compiled into the image).
Target: outputs identical element for element (issue 4).
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from firmware_build import FIRMWARE, RELEASED, build_test, require_generated


@pytest.fixture(scope="module")
def reference_io(fsdd_dir):
    from convert.reference import Reference
    from train import data as fsdd

    require_generated()
    ref = Reference.from_dir(RELEASED)
    ds = fsdd.load_dataset(fsdd_dir)
    _, te = fsdd.split_indices(ds, "official")
    res = ref.run([ds.clips[i].samples for i in te])
    return res.features, res.outputs


def test_host_build_is_bit_exact_on_test_split(reference_io, tmp_path):
    x, y_ref = reference_io
    exe = build_test("tests/test_model_main.c")
    (tmp_path / "in.bin").write_bytes(x.astype(np.int8).tobytes())
    subprocess.run([str(exe), str(tmp_path / "in.bin"), str(tmp_path / "out.bin"), str(len(x))], check=True, timeout=300)
    y = np.frombuffer((tmp_path / "out.bin").read_bytes(), np.int8).reshape(y_ref.shape)
    bad = np.argwhere(y != y_ref)
    assert len(bad) == 0, f"{len(bad)} mismatching outputs, first: " + ", ".join(
        f"clip {c} [{i}]: {y[c, i]} vs {y_ref[c, i]}" for c, i in bad[:10])


def test_cortex_m4_build_is_bit_exact(reference_io, tmp_path):
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm is not installed (make deps)")
    x, y_ref = reference_io
    k = 12  # clips compiled into the image (each 1,280 bytes)
    rows_in = ",\n".join("{" + ",".join(str(int(v)) for v in xi.reshape(-1)) + "}" for xi in x[:k])
    rows_out = ",\n".join("{" + ",".join(str(int(v)) for v in yi.reshape(-1)) + "}" for yi in y_ref[:k])
    (tmp_path / "sd_test_vectors.h").write_text(
        "/* written by tests/test_model_parity.py: reference front end + TFLite Micro on the first test clips */\n"
        "#include <stdint.h>\n#include \"sd_model.h\"\n"
        f"#define SD_TEST_NUM_VECTORS {k}\n"
        f"static const int8_t sd_test_inputs[{k}][SD_MODEL_INPUT_SIZE] = {{\n{rows_in}\n}};\n"
        f"static const int8_t sd_test_outputs[{k}][SD_MODEL_OUTPUT_SIZE] = {{\n{rows_out}\n}};\n"
    )
    extra = [f"TEST_INCS={tmp_path}"]
    build_test("tests/test_model_target.c", "mps2-an386", extra=extra)
    r = subprocess.run(["make", "-s", "-C", str(FIRMWARE), "BOARD=mps2-an386", "TEST_MAIN=tests/test_model_target.c",
                        "test", *extra], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and f"PASS: 0 mismatches in {k} vectors" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]


def test_op_profile_on_cortex_m4_counts_every_op():
    """firmware/tests/profile (make bench's per-op table): every op of the generated
    graph is counted once under its kind, and the per-op costs add up to the
    executor's own stage costs, give or take dispatch and counter reads."""
    import re
    from collections import Counter

    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm is not installed (make deps)")
    require_generated()
    graph = (FIRMWARE / "generated" / "sd_model_graph.c").read_text()
    # one op table entry per op, or per call of FULLY_CONNECTED ops on a shared
    # input ("/* ops 37, 38, 39, 40: ..."): each op counted under its kind
    expected = Counter()
    for m in re.finditer(r"^    (?:SD_OP_HEAD \+ )?SD_OP_(\w+), /\* ops? ([\d, ]+):", graph, re.M):
        expected[m.group(1)] += len(m.group(2).split(","))
    r = subprocess.run(["make", "-s", "-C", str(FIRMWARE), "BOARD=mps2-an386", "TEST_MAIN=tests/profile/profile_main.c",
                        "test"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    got = {m.group(1): (int(m.group(2)), int(m.group(3))) for m in re.finditer(r"^op (\S+) count (\d+) cost (\d+)", r.stdout, re.M)}
    assert {k: v[0] for k, v in got.items()} == dict(expected)
    assert all(cost > 0 for _, cost in got.values())
    total = int(re.search(r"^total (\d+) instructions", r.stdout, re.M).group(1))
    stages = re.search(r"lstm (\d+) head (\d+)", r.stdout)
    staged = int(stages.group(1)) + int(stages.group(2))
    # They differ by the executor's dispatch (outside the per-op figures) and the
    # extra counter reads (inside them): well under 200 instructions per op.
    assert abs(staged - total) <= 200 * sum(expected.values()), (total, staged)
