"""Generates firmware/generated/: the model graph (convert/codegen.py) and the
front-end configuration and tables (here), all from the Python side.

C never re-derives a table: the Q15 window, the FFT's twiddles and digit
reversal, the integer mel filterbank (stored sparsely: first bin, length,
weights per band), the log and noise-subtraction tables and the per-band
integer gain and offset that fold normalization and input quantization
together all come from train/intfront.py and train/features.py, the
functions the reference itself uses. The window is stored as its first
n_fft/2 + 1 values (it is exactly symmetric, checked here); the mel index
tables use the narrowest unsigned type that holds them; each band's weights
follow the previous band's, so no offset table is stored.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

import convert  # noqa: F401
from train import features as F


def _rows(values, per_line: int, fmt=str) -> str:
    vals = [fmt(v) for v in values]
    return ",\n    ".join(", ".join(vals[i : i + per_line]) for i in range(0, len(vals), per_line))


def _hex32(v) -> str:
    return f"0x{int(v) & 0xFFFFFFFF:08X}u"


def packed16(pairs: np.ndarray) -> np.ndarray:
    """(re, im) int16 pairs [shape=(n, 2)] as the device's packed words (re low, im high), uint32."""
    p = np.asarray(pairs, np.int64)
    if p.min() < -32768 or p.max() > 32767:
        raise ValueError("a packed value is outside int16")
    return (p[:, 0] & 0xFFFF) | ((p[:, 1] & 0xFFFF) << 16)


def sparse_mel(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start bin, length, weights) of each band's run from its first to its last non-zero integer weight."""
    starts, lens, flat = [], [], []
    for m, row in enumerate(np.asarray(weights)):
        nz = np.flatnonzero(row)
        if len(nz) == 0:
            raise ValueError(f"mel band {m} has no non-zero weight; use fewer bands or a larger n_fft")
        a, b = int(nz[0]), int(nz[-1]) + 1
        starts.append(a)
        lens.append(b - a)
        flat.extend(int(v) for v in row[a:b])
    return np.array(starts), np.array(lens), np.asarray(flat, np.int64)


def index_type(*arrays: np.ndarray) -> str:
    """The narrowest unsigned C type that holds every value of the arrays."""
    top = max(int(np.max(a)) for a in arrays)
    if min(int(np.min(a)) for a in arrays) < 0 or top > 0xFFFF:
        raise ValueError(f"mel index out of uint16 range: {top}")
    return "uint8_t" if top <= 0xFF else "uint16_t"


