"""Generates firmware/generated/: the model graph (convert/codegen.py) and the
front-end configuration and tables (here), all from the Python side.

C never re-derives a table: the Hann window, the mel filterbank (stored
sparsely: first bin, length, coefficients per band) and the per-band gain and
offset that fold normalization and input quantization together are taken
from train/features.py, the same functions the reference uses.

Two exact transformations keep the tables small and the device fast, both
checked here at generation time (see `frame_window`): the window is stored
pre-multiplied by 2**-15 (the int16 -> [-1, 1) scaling; a power of two, so
``x * (w * 2**-15)`` is bit for bit ``(x * 2**-15) * w``), and only its first
n_fft/2 + 1 values when the float32 window is exactly symmetric. The mel
index tables use the narrowest unsigned type that holds them; each band's
weights follow the previous band's, so no offset table is stored.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

import convert  # noqa: F401
from train import features as F


def c_float(v) -> str:
    """A C float literal that parses back to exactly this float32."""
    s = np.format_float_scientific(np.float32(v), unique=True, exp_digits=2)
    return f"{s}f"


def _rows(values, per_line: int, fmt) -> str:
    vals = [fmt(v) for v in values]
    return ",\n    ".join(", ".join(vals[i : i + per_line]) for i in range(0, len(vals), per_line))


def sparse_mel(cfg: F.FrontendConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(start bin, length, offset, weights) of each band's non-zero run of the mel filterbank."""
    basis = F.mel_filterbank(cfg)
    starts, lens, offs, weights = [], [], [], []
    for m, row in enumerate(basis):
        nz = np.flatnonzero(row)
        if len(nz) == 0:
            raise ValueError(f"mel band {m} has no non-zero weight; use fewer bands or a larger n_fft")
        a, b = int(nz[0]), int(nz[-1]) + 1
        starts.append(a)
        lens.append(b - a)
        offs.append(len(weights))
        weights.extend(row[a:b].tolist())
    return np.array(starts), np.array(lens), np.array(offs), np.asarray(weights, np.float32)


INT16_SCALE_EXP = -15
"""Device samples are int16 x; the reference's y = x * 2**-15 (float32) is folded into the window."""


