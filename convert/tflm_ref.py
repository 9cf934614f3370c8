"""Run a .tflite in the TensorFlow Lite Micro interpreter (package `tflite-micro`).

The reference for model parity (DESIGN.md): int8 in, int8 out, batched over
many inputs with one interpreter. The interpreter segfaults (instead of
raising) when its arena is far too small, so `find_min_arena` probes sizes in
child processes.

Command line (used by the probe; handy by hand too):
    python -m convert.tflm_ref MODEL.tflite --probe ARENA_BYTES   # exit 0 if it runs
    python -m convert.tflm_ref MODEL.tflite --min-arena           # prints the smallest arena
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import numpy as np

__all__ = ["run_tflm", "find_min_arena", "DEFAULT_ARENA_BYTES", "main"]

# Big enough for every model of this project (the per-channel unrolled
# LSTM(128) needs ~182 KB); small enough to be harmless on the host.
DEFAULT_ARENA_BYTES = 4 * 1024 * 1024


def _model_bytes(model) -> bytes:
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    with open(model, "rb") as f:
        return f.read()


def run_tflm(model, inputs: np.ndarray, *, arena_size: int = DEFAULT_ARENA_BYTES) -> np.ndarray:
    """Run the model on each input and return the outputs.

    Parameters
    ----------
    model : bytes or path
        A .tflite flatbuffer with one int8 input and one int8 output.
    inputs : np.ndarray [shape=(n, *input_shape) or input_shape], int8
        One or many input tensors; a single tensor is accepted and gives a
        single output.
    arena_size : int
        Tensor arena bytes for the interpreter (default DEFAULT_ARENA_BYTES).

    Returns
    -------
    np.ndarray [shape=(n, *output_shape)], dtype of the model output (int8).
    """
    from tflite_micro.python.tflite_micro import runtime

    data = _model_bytes(model)
    interp = runtime.Interpreter.from_bytes(data, arena_size=arena_size)
    in_det = interp.get_input_details(0)
    in_shape = tuple(int(d) for d in in_det["shape"])
    in_dtype = np.dtype(in_det["dtype"])
    x = np.asarray(inputs)
    single = x.shape == in_shape
    if single:
        x = x[None]
    if x.shape[1:] != in_shape:
        raise ValueError(f"inputs of shape {x.shape[1:]}, model wants {in_shape}")
    if x.dtype != in_dtype:
        raise ValueError(f"inputs of dtype {x.dtype}, model wants {in_dtype}")
    outs = []
    for k in range(x.shape[0]):
        interp.set_input(np.ascontiguousarray(x[k]), 0)
        interp.invoke()
        outs.append(np.array(interp.get_output(0), copy=True))
    y = np.stack(outs)
    return y[0] if single else y


def _probe(model_path: str, arena_size: int) -> int:
    """Child-process body: allocate + one invoke on zeros. 0 on success."""
    from tflite_micro.python.tflite_micro import runtime

    try:
        interp = runtime.Interpreter.from_file(model_path, arena_size=arena_size)
        det = interp.get_input_details(0)
        interp.set_input(np.zeros(tuple(det["shape"]), dtype=det["dtype"]), 0)
        interp.invoke()
    except Exception:  # noqa: BLE001 - any failure means "too small"
        return 1
    return 0


def _probe_ok(model_path: str, arena_size: int, timeout: float) -> bool:
    cmd = [sys.executable, "-m", "convert.tflm_ref", model_path, "--probe", str(arena_size)]
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return False
    return r.returncode == 0


def find_min_arena(model_path, *, lo: int = 1024, hi: int = DEFAULT_ARENA_BYTES,
                   granularity: int = 256, timeout: float = 60.0) -> int:
    """Smallest arena (bytes, a multiple of `granularity`) with which the
    TFLite Micro interpreter allocates and invokes the model, found by
    bisection; every probe runs in its own process (a too-small arena can
    crash the interpreter). Raises RuntimeError when `hi` is not enough.
    """
    model_path = os.path.abspath(str(model_path))
    if not _probe_ok(model_path, hi, timeout):
        raise RuntimeError(f"model does not run in TFLite Micro even with {hi} bytes")
    lo = max(granularity, lo // granularity * granularity)
    if _probe_ok(model_path, lo, timeout):
        return lo
    # invariant: lo fails, hi works
    while hi - lo > granularity:
        mid = (lo + hi) // 2 // granularity * granularity
        if mid <= lo:
            mid = lo + granularity
        if _probe_ok(model_path, mid, timeout):
            hi = mid
        else:
            lo = mid
    return hi


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m convert.tflm_ref", description=__doc__.split("\n")[0])
    ap.add_argument("model")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--probe", type=int, metavar="BYTES", help="exit 0 if the model runs with BYTES")
    g.add_argument("--min-arena", action="store_true", help="print the smallest working arena")
    args = ap.parse_args(argv)
    if args.probe is not None:
        return _probe(args.model, args.probe)
    print(find_min_arena(args.model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
