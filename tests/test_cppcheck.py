"""cppcheck over the firmware's C: `make -C firmware cppcheck` must report nothing.

Scope and flags are in firmware/Makefile (src, include, ports, generated,
tests; --enable=warning,performance,portability,style; --error-exitcode=1;
inline suppressions and tests/cppcheck-suppressions.txt, each with a reason).
The second test shows the gate closes: the same flags on a file with a known
defect fail.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

FW = Path(__file__).resolve().parent.parent / "firmware"

pytestmark = pytest.mark.skipif(shutil.which("cppcheck") is None, reason="cppcheck is not installed (make deps)")


def test_firmware_is_cppcheck_clean():
    r = subprocess.run(["make", "-s", "-C", str(FW), "cppcheck"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"cppcheck findings:\n{r.stdout[-6000:]}\n{r.stderr[-6000:]}"


def test_cppcheck_gate_fails_on_a_defect(tmp_path):
    flags = subprocess.run(["make", "-s", "-C", str(FW), "print-CPPCHECK_FLAGS"], capture_output=True, text=True,
                           check=True).stdout.strip()
    bad = tmp_path / "bad.c"
    bad.write_text("int sd_bad(void)\n{\n    int a[4] = {0, 1, 2, 3};\n    return a[4];\n}\n")
    r = subprocess.run(["cppcheck", *shlex.split(flags), "--template={file}:{line}: {id}", str(bad)], cwd=FW, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1 and "arrayIndexOutOfBounds" in r.stdout + r.stderr, r.stdout + r.stderr