def frame_window(window: np.ndarray) -> tuple[np.ndarray, bool]:
    """(stored window, half) for the device: the float32 window times 2**-15, and only
    its first n_fft/2 + 1 values (half=True) when it is exactly symmetric.

    For every int16 x, ``(x * 2**-15) * w`` (the reference) and ``x * (w * 2**-15)``
    (the device) are the same real number rounded once, hence bit-identical, provided
    ``w * 2**-15`` is exact in float32: checked here, along with no subnormal value
    (which a flush-to-zero FPU would not keep). The half table needs
    ``w[n] == w[n_fft - n]`` bit for bit for 0 < n < n_fft/2; otherwise the whole
    window is stored (SD_WINDOW_HALF 0).
    """
    w = np.asarray(window, np.float32)
    n = len(w)
    scaled = (w * np.float32(2.0**INT16_SCALE_EXP)).astype(np.float32)
    exact = np.array_equal(scaled.astype(np.float64) * 2.0**-INT16_SCALE_EXP, w.astype(np.float64))
    normal = np.all((scaled == 0) | (np.abs(scaled) >= np.finfo(np.float32).tiny))
    if not (exact and normal):
        raise ValueError("window * 2**-15 is not exact and normal in float32; "
                         "the int16 scaling cannot be folded into the window table")
    bits = scaled.view(np.uint32)
    half = n % 2 == 0 and np.array_equal(bits[1 : n // 2], bits[n - 1 : n // 2 : -1])
    return (scaled[: n // 2 + 1] if half else scaled), bool(half)


def index_type(*arrays: np.ndarray) -> str:
    """The narrowest unsigned C type that holds every value of the arrays."""
    top = max(int(np.max(a)) for a in arrays)
    if min(int(np.min(a)) for a in arrays) < 0 or top > 0xFFFF:
        raise ValueError(f"mel index out of uint16 range: {top}")
    return "uint8_t" if top <= 0xFF else "uint16_t"


def generate_frontend_c(cfg: F.FrontendConfig, input_scale: float, input_zero_point: int, out_dir: Path, *, stamp: str) -> dict:
    """Writes sd_frontend_config.h and sd_frontend_tables.c; returns facts about them."""
    if 2 * cfg.hop_length != cfg.n_fft:  # frame = previous hop + current hop (also an #error in C)
        raise ValueError(f"the firmware front end needs hop_length == n_fft / 2, got {cfg.hop_length} and {cfg.n_fft}")
    window, window_half = frame_window(F.hann_window(cfg))
    starts, lens, offs, weights = sparse_mel(cfg)
    if not np.array_equal(offs, np.concatenate([[0], np.cumsum(lens)[:-1]])) or int(np.sum(lens)) != len(weights):
        raise AssertionError("mel weights are not stored band after band")  # sd_frontend.c walks them so
    mel_type = index_type(starts, lens)
    mel_bytes = 1 if mel_type == "uint8_t" else 2
    gain, offset = F.quant_gain_offset(cfg, input_scale, input_zero_point)
    rule = {"max-energy": 1, "first": 0}[cfg.window_rule]
    head = f"/* {stamp}\n * front-end config sha256 {cfg.sha256()}\n * Do not edit: regenerate with `python -m convert.quantize`. */\n"
    h = f"""{head}
#ifndef SD_FRONTEND_CONFIG_H
#define SD_FRONTEND_CONFIG_H

#include <stdint.h>

#define SD_SAMPLE_RATE {cfg.sr}u
#define SD_CLIP_SAMPLES {cfg.clip_samples}u      /* shorter clips are zero-padded to this */
#define SD_N_FFT {cfg.n_fft}u
#define SD_HOP_LENGTH {cfg.hop_length}u
#define SD_N_BINS {cfg.n_fft // 2 + 1}u
#define SD_N_MELS {cfg.n_mels}u
#define SD_N_FRAMES {cfg.n_frames}u
#define SD_WINDOW_MAX_ENERGY {rule}              /* 1: 16 frames with the most energy; 0: the first 16 */
#define SD_LOG_FLOOR {c_float(cfg.log_floor)}
#define SD_MEL_WEIGHTS {len(weights)}u
#define SD_CLIP_NORM_BAND_MEAN {int(cfg.clip_norm == "band-mean")}           /* 1: subtract each band's mean over the window */
#define SD_FINE_BITS {cfg.fine_bits}u                   /* fine int16 values: 2^SD_FINE_BITS steps per int8 step */
#define SD_FRONTEND_CONFIG_SHA256 "{cfg.sha256()}"

/* Periodic Hann window times 2^-15 (the int16 -> float scaling, folded exactly:
 * a power of two). 1: exactly symmetric, only w[0 .. SD_N_FFT/2] is stored and
 * w[n] = w[SD_N_FFT - n] beyond; 0: all SD_N_FFT values. */
#define SD_WINDOW_HALF {int(window_half)}
#define SD_WINDOW_STORED {len(window)}u
extern const float sd_window_scaled[SD_WINDOW_STORED];
/* Sparse mel filterbank: band m weights FFT bins sd_mel_start[m] ..
 * sd_mel_start[m] + sd_mel_length[m] - 1; its sd_mel_length[m] weights follow
 * those of band m - 1 in sd_mel_weights (band 0's start at index 0). */
#define SD_MEL_MAX_LENGTH {int(lens.max())}u
typedef {mel_type} sd_mel_index_t;
extern const sd_mel_index_t sd_mel_start[SD_N_MELS];   /* first FFT bin of each band */
extern const sd_mel_index_t sd_mel_length[SD_N_MELS];  /* bins in the band's non-zero run (>= 1) */
extern const float sd_mel_weights[SD_MEL_WEIGHTS];
/* Fine int16 value = round(log_mel * gain + offset): the per-band training
 * statistics and the model's input scale ({input_scale!r}) / 2^SD_FINE_BITS
 * folded; the int8 input follows in integers (zero point {input_zero_point}). */
extern const float sd_band_gain[SD_N_MELS];
extern const float sd_band_offset[SD_N_MELS];

#endif /* SD_FRONTEND_CONFIG_H */
"""
    c = f"""{head}
#include "sd_frontend_config.h"

const float sd_window_scaled[SD_WINDOW_STORED] = {{
    {_rows(window, 6, c_float)}
}};

const sd_mel_index_t sd_mel_start[SD_N_MELS] = {{
    {_rows(starts, 16, str)}
}};

const sd_mel_index_t sd_mel_length[SD_N_MELS] = {{
    {_rows(lens, 16, str)}
}};

const float sd_mel_weights[SD_MEL_WEIGHTS] = {{
    {_rows(weights, 6, c_float)}
}};

const float sd_band_gain[SD_N_MELS] = {{
    {_rows(gain, 6, c_float)}
}};

const float sd_band_offset[SD_N_MELS] = {{
    {_rows(offset, 6, c_float)}
}};
"""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "sd_frontend_config.h").write_text(h)
    (out_dir / "sd_frontend_tables.c").write_text(c)
    return {"mel_weights": int(len(weights)), "window_half": window_half,
            "table_bytes": int(4 * (len(window) + len(weights) + 2 * cfg.n_mels) + 2 * mel_bytes * cfg.n_mels)}


def generate_stream_h(scfg, out_dir: Path) -> Path:
    """firmware/generated/sd_stream_config.h: the streaming detector's constants (train/stream.py)."""
    from train import stream as S

    fields = {
        "START_DELTA": (scfg.start_delta, "level units (16 per octave of energy) above the floor that start an utterance"),
        "STOP_DELTA": (scfg.stop_delta, "... that keep it going"),
        "MIN_LEVEL": (scfg.min_level, "lowest level that can start an utterance"),
        "HANGOVER": (scfg.hangover, "quiet frames tolerated inside an utterance"),
        "MIN_FRAMES": (scfg.min_frames, "shortest utterance classified (first to last loud frame)"),
        "MAX_FRAMES": (scfg.max_frames, "an utterance is decided after this many frames"),
        "FALL_SHIFT": (scfg.fall_shift, "idle floor: down by (F - 16 L) >> this"),
        "RISE_SHIFT": (scfg.rise_shift, "idle floor: up by (16 L - F) >> this"),
        "ACTIVE_RISE_SHIFT": (scfg.active_rise_shift, "active floor: up by (16 L - F) >> this"),
        "WINDOW_PRE": (scfg.window_pre, "the window starts at most this many frames before the first loud one"),
        "REJECT_MARGIN": (scfg.reject_margin, "top-1 minus runner-up below this: rejected"),
        "LEVEL_FRAC_BITS": (S.LEVEL_FRAC_BITS, "bits below the leading one in a level"),
    }
    lines = ["/* generated by python -m convert.quantize from train/stream.py's StreamConfig",
             f" * stream config sha256 {scfg.sha256()}",
             " * Do not edit: regenerate with `python -m convert.firmware_gen` (or convert.quantize). */", "",
             "#ifndef SD_STREAM_CONFIG_H", "#define SD_STREAM_CONFIG_H", ""]
    for name, (v, doc) in fields.items():
        lines.append(f"#define SD_STREAM_{name} {int(v)}  /* {doc} */")
    lines += ["", f"#define SD_STREAM_BAND_ORDER {int(scfg.band_order)}  /* step 1's band filter: (1 - z^-1)(1 + z^-1)^order, "
              f"taps {' '.join(map(str, scfg.band_taps)) or 'none'}; 0: the frame energy */"]
    from train import mulaw

    lines += ["", "/* G.711 mu-law samples in STREAM chunks (train/mulaw.py): decoded as "
              "((((~u & 15) << 3) + BIAS) << ((~u >> 4) & 7)) - BIAS, negated when ~u & 0x80 */",
              f"#define SD_MULAW_BIAS {int(mulaw.BIAS)}  /* added before encoding, removed after decoding */",
              ""]
    lines += [f'#define SD_STREAM_CONFIG_SHA256 "{scfg.sha256()}"', "", "#endif /* SD_STREAM_CONFIG_H */", ""]
    path = Path(out_dir) / "sd_stream_config.h"
    path.write_text("\n".join(lines))
    return path


def generate_firmware_sources(tflite_path: Path, cfg: F.FrontendConfig, out_dir: Path) -> dict:
    """Model graph + front-end tables into out_dir; deterministic for the same inputs."""
    import tensorflow as tf

    from convert.codegen import generate_model_c
    from convert.tflite_info import inspect

    data = Path(tflite_path).read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    info = inspect(data)
    model = generate_model_c(tflite_path, out_dir, model_sha256=sha)
    stamp = f"generated by python -m convert.quantize (TensorFlow {tf.__version__}); model sha256 {sha}"
    fe = generate_frontend_c(cfg, info.input_quant[0], info.input_quant[1], Path(out_dir), stamp=stamp)
    from train.stream import DEFAULT_STREAM

    generate_stream_h(DEFAULT_STREAM, Path(out_dir))
    keep = {k: v for k, v in model.items() if k in ("num_ops", "const_bytes", "arena_bytes", "macs", "ops_by_type", "lstm_ops", "head_ops")}
    return {"model": keep, "frontend": fe, "dir": str(out_dir)}


def main(argv=None) -> int:
    import argparse

    from train.stream import DEFAULT_STREAM

    p = argparse.ArgumentParser(prog="python -m convert.firmware_gen",
                                description="Writes sd_stream_config.h (the streaming detector's constants, "
                                            "train/stream.py) without re-converting the model; "
                                            "python -m convert.quantize writes it too, with the model's files.")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "firmware" / "generated"),
                   help="folder of the generated sources (default: firmware/generated)")
    args = p.parse_args(argv)
    print(generate_stream_h(DEFAULT_STREAM, Path(args.out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
