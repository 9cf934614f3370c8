"""Keeps TensorFlow's C++ start-up lines off a user's terminal.

TensorFlow 2.21 logs through absl before absl's logging is initialized, so
``TF_CPP_MIN_LOG_LEVEL`` no longer silences its start-up lines: every run
printed "All log messages before absl::InitializeLog() ...", the oneDNN
notice and "Could not find cuda drivers" (twice), which look like failures on
a CPU machine and are not. `install()` puts an import hook in front of
``import tensorflow``: while TensorFlow's own modules load, the process's
stderr (file descriptor 2, where the C++ code writes) goes through a pipe and
only the lines matching NOISE are dropped; everything else is written on at
once. Set SD_TF_LOGS=1 to see them all.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import re
import sys
import threading

#: The start-up lines dropped; anything else TensorFlow writes still reaches stderr.
NOISE = re.compile(
    rb"All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|oneDNN custom operations are on"
    rb"|Could not find cuda drivers on your machine"
    rb"|Unable to register cu(DNN|FFT|BLAS) factory"
    rb"|computation placer already registered"
    rb"|TF-TRT Warning: Could not find TensorRT"
    rb"|This TensorFlow binary is optimized to use available CPU instructions"
    rb"|To enable the following instructions: .* in other operations, rebuild TensorFlow"
    rb"|failed call to cuInit"
    rb"|fully_quantize: \d+, inference_type: \d+, input_inference_type"  # the TFLite converter, per conversion
)


def filtered_stderr() -> "_FilteredStderr":
    """Context manager: NOISE lines written to fd 2 meanwhile are dropped (a no-op with SD_TF_LOGS=1)."""
    return _FilteredStderr(active=os.environ.get("SD_TF_LOGS") != "1")


class _FilteredStderr:
    """Context: fd 2 goes through a pipe; a thread passes every line not matching NOISE to the real fd 2."""

    def __init__(self, active: bool = True) -> None:
        self.active = active

    def __enter__(self) -> "_FilteredStderr":
        if not self.active:
            return self
        sys.stderr.flush()
        self.saved = os.dup(2)
        r, w = os.pipe()
        os.dup2(w, 2)
        os.close(w)
        self.thread = threading.Thread(target=self._pump, args=(r,), daemon=True)
        self.thread.start()
        return self

    def _pump(self, r: int) -> None:
        buf = b""
        with os.fdopen(r, "rb", buffering=0) as f:
            while True:
                chunk = f.read(4096)
                if not chunk:
                    break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if not NOISE.search(line):
                        os.write(self.saved, line + b"\n")
        if buf and not NOISE.search(buf):
            os.write(self.saved, buf)

    def __exit__(self, *exc: object) -> None:
        if not self.active:
            return
        sys.stderr.flush()
        os.dup2(self.saved, 2)  # closes the pipe's last write end: the pump sees EOF
        self.thread.join(timeout=5)
        os.close(self.saved)


class _Loader(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader) -> None:
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module) -> None:
        with _FilteredStderr():
            self.inner.exec_module(module)


class _Finder(importlib.abc.MetaPathFinder):
    """Wraps the loading of the top-level ``tensorflow`` package (its imports happen inside)."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


def install() -> None:
    """Once per process, before TensorFlow is first imported (train/__init__.py, convert/__init__.py)."""
    if os.environ.get("SD_TF_LOGS") == "1" or "tensorflow" in sys.modules:
        return
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