def generate_frontend_c(cfg: F.FrontendConfig, input_scale: float, input_zero_point: int, out_dir: Path, *, stamp: str) -> dict:
    """Writes sd_frontend_config.h and sd_frontend_tables.c (front end v2); returns facts about them."""
    from train import intfront as I

    if not cfg.is_integer:
        raise ValueError(f"front end {cfg.describe()} is not built by this firmware any more: it computes front end "
                         "v2 (integer). Retrain the model with the current `python -m train` (v2 is the default).")
    if 2 * cfg.hop_length != cfg.n_fft:  # frame = previous hop + current hop (also an #error in C)
        raise ValueError(f"the firmware front end needs hop_length == n_fft / 2, got {cfg.hop_length} and {cfg.n_fft}")
    t = I.tables(cfg)
    if cfg.frame_pool > 1 and not cfg.agc_strength and not (
            t.log_floor_q + int(min(t.gain_table)) >= -(1 << 15) and int(max(t.gain_table)) <= 0):
        # sd_frontend.c keeps a pooled step's first values as int16 without gain control (sd_pool_value_t)
        raise ValueError(f"frame pooling: values after noise suppression may leave int16 (log floor "
                         f"{t.log_floor_q}, gains {int(min(t.gain_table))}..{int(max(t.gain_table))})")
    half = cfg.n_fft // 2
    window = packed16(t.window.reshape(-1, 2))
    starts, lens, weights = sparse_mel(t.mel_weights)
    if weights.max() > 0xFFFF:
        raise AssertionError("mel weight outside uint16")
    mel_type = index_type(starts, lens)
    mel_bytes = 1 if mel_type == "uint8_t" else 2
    m = cfg.n_fft // 2
    rev_type = "uint8_t" if m <= 256 else "uint16_t"
    gain, offset, shift = F.fine_gain_offset(cfg, input_scale)
    rule = {"max-energy": 1, "first": 0}[cfg.window_rule]
    head = f"/* {stamp}\n * front-end config sha256 {cfg.sha256()}\n * Do not edit: regenerate with `python -m convert.quantize`. */\n"
    log_offset = -42 - t.mel_weight_bits
    h = f"""{head}
#ifndef SD_FRONTEND_CONFIG_H
#define SD_FRONTEND_CONFIG_H

#include <stdint.h>

/* Front end v2: integer arithmetic from the int16 samples to the int8 input
 * (train/intfront.py, train/features.py). INFO reports this version. */
#define SD_FRONTEND_VERSION 2
#define SD_SAMPLE_RATE {cfg.sr}u
#define SD_CLIP_SAMPLES {cfg.clip_samples}u      /* shorter clips are zero-padded to this */
#define SD_N_FFT {cfg.n_fft}u
#define SD_HOP_LENGTH {cfg.hop_length}u
#define SD_N_BINS {cfg.n_fft // 2 + 1}u
#define SD_N_MELS {cfg.n_mels}u
#define SD_N_FRAMES {cfg.n_frames}u            /* time steps in the model window */
#define SD_FRAME_POOL {cfg.frame_pool}u          /* frames per time step: 2 averages frames 2j and 2j + 1 (step 3) */
#define SD_STEP_HOP {cfg.step_hop}u           /* samples per time step: SD_HOP_LENGTH * SD_FRAME_POOL */
#define SD_WINDOW_MAX_ENERGY {rule}              /* 1: 16 frames with the most energy; 0: the first 16 */
#define SD_CLIP_NORM_BAND_MEAN {int(cfg.clip_norm == "band-mean")}           /* 1: subtract each band's mean over the window */
#define SD_FINE_BITS {cfg.fine_bits}u                   /* fine int16 values: 2^SD_FINE_BITS steps per int8 step */
#define SD_FRONTEND_CONFIG_SHA256 "{cfg.sha256()}"

/* Step 1: periodic Hann window in Q15 (0 .. 32767) as pairs (w[2i] low,
 * w[2i+1] high). The windowed frame is shifted to SD_FFT_INPUT_BITS bits
 * and a sign. */
#define SD_FFT_INPUT_BITS {I.FFT_INPUT_BITS}u
extern const uint32_t sd_window_pairs[SD_N_FFT / 2u];
/* Steps 2-3: the SD_CFFT_N-point complex FFT's twiddles W^m, m < 3 SD_CFFT_N / 4,
 * the split step's W_N^k, k <= SD_CFFT_N / 2 (Q15, packed: re low, im high),
 * and where Z[k] stands in the FFT's digit-reversed output. */
#define SD_CFFT_N {m}u
extern const uint32_t sd_fft_twiddle[3u * SD_CFFT_N / 4u];
extern const uint32_t sd_fft_split[SD_CFFT_N / 2u + 1u];
extern const {rev_type} sd_fft_digit_rev[SD_CFFT_N];
/* Step 4: sparse mel filterbank, librosa's Slaney filters times 2^{t.mel_weight_bits}
 * as uint16: band m weights FFT bins sd_mel_start[m] ..
 * sd_mel_start[m] + sd_mel_length[m] - 1; its weights follow those of
 * band m - 1 in sd_mel_weights. */
#define SD_MEL_WEIGHTS {len(weights)}u
#define SD_MEL_MAX_LENGTH {int(lens.max())}u
typedef {mel_type} sd_mel_index_t;
extern const sd_mel_index_t sd_mel_start[SD_N_MELS];   /* first FFT bin of each band */
extern const sd_mel_index_t sd_mel_length[SD_N_MELS];  /* bins in the band's run (>= 1) */
extern const uint16_t sd_mel_weights[SD_MEL_WEIGHTS];
/* Step 5: L = log2(E) + 2 s + SD_LOG_OFFSET in Q SD_LOG_FRAC_BITS, at least SD_LOG_FLOOR_Q
 * (log2 of {cfg.log_floor!r}); log2(1 + i / 64) in Q16 for the mantissa. */
#define SD_LOG_FRAC_BITS {cfg.log_frac_bits}
#define SD_LOG_OFFSET ({log_offset})
#define SD_LOG_FLOOR_Q ({t.log_floor_q})
#define SD_LOG_TABLE_BITS {I.LOG_TABLE_BITS}u
extern const uint32_t sd_log_table[(1u << SD_LOG_TABLE_BITS) + 1u];
/* Step 6: the noise floor falls by (L - floor) >> SD_NOISE_FALL_SHIFT, rises by
 * ... >> SD_NOISE_RISE_SHIFT; S = L + sd_noise_gain[clamp((L - floor) >> (F - 5))]
 * (noise_oversub {cfg.noise_oversub!r}, noise_min_remaining {cfg.noise_min_remaining!r}). */
#define SD_NOISE_FALL_SHIFT {cfg.noise_fall_shift}
#define SD_NOISE_RISE_SHIFT {cfg.noise_rise_shift}
#define SD_NOISE_INDEX_BITS {I.GAIN_INDEX_BITS}
#define SD_NOISE_TABLE_LEN {I.GAIN_TABLE_LEN}u
extern const int16_t sd_noise_gain[SD_NOISE_TABLE_LEN];
/* Step 7: gain control, S - ((SD_AGC_STRENGTH * A) >> 8), A += (S - A) >> SD_AGC_SHIFT (0: off). */
#define SD_AGC_STRENGTH {cfg.agc_strength}
#define SD_AGC_SHIFT {cfg.agc_shift}
/* Fine int16 value = clamp((S * gain + offset + SD_BAND_ROUND) >> SD_BAND_SHIFT):
 * the per-band training statistics and the model's input scale
 * ({input_scale!r}) / 2^SD_FINE_BITS folded; the int8 input follows in
 * integers (zero point {input_zero_point}). */
#define SD_BAND_SHIFT {shift}
#define SD_BAND_ROUND {(1 << shift) >> 1}
extern const int16_t sd_band_gain[SD_N_MELS];
extern const int32_t sd_band_offset[SD_N_MELS];

#endif /* SD_FRONTEND_CONFIG_H */
"""
    c = f"""{head}
#include "sd_frontend_config.h"

const uint32_t sd_window_pairs[SD_N_FFT / 2u] = {{
    {_rows(window, 6, _hex32)}
}};

const uint32_t sd_fft_twiddle[3u * SD_CFFT_N / 4u] = {{
    {_rows(packed16(t.twiddle), 6, _hex32)}
}};

const uint32_t sd_fft_split[SD_CFFT_N / 2u + 1u] = {{
    {_rows(packed16(t.split), 6, _hex32)}
}};

const {rev_type} sd_fft_digit_rev[SD_CFFT_N] = {{
    {_rows(t.digit_rev, 16)}
}};

const sd_mel_index_t sd_mel_start[SD_N_MELS] = {{
    {_rows(starts, 16)}
}};

const sd_mel_index_t sd_mel_length[SD_N_MELS] = {{
    {_rows(lens, 16)}
}};

const uint16_t sd_mel_weights[SD_MEL_WEIGHTS] = {{
    {_rows(weights, 12)}
}};

const uint32_t sd_log_table[(1u << SD_LOG_TABLE_BITS) + 1u] = {{
    {_rows(t.log_table, 10)}
}};

const int16_t sd_noise_gain[SD_NOISE_TABLE_LEN] = {{
    {_rows(t.gain_table, 12)}
}};

const int16_t sd_band_gain[SD_N_MELS] = {{
    {_rows(gain, 12)}
}};

const int32_t sd_band_offset[SD_N_MELS] = {{
    {_rows(offset, 8)}
}};
"""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "sd_frontend_config.h").write_text(h)
    (out_dir / "sd_frontend_tables.c").write_text(c)
    table_bytes = (4 * len(window) + 4 * len(t.twiddle) + 4 * len(t.split) + (1 if rev_type == "uint8_t" else 2) * m
                   + 2 * mel_bytes * cfg.n_mels + 2 * len(weights) + 4 * len(t.log_table) + 2 * len(t.gain_table)
                   + 6 * cfg.n_mels)
    return {"version": 2, "mel_weights": int(len(weights)), "band_shift": int(shift), "table_bytes": int(table_bytes)}


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
        "REJECT_MARGIN": (scfg.reject_margin, "top-1 minus runner-up below this: rejected (sliding: of the averages)"),
        "SLIDE_STRIDE": (scfg.slide_stride, "sliding: the model runs every this many frames while the gate is open; "
                                            "0: one window per utterance"),
        "SMOOTH_WINDOWS": (scfg.smooth_windows, "sliding: outputs averaged over this many recent windows"),
        "DETECT_THRESHOLD": (scfg.detect_threshold, "sliding: the averaged top output must reach this (int8)"),
        "MIN_COUNT": (scfg.min_count, "sliding: windows in the average before a label fires (the last always can)"),
        "SUPPRESS_FRAMES": (scfg.suppress_frames, "sliding: frames after a label event with no other in the utterance"),
        "CLOSE_WAIT": (scfg.close_wait, "sliding: frames an ended utterance waits for its first window's end"),
        "LEVEL_FRAC_BITS": (S.LEVEL_FRAC_BITS, "bits below the leading one in a level"),
    }
    lines = ["/* generated by python -m convert.quantize from train/stream.py's StreamConfig",
             f" * stream config sha256 {scfg.sha256()}",
             " * Do not edit: regenerate with `python -m convert.firmware_gen` (or convert.quantize). */", "",
             "#ifndef SD_STREAM_CONFIG_H", "#define SD_STREAM_CONFIG_H", ""]
    for name, (v, doc) in fields.items():
        lines.append(f"#define SD_STREAM_{name} ({int(v)})  /* {doc} */" if v < 0 else
                     f"#define SD_STREAM_{name} {int(v)}  /* {doc} */")
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


