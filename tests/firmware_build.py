"""Helpers for tests that build and run the firmware's C code."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
GENERATED = FIRMWARE / "generated"
RELEASED = ROOT / "models" / "released"


def require_generated() -> None:
    if not (GENERATED / "sd_model_graph.h").is_file() or not (RELEASED / "model_int8.tflite").is_file():
        pytest.fail("firmware/generated or models/released/model_int8.tflite missing: run `python -m convert.quantize`")


def generated_model_sha() -> str:
    m = re.search(r'#define SD_MODEL_SHA256 "([0-9a-f]{64})"', (GENERATED / "sd_model_graph.h").read_text())
    assert m, "SD_MODEL_SHA256 not found in sd_model_graph.h"
    return m.group(1)


def build_test(main: str, board: str = "posix", *, extra: list[str] | None = None, timeout: float = 600) -> Path:
    """Builds firmware/<main> as a test program for `board`; returns the binary's path."""
    if board != "posix" and shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed (make deps)")
    cmd = ["make", "-s", "-C", str(FIRMWARE), f"BOARD={board}", f"TEST_MAIN={main}", "test-elf", *(extra or [])]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return FIRMWARE / r.stdout.strip().splitlines()[-1]
