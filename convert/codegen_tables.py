"""convert.codegen, part 2: every kernel parameter and table, computed exactly as
TensorFlow Lite Micro's Prepare() does (quantization multipliers, the
LOGISTIC/TANH tables through gemmlowp's fixed point, the FC weight packing).

Split out of convert/codegen.py (issue 22).
"""

from __future__ import annotations

import math

import numpy as np

from convert.codegen_read import CodegenError, schema

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


# ---------------------------------------------------------------------------
# TFLite's parameter arithmetic, reproduced exactly
# ---------------------------------------------------------------------------


def _round_away(x: float) -> float:
    """std::round / TfLiteRound: nearest integer, halves away from zero."""
    if x < 0:
        return -_round_away(-x)
    f = math.floor(x)
    return f + 1.0 if x - f >= 0.5 else f  # x - floor(x) is exact in binary64


def quantize_multiplier(real: float) -> tuple[int, int]:
    """tflite::QuantizeMultiplier (double rounding build): real -> (q31, shift)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = int(_round_away(q * float(1 << 31)))
    if q_fixed > (1 << 31):
        raise CodegenError(f"QuantizeMultiplier overflow for {real!r}")
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift = 0
        q_fixed = 0
    return q_fixed, shift


def _quantize_multiplier_smaller_than_one_exp(real: float) -> tuple[int, int]:
    if not 0.0 < real < 1.0:
        raise CodegenError(f"multiplier {real!r} outside (0, 1)")
    q, shift = quantize_multiplier(real)
    if shift > 0:
        raise CodegenError(f"multiplier {real!r} gives shift {shift} > 0")
    return q, shift


def _calculate_input_radius(input_integer_bits: int, input_left_shift: int,
                            total_signed_bits: int = 31) -> int:
    if input_left_shift < 0:
        raise CodegenError(f"input_left_shift {input_left_shift} < 0 (input scale too small)")
    v = (1.0 * ((1 << input_integer_bits) - 1) * float(1 << (total_signed_bits - input_integer_bits))
         / float(1 << input_left_shift))
    return int(math.floor(v))


def _f32(x) -> np.float32:
    return np.float32(x)


def _activation_range(code: int, scale: float, zero_point: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int8 (float32 arithmetic)."""
    qmin, qmax = -128, 127

    def q(f: float) -> int:
        tmp = _round_away(float(_f32(f) / _f32(scale)))
        return zero_point + int(tmp)

    A = schema.ActivationFunctionType
    if code == A.NONE:
        return qmin, qmax
    if code == A.RELU:
        return max(qmin, q(0.0)), qmax
    if code == A.RELU6:
        return max(qmin, q(0.0)), min(qmax, q(6.0))
    if code == A.RELU_N1_TO_1:
        return max(qmin, q(-1.0)), min(qmax, q(1.0))
    raise CodegenError(f"fused activation {code} not supported")


# ---------------------------------------------------------------------------
# gemmlowp fixed point in Python (for the LOGISTIC/TANH tables); mirrors
# firmware/src/kernels/sd_fixedpoint.c operation by operation.
# ---------------------------------------------------------------------------


def _wrap32(x: int) -> int:
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _srdhm(a: int, b: int) -> int:
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    n = ab + nudge
    q = abs(n) >> 31
    return q if n >= 0 else -q


def _rdbpot(x: int, e: int) -> int:
    mask = (1 << e) - 1
    rem = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if rem > threshold else 0)


def _mbqm(x: int, m: int, shift: int) -> int:
    left = shift if shift > 0 else 0
    right = 0 if shift > 0 else -shift
    return _rdbpot(_srdhm(_wrap32(x << left), m), right)