def _c_string(text: str) -> str:
    """A C string literal of ``text``'s UTF-8 bytes: printable ASCII as is, the rest as 3-digit octal escapes."""
    out = []
    for b in text.encode("utf-8"):
        c = chr(b)
        out.append(c if 0x20 <= b < 0x7F and c not in '"\\?' else f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def generate_labels_h(labels, out_dir: Path) -> Path:
    """sd_labels.h: the model's label list (train/labels.py) as the firmware sees it.

    SD_LABEL_COUNT sizes the protocol's outputs; SD_LABELS_SHA256 is what INFO
    reports, so a host refuses a model folder whose list differs; SD_LABEL_NAMES
    is an initializer for a board that wants the names (a display, a log line);
    it costs nothing unless used.
    """
    from train.reject import REJECT_LABELS

    names = list(labels.names)
    mask = sum(1 << i for i, n in enumerate(names) if n not in REJECT_LABELS)
    lines = ["/* generated by python -m convert.quantize from the model folder's labels.json (train/labels.py)",
             f" * labels sha256 {labels.sha256()}",
             " * Do not edit: convert the model again. */", "",
             "#ifndef SD_LABELS_H", "#define SD_LABELS_H", "",
             f"#define SD_LABEL_COUNT {len(names)}  /* model outputs, one per label, in output order */",
             f'#define SD_LABELS_SHA256 "{labels.sha256()}"  /* SHA-256 of the names as canonical JSON */',
             f"#define SD_LABEL_REPORTABLE_MASK 0x{mask:X}u  /* bit i: label i is reported by the streaming mode "
             f"(not one of {', '.join(REJECT_LABELS)}: train/reject.py) */",
             "/* e.g. static const char *const names[SD_LABEL_COUNT] = SD_LABEL_NAMES; */",
             "#define SD_LABEL_NAMES { \\"]
    for i, n in enumerate(names):
        lines.append(f"    {_c_string(n)}{',' if i + 1 < len(names) else ''} \\")
    lines += ["}", "", "#endif /* SD_LABELS_H */", ""]
    path = Path(out_dir) / "sd_labels.h"
    path.write_text("\n".join(lines))
    return path


def generate_firmware_sources(tflite_path: Path, cfg: F.FrontendConfig, out_dir: Path, labels=None) -> dict:
    """Model graph, front-end tables and the label list into out_dir; deterministic for the same inputs.
    ``labels``: train.labels.Labels (default: FSDD's digits), one per model output."""
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
    from train.labels import Labels

    labels = labels or Labels()
    labels.check_outputs(int(np.prod(info.output_shape)), str(tflite_path))
    generate_labels_h(labels, Path(out_dir))
    keep = {k: v for k, v in model.items() if k in ("num_ops", "const_bytes", "arena_bytes", "macs", "ops_by_type", "lstm_ops", "head_ops")}
    return {"model": keep, "frontend": fe, "labels": {"count": len(labels), "sha256": labels.sha256()},
            "dir": str(out_dir)}


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