def _sat_shl(x: int, e: int) -> int:
    threshold = (1 << (31 - e)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return _wrap32(x << e)


_BARREL = (1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242)


def _exp_interval(a: int) -> int:
    c = 1895147668
    x = _wrap32(a + (1 << 28))
    x2 = _srdhm(x, x)
    x3 = _srdhm(x2, x)
    x4 = _srdhm(x2, x2)
    x4_4 = _rdbpot(x4, 2)
    poly = _rdbpot(_wrap32(_srdhm(_wrap32(x4_4 + x3), 715827883) + x2), 1)
    return _wrap32(c + _srdhm(c, _wrap32(x + poly)))


def _exp_on_negative_values(a: int, ib: int) -> int:
    fb = 31 - ib
    quarter = 1 << (fb - 2)
    amq = _wrap32((a & (quarter - 1)) - quarter)
    res = _exp_interval(_sat_shl(amq, ib) if ib > 0 else amq)
    rem = _wrap32(amq - a)
    for k, mult in enumerate(_BARREL):
        e = k - 2
        if ib > e and rem & (1 << (fb + e)):
            res = _srdhm(res, mult)
    if ib > 5 and a < -(1 << (36 - ib)):
        res = 0
    if a == 0:
        res = INT32_MAX
    return res


def _newton_q2(half_den: int) -> int:
    x = _wrap32(1515870810 + _srdhm(half_den, -1010580540))
    for _ in range(3):
        one_minus = _wrap32((1 << 29) - _srdhm(half_den, x))
        x = _wrap32(x + _sat_shl(_srdhm(x, one_minus), 2))
    return x


def _half_sum(a: int, b: int) -> int:
    s = a + b
    n = s + (1 if s >= 0 else -1)
    return abs(n) // 2 * (1 if n >= 0 else -1)


def _fixed_logistic(a: int, ib: int) -> int:
    if a == 0:
        return 1 << 30
    e = _exp_on_negative_values(-abs(a), ib)
    pos = _sat_shl(_newton_q2(_half_sum(e, INT32_MAX)), 1)
    return pos if a > 0 else INT32_MAX - pos


def _fixed_tanh(a: int, ib: int) -> int:
    if a == 0:
        return 0
    n = a if a < 0 else -a
    e = _exp_on_negative_values(n, ib + 1)
    t = _sat_shl(_wrap32(_newton_q2(_half_sum(e, INT32_MAX)) - (1 << 29)), 2)
    return -t if a < 0 else t


def _activation_params(scale: float, zero_point: int) -> dict:
    """CalculateArithmeticOpData for int8 LOGISTIC / TANH (TFLite Micro)."""
    real = float(scale) * float(1 << (31 - 4))
    q, shift = math.frexp(real)
    mult = int(_round_away(q * float(1 << 31)))
    if mult > INT32_MAX:
        raise CodegenError(f"activation multiplier overflow for scale {scale!r}")
    return {
        "input_zero_point": int(zero_point),
        "input_range_radius": _calculate_input_radius(4, shift, 31),
        "input_multiplier": mult,
        "input_left_shift": shift,
    }


def activation_lut(kind: str, scale: float, zero_point: int) -> np.ndarray:
    """The 256 int8 results of TFLite Micro's int8 LOGISTIC or TANH for an
    input of the given (float32) scale and zero point, indexed by the input
    byte (uint8 view of the int8 input)."""
    p = _activation_params(scale, zero_point)
    table = np.zeros(256, dtype=np.int8)
    for v in range(-128, 128):
        x = v - p["input_zero_point"]
        if x <= -p["input_range_radius"]:
            y = -128
        elif x >= p["input_range_radius"]:
            y = 127
        else:
            xq = _mbqm(x, p["input_multiplier"], p["input_left_shift"])
            if kind == "LOGISTIC":
                y = _rdbpot(_fixed_logistic(xq, 4), 23) - 128
            elif kind == "TANH":
                y = _rdbpot(_fixed_tanh(xq, 4), 24)
            else:
                raise ValueError(kind)
            y = max(-128, min(127, y))
        table[v & 0xFF] = y
    return table


# Version of the packed FULLY_CONNECTED weight layout below; the firmware's
# SD_FC_WEIGHT_LAYOUT (sd_kernels.h) must match it (src/sd_model.c checks).
FC_WEIGHT_LAYOUT = 2


def pack_fc_weights(w: np.ndarray) -> np.ndarray:
    """Packs an int8 [out, depth] FULLY_CONNECTED weight matrix into the
    uint32 words sd_fully_connected_s8 reads (layout in firmware/include/
    sd_kernels.h). Rows go in pairs (r, r') = (2p, 2p + 1), columns in groups
    of four (4g .. 4g + 3); one 16-bit lane per (row pair, column) holds
    w[r][c] + 128 in its low byte and w[r'][c] in its high byte. Word A of
    (p, g) has the lanes of columns 4g and 4g + 2, word B those of 4g + 1 and
    4g + 3 (low lane first). Row pairs go in groups of two, per column group
    A(2q), B(2q), A(2q + 1), B(2q + 1); an odd last pair alone, A, B. An odd
    output depth gets a zero row, a depth not a multiple of 4 zero columns.

    Returns uint32 [ceil(out / 2) * ceil(depth / 4) * 2]."""
    w = np.asarray(w, dtype=np.int64)
    out, depth = w.shape
    wp = np.zeros((out + (out & 1), -(-depth // 4) * 4), dtype=np.int64)
    wp[:out, :depth] = w
    lanes = (wp[0::2] + 128) | ((wp[1::2] & 0xFF) << 8)  # [pairs, cols], 16-bit lanes
    a = lanes[:, 0::4] | (lanes[:, 2::4] << 16)  # [pairs, groups]
    b = lanes[:, 1::4] | (lanes[:, 3::4] << 16)
    ab = np.stack([a, b], axis=2).astype(np.uint32)  # [pairs, groups, 2]
    pairs = ab.shape[0]
    parts = []
    for p in range(0, pairs, 2):
        if p + 1 < pairs:
            parts.append(np.concatenate([ab[p], ab[p + 1]], axis=1).reshape(-1))  # per group A B A' B'
        else:
            parts.append(ab[p].reshape(-1))
    return np.concatenate(parts)
