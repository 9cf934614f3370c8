"""Ahead-of-time compiler: full-integer int8 .tflite -> C graph for the firmware.

`generate_model_c` parses the flatbuffer, checks that every op has a kernel in
firmware/src/kernels/ and that no float tensor is left, computes every kernel
parameter exactly as TensorFlow Lite Micro's Prepare() does (same float/double
promotions, frexp-based QuantizeMultiplier with round-half-away-from-zero),
plans one static activation arena by tensor liveness, and writes

    <out_dir>/sd_model_graph.h   macros (sizes, quantization, SHA-256, arena)
    <out_dir>/sd_model_graph.c   const weights (each buffer once), node structs,
                                 the op table (types from firmware/include/sd_graph.h)

The output is a pure function of the .tflite bytes (and the options): no
timestamps, no absolute paths, stable ordering.

Command line: python -m convert.codegen MODEL.tflite [--out-dir firmware/generated]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import math
import os
import sys
from dataclasses import dataclass, field

import numpy as np

from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

__all__ = ["generate_model_c", "CodegenError", "quantize_multiplier", "activation_lut", "pack_fc_weights",
           "main"]

TOOL_NAME = "convert/codegen.py"
ARENA_ALIGNMENT = 16
INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1

_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
T_INT8 = schema.TensorType.INT8
T_INT32 = schema.TensorType.INT32

# Ops the LSTM stage ends with (see sd_model_cost_t): the last one of these
# closes the recurrent cell; everything after it is the head.
_CELL_OPS = {"LOGISTIC", "TANH", "MUL"}

# sd_op_type_t in firmware/include/sd_graph.h, in order.
OP_KINDS = ("SD_OP_FULLY_CONNECTED", "SD_OP_ADD", "SD_OP_MUL", "SD_OP_LOGISTIC", "SD_OP_TANH", "SD_OP_LUT",
            "SD_OP_SOFTMAX", "SD_OP_QUANTIZE", "SD_OP_RESHAPE", "SD_OP_SPLIT", "SD_OP_SPLIT_V", "SD_OP_UNPACK",
            "SD_OP_CONCATENATION", "SD_OP_STRIDED_SLICE", "SD_OP_COPY")


class CodegenError(ValueError):
    """The model cannot be compiled (unsupported op, float tensor, bad params)."""


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


# ---------------------------------------------------------------------------
# Model reading
# ---------------------------------------------------------------------------


@dataclass
class _Tensor:
    index: int
    name: str
    type: int
    shape: tuple
    scales: np.ndarray | None
    zero_points: np.ndarray | None
    data: np.ndarray | None  # raw bytes of a constant buffer (uint8) or None
    buffer: int

    @property
    def size(self) -> int:
        return int(np.prod(self.shape)) if len(self.shape) else 1

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def scale(self) -> float:
        if self.scales is None or len(self.scales) == 0:
            raise CodegenError(f"tensor {self.index} ({self.name}) has no quantization")
        return float(self.scales[0])

    @property
    def zero_point(self) -> int:
        if self.zero_points is None or len(self.zero_points) == 0:
            return 0
        return int(self.zero_points[0])

    def values(self) -> np.ndarray:
        if self.type == T_INT8:
            dt = np.int8
        elif self.type == T_INT32:
            dt = np.dtype("<i4")
        else:
            raise CodegenError(f"tensor {self.index}: constant of type {_TYPE_NAMES.get(self.type)}")
        return np.frombuffer(self.data.tobytes(), dtype=dt).reshape(self.shape)


@dataclass
class _Node:
    index: int         # .tflite operator index
    op: str            # builtin op name
    c_type: str        # SD_OP_*
    struct: str        # node struct type
    fields: str        # C initializer body for the node
    reads: list        # activation tensor ids read
    writes: list       # activation tensor ids written
    stage: int = 0
    deferred: list = field(default_factory=list)  # callbacks needing arena offsets
    # FULLY_CONNECTED: nodes with the same key (activation input, dims; an int16
    # bias or none) may run in one sd_fully_connected_s8_b16_shared call
    share_key: tuple | None = None


def _load(tflite_bytes: bytes):
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(tflite_bytes, 0))
    if len(model.subgraphs) != 1:
        raise CodegenError(f"expected 1 subgraph, found {len(model.subgraphs)}")
    g = model.subgraphs[0]
    tensors = []
    for i, t in enumerate(g.tensors):
        q = t.quantization
        scales = None if q is None or q.scale is None else np.asarray(q.scale, dtype=np.float32)
        zps = None if q is None or q.zeroPoint is None else np.asarray(q.zeroPoint, dtype=np.int64)
        buf = model.buffers[t.buffer] if t.buffer < len(model.buffers) else None
        data = None
        if buf is not None:
            if getattr(buf, "offset", 0) and buf.offset > 1:
                raise CodegenError(f"tensor {i}: buffers outside the flatbuffer are not supported")
            if buf.data is not None and len(buf.data) > 0:
                data = np.asarray(buf.data, dtype=np.uint8)
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
        name = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
        tensors.append(_Tensor(i, name, t.type, shape, scales, zps, data, t.buffer))
    ops = []
    for i, op in enumerate(g.operators or []):
        oc = model.operatorCodes[op.opcodeIndex]
        code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
        name = _OP_NAMES.get(code, f"CODE_{code}")
        if code == schema.BuiltinOperator.CUSTOM:
            cc = oc.customCode.decode() if isinstance(oc.customCode, bytes) else oc.customCode
            name = f"CUSTOM({cc})"
        ins = [int(x) for x in (op.inputs if op.inputs is not None else [])]
        outs = [int(x) for x in (op.outputs if op.outputs is not None else [])]
        ops.append((i, name, ins, outs, op.builtinOptions))
    return model, g, tensors, ops


# ---------------------------------------------------------------------------
# C emission helpers
# ---------------------------------------------------------------------------


def _c_array(ctype: str, name: str, values, per_line: int = 24, align: bool = False) -> str:
    vals = [int(v) for v in np.asarray(values).reshape(-1).tolist()]
    fmt = (lambda v: f"0x{v:08x}u") if ctype == "uint32_t" else str  # noqa: E731
    if ctype == "uint32_t":
        per_line = min(per_line, 8)
    lines = []
    for i in range(0, len(vals), per_line):
        lines.append("    " + ", ".join(fmt(v) for v in vals[i:i + per_line]) + ",")
    attr = " SD_GRAPH_ALIGN16" if align else ""
    return f"static const {ctype} {name}[{len(vals)}]{attr} = {{\n" + "\n".join(lines) + "\n};\n"


def _c_float(x: float) -> str:
    s = f"{float(np.float32(x)):.9g}"
    if "e" not in s and "." not in s:
        s += ".0"
    return s + "f"


class _Emitter:
    """Collects deduplicated constant arrays."""

    def __init__(self):
        self.decls: list[str] = []
        self._by_key: dict = {}
        self.const_bytes = 0

    def array(self, ctype: str, prefix: str, values: np.ndarray, key=None, align=False) -> str:
        arr = np.ascontiguousarray(values)
        k = (ctype, key) if key is not None else (ctype, arr.dtype.str, arr.tobytes())
        if k in self._by_key:
            return self._by_key[k]
        name = f"{prefix}{len(self._by_key)}"
        self._by_key[k] = name
        self.decls.append(_c_array(ctype, name, arr, align=align))
        self.const_bytes += arr.size * arr.itemsize
        return name

    def raw(self, text: str) -> None:
        self.decls.append(text)


# ---------------------------------------------------------------------------
# Op lowering
# ---------------------------------------------------------------------------


class _Lowering:
    def __init__(self, tensors, ops, emitter: _Emitter, activation_luts: bool, fc_bias16: bool = True):
        self.t = tensors
        self.fc_bias16 = fc_bias16
        self.ops = ops
        self.em = emitter
        self.luts = activation_luts
        self.counter = 0
        # Shared tables of the compact graph (index = position).
        self.consts: list[str] = []      # const int8 arrays read as activations
        self.fc_matrices: list[str] = [] # "{ weights, depth, out_depth }"
        self.fc_params: list[str] = []   # sd_fc_param_t initializers
        self.add_params: list[str] = []  # sd_add_param_t initializers
        self.mul_params: list[str] = []  # sd_mul_param_t initializers
        self.fc_biases: list[str] = []   # effective bias array names (int32)
        self.fc_biases16: list[str] = [] # effective bias array names (int16)
        self.fc_channels: list[str] = [] # "{ multipliers, shifts }"
        self.bcasts: list[str] = []      # sd_broadcast_t initializers
        self.lut_tables: list[np.ndarray] = []
        self._lut_index: dict = {}

    # -- helpers ----------------------------------------------------------
    def _err(self, idx, op, msg):
        return CodegenError(f"op {idx} ({op}): {msg}")

    def act(self, tid) -> str:
        """C expression for an int8 tensor buffer (arena placeholder or const)."""
        t = self.t[tid]
        if t.is_const:
            if t.type != T_INT8:
                raise CodegenError(f"tensor {tid} used as int8 data has type {_TYPE_NAMES.get(t.type)}")
            return self.em.array("int8_t", "sd_const_s8_", t.values(), key=("buf", t.buffer))
        return f"@ARENA{tid}@"

    def ref(self, tid) -> str:
        """sd_ref_t for an int8 tensor: arena offset placeholder, or
        SD_REF_CONST | index into the graph's table of constant arrays."""
        t = self.t[tid]
        if t.is_const:
            name = self.act(tid)
            if name not in self.consts:
                self.consts.append(name)
            return f"0x{0x8000 | self.consts.index(name):04x}u"
        return f"@REF{tid}@"

    @staticmethod
    def _index(table: list, item: str, limit: int = 255) -> int:
        if item not in table:
            table.append(item)
        i = table.index(item)
        if i >= limit:
            raise CodegenError(f"more than {limit} distinct entries in a graph table")
        return i

    def _check_int8(self, idx, op, tids):
        for tid in tids:
            if tid < 0:
                continue
            t = self.t[tid]
            if t.type != T_INT8:
                raise self._err(idx, op, f"tensor {tid} ({t.name}) is {_TYPE_NAMES.get(t.type)}, "
                                         "only int8 activations are supported")

    def _const_int(self, idx, op, tid) -> np.ndarray:
        t = self.t[tid]
        if not t.is_const or t.type != T_INT32:
            raise self._err(idx, op, f"tensor {tid} must be a constant int32")
        return t.values().astype(np.int64)

    def _name(self, prefix):
        self.counter += 1
        return f"{prefix}{self.counter}"

    # -- per op -------------------------------------------------------------
    def lower(self, idx, op, ins, outs, opts) -> _Node:
        fn = getattr(self, "_op_" + op.lower().replace("(", "_").replace(")", ""), None)
        if op in ("QUANTIZE", "DEQUANTIZE"):
            for tid in ins + outs:
                if tid >= 0 and self.t[tid].type not in (T_INT8,):
                    raise self._err(idx, op, "float island: the conversion left a "
                                             f"{_TYPE_NAMES.get(self.t[tid].type)} tensor ({self.t[tid].name}); "
                                             "re-convert the model (full-integer int8 expected)")
        if fn is None:
            raise self._err(idx, op, "no int8 kernel for this op")
        for tid in ins + outs:
            if tid >= 0 and self.t[tid].type not in (T_INT8, T_INT32):
                raise self._err(idx, op, f"tensor {tid} ({self.t[tid].name}) is "
                                         f"{_TYPE_NAMES.get(self.t[tid].type)}: float tensors are not supported")
            if tid >= 0 and self.t[tid].type == T_INT32 and not self.t[tid].is_const:
                raise self._err(idx, op, f"tensor {tid} ({self.t[tid].name}) is a non-constant int32 tensor")
        return fn(idx, op, ins, outs, opts)

    def _size16(self, idx, op, tid) -> int:
        n = self.t[tid].size
        if n > 0xFFFF:
            raise self._err(idx, op, f"tensor of {n} elements (the compact graph holds sizes up to 65535)")
        return n

    def _node(self, idx, op, c_type, struct, fields, reads, writes):
        return _Node(idx, op, c_type, struct, fields, [r for r in reads if r >= 0 and not self.t[r].is_const],
                     list(writes))

    def _op_fully_connected(self, idx, op, ins, outs, opts):
        x, w, b = ins[0], ins[1], (ins[2] if len(ins) > 2 else -1)
        y = outs[0]
        self._check_int8(idx, op, [x, y])
        tw = self.t[w]
        if not tw.is_const or tw.type != T_INT8 or len(tw.shape) != 2:
            raise self._err(idx, op, "weights must be a constant int8 [out, in] matrix")
        if getattr(opts, "weightsFormat", 0) != 0:
            raise self._err(idx, op, "shuffled weights format not supported")
        if tw.zero_points is not None and np.any(tw.zero_points != 0):
            raise self._err(idx, op, "weights must be symmetric (zero point 0)")
        out_depth, depth = tw.shape
        tx, ty = self.t[x], self.t[y]
        if tx.size % depth or ty.size != (tx.size // depth) * out_depth:
            raise self._err(idx, op, f"shapes {tx.shape} x {tw.shape} -> {ty.shape} inconsistent")
        batches = tx.size // depth
        wv = tw.values()
        per_channel = tw.scales is not None and len(tw.scales) > 1
        if per_channel:
            if len(tw.scales) != out_depth:
                raise self._err(idx, op, "per-channel scales do not match output depth")
            mults, shifts = [], []
            for s in tw.scales:
                real = float(tx.scale) * float(s) / float(ty.scale)
                m, sh = quantize_multiplier(real)
                mults.append(m)
                shifts.append(sh)
        else:
            prod = float(_f32(tx.scale) * _f32(tw.scale))  # float product, then double
            m, sh = quantize_multiplier(prod / float(ty.scale))
            mults, shifts = [m], [sh]
        if any(s < -31 or s > 30 for s in shifts):
            raise self._err(idx, op, f"shift out of range: {shifts}")
        if per_channel:
            mult_name = self.em.array("int32_t", "sd_mult_", np.array(mults, dtype=np.int32))
            shift_name = self.em.array("int8_t", "sd_shift_", np.array(shifts, dtype=np.int8))
        w_name = self.em.array("uint32_t", "sd_weights_", pack_fc_weights(wv), key=("packed", tw.buffer),
                               align=True)
        # Effective bias: bias + input_offset * row sum, wrapped to int32 (the
        # kernel's accumulator starts from it; same int32 as TFLite's).
        eff = (-tx.zero_point) * wv.astype(np.int64).sum(axis=1)
        bkey = -1
        if b >= 0:
            tb = self.t[b]
            if not tb.is_const or tb.type != T_INT32 or tb.size != out_depth:
                raise self._err(idx, op, "bias must be a constant int32 vector [out]")
            eff = eff + tb.values().astype(np.int64).reshape(-1)
            bkey = tb.buffer
        eff = ((eff + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)
        # int16 when every value fits (half the flash; same accumulator)
        bias16 = self.fc_bias16 and bool(np.all((eff >= -32768) & (eff <= 32767)))
        if np.any(eff != 0):
            if bias16:
                bias_name = self.em.array("int16_t", "sd_bias_", eff.astype(np.int16),
                                          key=("effbias16", tw.buffer, bkey, -tx.zero_point), align=True)
            else:
                bias_name = self.em.array("int32_t", "sd_bias_", eff,
                                          key=("effbias", tw.buffer, bkey, -tx.zero_point))
        elif self.fc_bias16:
            # No bias at all (no bias tensor and input zero point 0, as an LSTM's recurrent FCs can have): one
            # shared int16 zero vector per output depth keeps the op on the kernel's fast path (quad_block needs
            # an int16 bias), for 2 bytes per row of flash.
            bias_name = self.em.array("int16_t", "sd_bias_", np.zeros(out_depth, np.int16),
                                      key=("zerobias16", out_depth), align=True)
            bias16 = True
        else:
            bias_name = "0"
            bias16 = False
        amin, amax = _activation_range(opts.fusedActivationFunction, ty.scale, ty.zero_point)
        if batches > 0xFFFF or depth > 0xFFFF or out_depth > 0xFFFF:
            raise self._err(idx, op, "dimension above 65535")
        mat = self._index(self.fc_matrices, f"{{ {w_name}, {depth}, {out_depth} }}")
        bias_i = 255 if bias_name == "0" else self._index(self.fc_biases16 if bias16 else self.fc_biases, bias_name)
        if per_channel:
            mult_c = self._index(self.fc_channels, f"{{ {mult_name}, {shift_name} }}")
            shift_c = 0
        else:
            mult_c, shift_c = mults[0], shifts[0]
        param = self._index(self.fc_params, f"{{ {mult_c}, {batches}, {mat}, {bias_i}, {shift_c}, "
                                              f"{ty.zero_point}, {amin}, {amax}, {int(per_channel)}, {int(bias16)} }}")
        fields = f"{self.ref(x)}, {self.ref(y)}, {param}"  # + ", shared" at emission
        node = self._node(idx, op, "SD_OP_FULLY_CONNECTED", "sd_fc_node_t", fields, [x], [y])
        node.macs = batches * depth * out_depth
        if not tx.is_const and (bias16 or bias_name == "0"):
            node.share_key = (x, batches, depth, out_depth)
        return node

    def _bcast(self, idx, op, a, b, y):
        ta, tb, ty = self.t[a], self.t[b], self.t[y]
        if ta.size == ty.size and tb.size == ty.size:
            return "255"
        shapes = [list(ta.shape), list(tb.shape), list(ty.shape)]
        if max(len(s) for s in shapes) > 4:
            raise self._err(idx, op, "broadcast beyond 4 dimensions")
        shapes = [[1] * (4 - len(s)) + s for s in shapes]
        sa, sb, so = shapes

        def strides(s):
            st = [0] * 4
            acc = 1
            for d in range(3, -1, -1):
                st[d] = acc if s[d] != 1 else 0
                if s[d] != so[d] and s[d] != 1:
                    raise self._err(idx, op, f"cannot broadcast {s} to {so}")
                acc *= s[d]
            return st

        init = (f"{{ {{ {', '.join(map(str, so))} }}, "
                f"{{ {', '.join(map(str, strides(sa)))} }}, {{ {', '.join(map(str, strides(sb)))} }} }}")
        return str(self._index(self.bcasts, init))

    def _op_add(self, idx, op, ins, outs, opts):
        a, b, y = ins[0], ins[1], outs[0]
        self._check_int8(idx, op, [a, b, y])
        ta, tb, ty = self.t[a], self.t[b], self.t[y]
        left_shift = 20
        twice_max = 2.0 * float(max(_f32(ta.scale), _f32(tb.scale)))
        m1, s1 = _quantize_multiplier_smaller_than_one_exp(float(ta.scale) / twice_max)
        m2, s2 = _quantize_multiplier_smaller_than_one_exp(float(tb.scale) / twice_max)
        mo, so = _quantize_multiplier_smaller_than_one_exp(
            twice_max / (float(1 << left_shift) * float(ty.scale)))
        amin, amax = _activation_range(opts.fusedActivationFunction, ty.scale, ty.zero_point)
        param = self._index(self.add_params, (
            f"{{ {{ {-ta.zero_point}, {-tb.zero_point}, {left_shift}, {m1}, {s1}, {m2}, {s2}, {mo}, {so}, "
            f"{ty.zero_point}, {amin}, {amax} }}, {self._size16(idx, op, y)}, {self._bcast(idx, op, a, b, y)} }}"))
        fields = f"{self.ref(a)}, {self.ref(b)}, {self.ref(y)}, {param}"
        return self._node(idx, op, "SD_OP_ADD", "sd_add_node_t", fields, [a, b], [y])

    def _op_mul(self, idx, op, ins, outs, opts):
        a, b, y = ins[0], ins[1], outs[0]
        self._check_int8(idx, op, [a, b, y])
        ta, tb, ty = self.t[a], self.t[b], self.t[y]
        real = float(ta.scale) * float(tb.scale) / float(ty.scale)
        m, s = quantize_multiplier(real)
        amin, amax = _activation_range(opts.fusedActivationFunction, ty.scale, ty.zero_point)
        param = self._index(self.mul_params, (
            f"{{ {{ {-ta.zero_point}, {-tb.zero_point}, {ty.zero_point}, {m}, {s}, {amin}, {amax} }}, "
            f"{self._size16(idx, op, y)}, {self._bcast(idx, op, a, b, y)} }}"))
        fields = f"{self.ref(a)}, {self.ref(b)}, {self.ref(y)}, {param}"
        return self._node(idx, op, "SD_OP_MUL", "sd_mul_node_t", fields, [a, b], [y])

    def _unary_activation(self, idx, op, ins, outs, kind):
        x, y = ins[0], outs[0]
        self._check_int8(idx, op, [x, y])
        tx, ty = self.t[x], self.t[y]
        want = (1.0 / 256, -128) if kind == "LOGISTIC" else (1.0 / 128, 0)
        if kind == "LOGISTIC" and ty.zero_point != -128:
            raise self._err(idx, op, f"output zero point {ty.zero_point}, TFLite Micro requires -128")
        if abs(ty.scale - want[0]) > 1e-9 or ty.zero_point != want[1]:
            raise self._err(idx, op, f"output quantization ({ty.scale}, {ty.zero_point}) != {want}")
        if tx.size != ty.size:
            raise self._err(idx, op, "input and output sizes differ")
        if self.luts:
            table = activation_lut(kind, tx.scale, tx.zero_point)
            key = table.tobytes()
            if key not in self._lut_index:
                self._lut_index[key] = len(self.lut_tables)
                self.lut_tables.append(table)
                self.em.const_bytes += 256
            if self._lut_index[key] > 0xFFFF:
                raise self._err(idx, op, "too many tables")
            fields = f"{self.ref(x)}, {self.ref(y)}, {self._size16(idx, op, y)}, {self._lut_index[key]}"
            return self._node(idx, op, "SD_OP_LUT", "sd_lut_node_t", fields, [x], [y])
        p = _activation_params(tx.scale, tx.zero_point)
        fields = (f"{{ {p['input_zero_point']}, {p['input_range_radius']}, {p['input_multiplier']}, "
                  f"{p['input_left_shift']} }}, {self.act(x)}, {self.act(y)}, {ty.size}")
        return self._node(idx, op, "SD_OP_" + kind, "sd_activation_node_t", fields, [x], [y])

    def _op_logistic(self, idx, op, ins, outs, opts):
        return self._unary_activation(idx, op, ins, outs, "LOGISTIC")

    def _op_tanh(self, idx, op, ins, outs, opts):
        return self._unary_activation(idx, op, ins, outs, "TANH")

    def _op_softmax(self, idx, op, ins, outs, opts):
        x, y = ins[0], outs[0]
        self._check_int8(idx, op, [x, y])
        tx, ty = self.t[x], self.t[y]
        if ty.zero_point != -128 or float(ty.scale) != float(_f32(1.0 / 256)):
            raise self._err(idx, op, "int8 softmax output must have scale 1/256 and zero point -128")
        beta = float(_f32(opts.beta))
        real = min(beta * float(tx.scale) * float(1 << (31 - 5)), float((1 << 31) - 1))
        if not real > 1.0:
            raise self._err(idx, op, f"softmax input multiplier {real!r} <= 1")
        m, s = quantize_multiplier(real)
        if s < 0:
            raise self._err(idx, op, "softmax left shift < 0")
        diff_min = int(-1.0 * _calculate_input_radius(5, s, 31))
        depth = tx.shape[-1] if tx.shape else 1
        rows = tx.size // depth
        fields = f"{{ {m}, {s}, {diff_min} }}, {self.act(x)}, {self.act(y)}, {rows}, {depth}"
        return self._node(idx, op, "SD_OP_SOFTMAX", "sd_softmax_node_t", fields, [x], [y])

    def _op_quantize(self, idx, op, ins, outs, opts):
        x, y = ins[0], outs[0]
        self._check_int8(idx, op, [x, y])
        tx, ty = self.t[x], self.t[y]
        m, s = quantize_multiplier(float(tx.scale) / float(ty.scale))
        fields = f"{{ {tx.zero_point}, {ty.zero_point}, {m}, {s} }}, {self.act(x)}, {self.act(y)}, {ty.size}"
        return self._node(idx, op, "SD_OP_QUANTIZE", "sd_quantize_node_t", fields, [x], [y])

    def _op_dequantize(self, idx, op, ins, outs, opts):
        raise self._err(idx, op, "no int8 kernel for this op")

    def _op_reshape(self, idx, op, ins, outs, opts):
        x, y = ins[0], outs[0]
        self._check_int8(idx, op, [x, y])
        if self.t[x].size != self.t[y].size:
            raise self._err(idx, op, "reshape changes the element count")
        fields = f"{self.act(x)}, {self.act(y)}, {self.t[y].size}"
        return self._node(idx, op, "SD_OP_RESHAPE", "sd_reshape_node_t", fields, [x], [y])

    def _op_squeeze(self, idx, op, ins, outs, opts):
        return self._op_reshape(idx, op, ins[:1], outs, opts)

    def _op_expand_dims(self, idx, op, ins, outs, opts):
        return self._op_reshape(idx, op, ins[:1], outs, opts)

    def _outputs_array(self, outs):
        name = self._name("sd_outs_")
        items = ", ".join(self.act(o) for o in outs)
        self.em.raw(f"static int8_t *const {name}[{len(outs)}] = {{ {items} }};\n")
        return name

    def _split_common(self, idx, op, x, outs, axis, sizes, c_type):
        self._check_int8(idx, op, [x] + outs)
        tx = self.t[x]
        rank = len(tx.shape)
        if axis < 0:
            axis += rank
        if not 0 <= axis < rank:
            raise self._err(idx, op, f"axis {axis} out of range")
        outer = int(np.prod(tx.shape[:axis])) if axis else 1
        inner = int(np.prod(tx.shape[axis + 1:])) if axis + 1 < rank else 1
        if sum(sizes) != tx.shape[axis]:
            raise self._err(idx, op, f"split sizes {sizes} do not add up to {tx.shape[axis]}")
        outs_name = self._outputs_array(outs)
        if c_type == "SD_OP_SPLIT":
            sizes_c, axis_size = "0", sizes[0]
        else:
            sizes_c, axis_size = self.em.array("int32_t", "sd_sizes_", np.array(sizes, dtype=np.int32)), 0
        fields = (f"{{ {outer}, {inner}, {len(outs)}, {sizes_c}, {axis_size} }}, {self.act(x)}, {outs_name}")
        return self._node(idx, op, c_type, "sd_split_node_t", fields, [x], outs)

    def _op_split(self, idx, op, ins, outs, opts):
        axis = int(self._const_int(idx, op, ins[0]).reshape(-1)[0])
        x = ins[1]
        n = len(outs)
        rank = len(self.t[x].shape)
        ax = axis + rank if axis < 0 else axis
        dim = self.t[x].shape[ax]
        if dim % n:
            raise self._err(idx, op, f"{dim} not divisible into {n}")
        return self._split_common(idx, op, x, outs, axis, [dim // n] * n, "SD_OP_SPLIT")

    def _op_split_v(self, idx, op, ins, outs, opts):
        x = ins[0]
        sizes = [int(v) for v in self._const_int(idx, op, ins[1]).reshape(-1)]
        axis = int(self._const_int(idx, op, ins[2]).reshape(-1)[0])
        rank = len(self.t[x].shape)
        ax = axis + rank if axis < 0 else axis
        if sizes.count(-1) == 1:
            sizes[sizes.index(-1)] = self.t[x].shape[ax] - (sum(sizes) + 1)
        return self._split_common(idx, op, x, outs, axis, sizes, "SD_OP_SPLIT_V")

    def _op_unpack(self, idx, op, ins, outs, opts):
        x = ins[0]
        self._check_int8(idx, op, [x] + outs)
        tx = self.t[x]
        rank = len(tx.shape)
        axis = opts.axis + rank if opts.axis < 0 else opts.axis
        num = tx.shape[axis]
        if num != len(outs):
            raise self._err(idx, op, "output count does not match the axis extent")
        outer = int(np.prod(tx.shape[:axis])) if axis else 1
        inner = int(np.prod(tx.shape[axis + 1:])) if axis + 1 < rank else 1
        outs_name = self._outputs_array(outs)
        fields = f"{{ {outer}, {num}, {inner} }}, {self.act(x)}, {outs_name}"
        return self._node(idx, op, "SD_OP_UNPACK", "sd_unpack_node_t", fields, [x], outs)

    def _op_concatenation(self, idx, op, ins, outs, opts):
        y = outs[0]
        self._check_int8(idx, op, ins + [y])
        ty = self.t[y]
        if opts.fusedActivationFunction != 0:
            raise self._err(idx, op, "fused activation on concatenation not supported")
        for i in ins:
            ti = self.t[i]
            if float(ti.scale) != float(ty.scale) or ti.zero_point != ty.zero_point:
                raise self._err(idx, op, f"input {i} quantized differently from the output "
                                         "(requantizing concatenation not supported)")
        rank = len(ty.shape)
        axis = opts.axis + rank if opts.axis < 0 else opts.axis
        outer = int(np.prod(ty.shape[:axis])) if axis else 1
        inner = int(np.prod(ty.shape[axis + 1:])) if axis + 1 < rank else 1
        sizes = [self.t[i].shape[axis] if len(self.t[i].shape) == rank else self.t[i].size // (outer * inner)
                 for i in ins]
        sizes_name = self.em.array("int32_t", "sd_sizes_", np.array(sizes, dtype=np.int32))
        name = self._name("sd_ins_")
        self.em.raw(f"static const int8_t *const {name}[{len(ins)}] = {{ "
                    + ", ".join(self.act(i) for i in ins) + " };\n")
        fields = f"{{ {outer}, {inner}, {len(ins)}, {sizes_name} }}, {name}, {self.act(y)}"
        return self._node(idx, op, "SD_OP_CONCATENATION", "sd_concatenation_node_t", fields, ins, [y])

    def _op_strided_slice(self, idx, op, ins, outs, opts):
        x, y = ins[0], outs[0]
        self._check_int8(idx, op, [x, y])
        tx, ty = self.t[x], self.t[y]
        begin = [int(v) for v in self._const_int(idx, op, ins[1]).reshape(-1)]
        end = [int(v) for v in self._const_int(idx, op, ins[2]).reshape(-1)]
        strides = [int(v) for v in self._const_int(idx, op, ins[3]).reshape(-1)]
        if opts.ellipsisMask or opts.newAxisMask or getattr(opts, "offset", False):
            raise self._err(idx, op, "ellipsis / new-axis / offset strided slices are not supported")
        rank = len(tx.shape)
        if rank > 4 or len(begin) != rank:
            raise self._err(idx, op, "only slices that name every dimension (rank <= 4) are supported")
        b_res, s_res, n_res = [], [], []
        for d in range(rank):
            dim, st = tx.shape[d], strides[d]
            if st == 0:
                raise self._err(idx, op, "stride 0")
            shrink = (opts.shrinkAxisMask >> d) & 1
            if (opts.beginMask >> d) & 1 and not shrink:
                b = 0 if st > 0 else dim - 1
            else:
                b = begin[d] + dim if begin[d] < 0 else begin[d]
                b = min(max(b, 0), dim) if st > 0 else min(max(b, -1), dim - 1)
            if shrink:
                e = b + 1
                if st < 0:
                    raise self._err(idx, op, "negative stride on a shrunk axis")
            elif (opts.endMask >> d) & 1:
                e = dim if st > 0 else -1
            else:
                e = end[d] + dim if end[d] < 0 else end[d]
                e = min(max(e, 0), dim) if st > 0 else min(max(e, -1), dim - 1)
            n = max(0, -(-(e - b) // st)) if st > 0 else max(0, -(-(b - e) // -st))
            if n == 0:
                raise self._err(idx, op, "empty slice")
            b_res.append(b)
            s_res.append(st)
            n_res.append(n)
        if int(np.prod(n_res)) != ty.size:
            raise self._err(idx, op, f"resolved slice {n_res} does not match output {ty.shape}")
        pad = 4 - rank
        in_dims = [1] * pad + list(tx.shape)
        b_res = [0] * pad + b_res
        s_res = [1] * pad + s_res
        n_res = [1] * pad + n_res
        # A slice whose elements are one contiguous run of a non-constant input
        # (an unrolled LSTM's per-step frame) is a plain copy from an offset.
        flat = np.arange(int(np.prod(in_dims)), dtype=np.int64).reshape(in_dims)
        picked = flat[np.ix_(*[b + s * np.arange(n) for b, s, n in zip(b_res, s_res, n_res)])].reshape(-1)
        start = int(picked[0])
        if not tx.is_const and np.array_equal(picked, np.arange(start, start + picked.size)):
            fields = f"@REF{x}+{start}@, {self.ref(y)}, {self._size16(idx, op, y)}"
            return self._node(idx, op, "SD_OP_COPY", "sd_copy_node_t", fields, [x], [y])
        f = lambda v: "{ " + ", ".join(map(str, v)) + " }"  # noqa: E731
        if max(in_dims + n_res) > 0x7FFF or min(s_res) < -0x8000 or max(s_res) > 0x7FFF:
            raise self._err(idx, op, "slice dimension above 32767")
        fields = f"{f(in_dims)}, {f(b_res)}, {f(s_res)}, {f(n_res)}, {self.ref(x)}, {self.ref(y)}"
        return self._node(idx, op, "SD_OP_STRIDED_SLICE", "sd_strided_slice_node_t", fields, [x], [y])


# ---------------------------------------------------------------------------
# Memory planning
# ---------------------------------------------------------------------------


FC_SHARED_MAX = 4  # SD_FC_SHARED_MAX in firmware/include/sd_kernels.h


def _share_fc_inputs(nodes: list, limit: int = FC_SHARED_MAX) -> list:
    """The op table's entries, in order: a list of nodes each. A
    FULLY_CONNECTED node takes along up to limit - 1 later FULLY_CONNECTED
    nodes with its share_key (the same activation input, the same dims, an
    int16 bias or none: an LSTM step's gate FCs on x_t, or on h_{t-1}); they
    are hoisted to its place and run in one sd_fully_connected_s8_b16_shared
    call. Hoisting is legal: such a node reads nothing but that input (already
    there) and constants, and its output is written by it alone (one producer
    per tensor) and read only after it. Every other node is an entry alone."""
    entries, taken = [], set()
    for k, n in enumerate(nodes):
        if k in taken:
            continue
        entry = [n]
        if n.share_key is not None:
            for j in range(k + 1, len(nodes)):
                if len(entry) >= limit:
                    break
                if j not in taken and nodes[j].share_key == n.share_key:
                    entry.append(nodes[j])
                    taken.add(j)
        entries.append(entry)
    return entries


def _plan_arena(sizes: dict, first: dict, last: dict, alignment: int = ARENA_ALIGNMENT):
    """Greedy placement (largest first, ties by tensor id): each tensor goes to
    the lowest aligned offset that does not collide with an already placed
    tensor whose lifetime [first, last] overlaps its own."""
    order = sorted(sizes, key=lambda t: (-sizes[t], t))
    placed: list[tuple[int, int, int]] = []  # (offset, end, tid)
    offsets = {}
    for tid in order:
        size = sizes[tid]
        conflicts = sorted((o, e) for (o, e, u) in placed if first[u] <= last[tid] and first[tid] <= last[u])
        off = 0
        for o, e in conflicts:
            if off + size <= o:
                break
            if e > off:
                off = (e + alignment - 1) // alignment * alignment
        offsets[tid] = off
        placed.append((off, off + size, tid))
    total = max((e for (_, e, _) in placed), default=0)
    total = (total + alignment - 1) // alignment * alignment
    return offsets, max(total, alignment)


# ---------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------


def _version(pkg: str) -> str:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def generate_model_c(tflite_path, out_dir, *, model_sha256: str | None = None,
                     activation_luts: bool = True, fc_bias16: bool = True,
                     fc_share: int = FC_SHARED_MAX) -> dict:
    """Compile a full-integer int8 .tflite into firmware/generated C sources.

    Parameters
    ----------
    tflite_path : str or PathLike
        The converted model (one subgraph, int8 in/out, batch 1).
    out_dir : str or PathLike
        Directory that receives sd_model_graph.h and sd_model_graph.c
        (created if missing; both files are overwritten).
    model_sha256 : str, optional
        Expected SHA-256 (hex) of the .tflite bytes. ``None`` means compute it
        and trust the file; otherwise a mismatch raises CodegenError.
    activation_luts : bool
        True (default): LOGISTIC and TANH become 256-entry tables computed here
        with the exact fixed-point arithmetic of the int8 reference kernels
        (fast on the target, 256 bytes of flash per distinct input
        quantization). False: call sd_logistic_s8 / sd_tanh_s8 at run time.
    fc_bias16 : bool
        True (default): a FULLY_CONNECTED effective bias whose values all fit
        int16 is stored as int16 (half the flash; sd_fully_connected_s8_b16,
        same outputs); the others stay int32. False: every bias int32.
    fc_share : int
        At most this many FULLY_CONNECTED ops on the same input (same dims,
        int16 bias or none) run as one op table entry, in one
        sd_fully_connected_s8_b16_shared call (default 4, the gates of an LSTM
        step; 1 = every op alone). Later ones are moved up to the first one
        (a pure data-flow reordering: the same outputs).

    Returns
    -------
    dict with keys ``ops_by_type`` (tflite op name -> count), ``num_ops``,
    ``const_bytes`` (bytes of const arrays emitted), ``arena_bytes``,
    ``macs`` (FULLY_CONNECTED multiply-accumulates), ``op_entries`` (op table
    entries: ops, less the shared FULLY_CONNECTED ops after the first of each call), ``sha256``,
    ``input_shape``, ``output_shape``, ``files``.

    Raises
    ------
    CodegenError
        An op without a kernel (named with its index), a float tensor or a
        float island (QUANTIZE/DEQUANTIZE around float tensors), or
        parameters outside what the kernels accept.
    """
    with open(tflite_path, "rb") as f:
        data = f.read()
    sha = hashlib.sha256(data).hexdigest()
    if model_sha256 is not None and model_sha256.lower() != sha:
        raise CodegenError(f"model SHA-256 is {sha}, expected {model_sha256}")

    model, g, tensors, ops = _load(data)
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise CodegenError(f"expected 1 input and 1 output, got {len(g.inputs)} and {len(g.outputs)}")
    in_t, out_t = tensors[int(g.inputs[0])], tensors[int(g.outputs[0])]
    for t, what in ((in_t, "input"), (out_t, "output")):
        if t.type != T_INT8:
            raise CodegenError(f"model {what} tensor {t.index} is {_TYPE_NAMES.get(t.type)}, expected INT8")

    em = _Emitter()
    low = _Lowering(tensors, ops, em, activation_luts, fc_bias16)
    nodes = [low.lower(i, name, ins, outs, opts) for (i, name, ins, outs, opts) in ops]
    # op table entries (shared FULLY_CONNECTED calls), and the nodes in that order
    entries = _share_fc_inputs(nodes, min(FC_SHARED_MAX, max(1, int(fc_share))))
    order = [n for e in entries for n in e]

    # Stages: everything up to the last LOGISTIC/TANH/MUL is the recurrent cell.
    cell_idx = [k for k, n in enumerate(order) if n.op in _CELL_OPS]
    last_cell = cell_idx[-1] if cell_idx else -1
    for k, n in enumerate(order):
        n.stage = 0 if k <= last_cell else 1

    # Liveness of activation tensors, in entry positions (the nodes of a shared
    # call at one: their outputs never overlap the input or each other); graph
    # input lives from -1 (copied in before entry 0), graph output until len(entries).
    first: dict = {}
    last: dict = {}
    act_ids = set()
    for k, e in enumerate(entries):
        for n in e:
            for tid in n.reads:
                if tid not in first and tid != in_t.index:
                    raise CodegenError(f"op {n.index} ({n.op}) reads tensor {tid} before it is written")
                last[tid] = max(last.get(tid, k), k)
                act_ids.add(tid)
        for n in e:
            for tid in n.writes:
                if tensors[tid].is_const:
                    raise CodegenError(f"op {n.index} ({n.op}) writes constant tensor {tid}")
                first.setdefault(tid, k)
                last[tid] = max(last.get(tid, k), k)
                act_ids.add(tid)
    first[in_t.index] = -1
    last.setdefault(in_t.index, -1)
    act_ids.add(in_t.index)
    if not out_t.is_const:
        last[out_t.index] = len(entries)
        first.setdefault(out_t.index, len(entries))
        act_ids.add(out_t.index)
    sizes = {tid: tensors[tid].size for tid in sorted(act_ids)}
    offsets, arena_bytes = _plan_arena(sizes, first, last)

    if arena_bytes > 0x7FFF:
        raise CodegenError(f"arena of {arena_bytes} bytes: the compact graph addresses up to 32767")

    def resolve(text: str) -> str:
        out, pos = [], 0
        while True:
            a = text.find("@", pos)
            if a < 0:
                out.append(text[pos:])
                return "".join(out)
            b = text.find("@", a + 1)
            tag = text[a + 1:b]
            out.append(text[pos:a])
            if tag.startswith("ARENA"):
                out.append(f"(sd_model_arena + {offsets[int(tag[5:])]})")
            else:  # REF<tid> or REF<tid>+<bytes>
                tid, _, extra = tag[3:].partition("+")
                out.append(f"{offsets[int(tid)] + int(extra or 0)}u")
            pos = b + 1

    tf_version = _version("tensorflow")
    tflm_version = _version("tflite-micro")
    banner = (f"/*\n * Generated by {TOOL_NAME} (sd codegen) - do not edit.\n"
              f" * Source model: {os.path.basename(str(tflite_path))}\n"
              f" * Model SHA-256: {sha}\n"
              f" * TensorFlow {tf_version}, tflite-micro {tflm_version}\n"
              f" * Reference semantics: TFLite Micro int8 reference kernels (double rounding).\n */\n")

    counts: dict = {}
    for n in nodes:
        counts[n.op] = counts.get(n.op, 0) + 1
    macs = sum(getattr(n, "macs", 0) for n in nodes)

    # ---- header ------------------------------------------------------------
    h = [banner, "#ifndef SD_MODEL_GRAPH_H\n#define SD_MODEL_GRAPH_H\n\n"]
    defs = [
        ("SD_MODEL_INPUT_SIZE", str(in_t.size)),
        ("SD_MODEL_OUTPUT_SIZE", str(out_t.size)),
        ("SD_MODEL_INPUT_SCALE", _c_float(in_t.scale)),
        ("SD_MODEL_INPUT_ZERO_POINT", f"({in_t.zero_point})"),
        ("SD_MODEL_OUTPUT_SCALE", _c_float(out_t.scale)),
        ("SD_MODEL_OUTPUT_ZERO_POINT", f"({out_t.zero_point})"),
        ("SD_MODEL_SHA256", f'"{sha}"'),
        ("SD_MODEL_ARENA_BYTES", str(arena_bytes)),
        ("SD_MODEL_NUM_OPS", str(len(nodes))),
        ("SD_MODEL_CONST_BYTES", str(em.const_bytes)),
        ("SD_MODEL_MACS", str(macs)),
        # the packed FULLY_CONNECTED weight layout of pack_fc_weights (sd_kernels.h SD_FC_WEIGHT_LAYOUT)
        ("SD_MODEL_FC_WEIGHT_LAYOUT", str(FC_WEIGHT_LAYOUT)),
    ]
    for k, v in defs:
        h.append(f"#define {k} {v}\n")
    h.append(f"/* input shape {list(in_t.shape)}, output shape {list(out_t.shape)} */\n")
    h.append("\n#include <stdint.h>\n/* The activation arena. Nothing in it survives an invocation, so the front\n"
             " * end borrows it as FFT work space between invocations (sd_frontend.c). */\n"
             "extern int8_t sd_model_arena[SD_MODEL_ARENA_BYTES];\n")
    h.append("\n/* Op kinds the graph uses (1) or not (0): src/sd_model.c links only the used kernels. */\n")
    used = {n.c_type for n in nodes}
    for c_type in OP_KINDS:
        h.append(f"#define SD_GRAPH_USES_{c_type[len('SD_OP_'):]} {int(c_type in used)}\n")
    h.append("/* FULLY_CONNECTED variants the graph uses (src/sd_model.c leaves the others out). */\n")
    h.append(f"#define SD_GRAPH_USES_FC_PER_CHANNEL {int(bool(low.fc_channels))}\n")
    h.append(f"#define SD_GRAPH_USES_FC_BIAS32 {int(bool(low.fc_biases))}\n")
    h.append("\n#endif /* SD_MODEL_GRAPH_H */\n")

    # ---- source --------------------------------------------------------------
    c = [banner,
         "#include <stdint.h>\n\n#include \"sd_graph.h\"\n#include \"sd_model_graph.h\"\n\n",
         "#if defined(__GNUC__)\n#define SD_GRAPH_ALIGN16 __attribute__((aligned(16)))\n#else\n"
         "#define SD_GRAPH_ALIGN16\n#endif\n\n",
         f"/* Activations: {len(sizes)} tensors share {arena_bytes} bytes (liveness-planned). */\n",
         "int8_t sd_model_arena[SD_MODEL_ARENA_BYTES] SD_GRAPH_ALIGN16;\n\n"]
    c.extend(resolve(d) for d in em.decls)
    c.append("\n")

    def table(ctype: str, name: str, items: list) -> str:
        if not items:
            return "0"
        c.append(f"static const {ctype} {name}[{len(items)}] = {{\n")
        c.extend(f"    {resolve(it)},\n" for it in items)
        c.append("};\n\n")
        return name

    if low.lut_tables:
        c.append(f"/* {len(low.lut_tables)} distinct LOGISTIC/TANH tables, indexed by the input byte. */\n")
        c.append(f"static const int8_t sd_luts[{len(low.lut_tables)}][256] = {{\n")
        for tab in low.lut_tables:
            vals = [int(v) for v in tab]
            c.append("    {\n" + "".join("        " + ", ".join(map(str, vals[i:i + 16])) + ",\n"
                                           for i in range(0, 256, 16)) + "    },\n")
        c.append("};\n\n")
    consts = table("int8_t *const", "sd_consts", low.consts) if low.consts else "0"
    fc_mats = table("sd_fc_matrix_t", "sd_fc_matrices", low.fc_matrices)
    fc_params = table("sd_fc_param_t", "sd_fc_params", low.fc_params)
    add_params = table("sd_add_param_t", "sd_add_params", low.add_params)
    mul_params = table("sd_mul_param_t", "sd_mul_params", low.mul_params)
    fc_biases = table("int32_t *const", "sd_fc_biases", low.fc_biases)
    fc_biases16 = table("int16_t *const", "sd_fc_biases16", low.fc_biases16)
    fc_chans = table("sd_fc_channels_t", "sd_fc_channels", low.fc_channels)
    bcasts = table("sd_broadcast_t", "sd_bcasts", low.bcasts)

    # One array per node struct, in op order; the op table holds one byte per
    # op (SD_OP_HEAD + type for the head), the executor counts its way through each array.
    by_struct: dict = {}
    index_of = []  # per entry: the index of its first node in its array
    for e in entries:
        lst = by_struct.setdefault(e[0].struct, [])
        index_of.append(len(lst))
        for i, n in enumerate(e):
            n.shared = len(e) - 1 if i == 0 else 0
            lst.append(n)
    arrays = {}
    for struct, lst in by_struct.items():
        name = "sd_" + struct[3:-2] + "s"  # sd_fc_node_t -> sd_fc_nodes
        arrays[struct] = name
        c.append(f"static const {struct} {name}[{len(lst)}] = {{\n")
        for n in lst:
            fields = resolve(n.fields)
            note = ""
            if struct == "sd_fc_node_t":
                fields += f", {n.shared}"
                note = f", with the next {n.shared} (same input)" if n.shared else ""
            c.append(f"    {{ {fields} }}, /* op {n.index}: {n.op}{note} */\n")
        c.append("};\n\n")
    c.append(f"static const sd_op_t sd_ops[{max(len(entries), 1)}] = {{\n")
    for k, e in enumerate(entries):
        n = e[0]
        head = "SD_OP_HEAD + " if n.stage else ""
        ops_of = f"ops {', '.join(str(m.index) for m in e)}" if len(e) > 1 else f"op {n.index}"
        c.append(f"    {head}{n.c_type}, /* {ops_of}: {n.op}, node {index_of[k]} */\n")
    c.append("};\n\n")
    out_expr = (f"(sd_model_arena + {offsets[out_t.index]})" if not out_t.is_const else low.act(out_t.index))
    members = [
        ("ops", "sd_ops"), ("num_ops", str(len(entries))), ("arena", "sd_model_arena"), ("consts", consts),
        ("input", f"(sd_model_arena + {offsets[in_t.index]})"), ("output", out_expr),
        ("input_size", str(in_t.size)), ("output_size", str(out_t.size)),
        ("fc", arrays.get("sd_fc_node_t", "0")), ("fc_params", fc_params), ("fc_matrices", fc_mats),
        ("fc_biases", fc_biases), ("fc_biases16", fc_biases16), ("fc_channels", fc_chans), ("add", arrays.get("sd_add_node_t", "0")),
        ("add_params", add_params), ("mul", arrays.get("sd_mul_node_t", "0")), ("mul_params", mul_params),
        ("bcasts", bcasts),
        ("lut", arrays.get("sd_lut_node_t", "0")), ("luts", "sd_luts" if low.lut_tables else "0"),
        ("activation", arrays.get("sd_activation_node_t", "0")),
        ("softmax", arrays.get("sd_softmax_node_t", "0")), ("quantize", arrays.get("sd_quantize_node_t", "0")),
        ("reshape", arrays.get("sd_reshape_node_t", "0")), ("split", arrays.get("sd_split_node_t", "0")),
        ("unpack", arrays.get("sd_unpack_node_t", "0")),
        ("concatenation", arrays.get("sd_concatenation_node_t", "0")),
        ("strided_slice", arrays.get("sd_strided_slice_node_t", "0")),
        ("copy", arrays.get("sd_copy_node_t", "0")),
    ]
    c.append("const sd_graph_t sd_model_graph = {\n")
    c.extend(f"    .{k} = {v},\n" for k, v in members)
    c.append("};\n")

    os.makedirs(out_dir, exist_ok=True)
    h_path = os.path.join(out_dir, "sd_model_graph.h")
    c_path = os.path.join(out_dir, "sd_model_graph.c")
    with open(h_path, "w", newline="\n") as f:
        f.write("".join(h))
    with open(c_path, "w", newline="\n") as f:
        f.write("".join(c))

    return {
        "ops_by_type": dict(sorted(counts.items())),
        "num_ops": len(nodes),
        "op_entries": len(entries),
        "const_bytes": em.const_bytes,
        "arena_bytes": arena_bytes,
        "macs": macs,
        "sha256": sha,
        "input_shape": list(in_t.shape),
        "output_shape": list(out_t.shape),
        "lstm_ops": sum(1 for n in nodes if n.stage == 0),
        "head_ops": sum(1 for n in nodes if n.stage == 1),
        "files": [h_path, c_path],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m convert.codegen", description=__doc__.split("\n")[0])
    ap.add_argument("model", help="full-integer int8 .tflite")
    ap.add_argument("--out-dir", default="firmware/generated", help="output directory (%(default)s)")
    ap.add_argument("--sha256", default=None, help="expected model SHA-256")
    ap.add_argument("--no-luts", action="store_true", help="compute LOGISTIC/TANH at run time")
    ap.add_argument("--bias32", action="store_true",
                    help="keep every FULLY_CONNECTED bias int32 (default: int16 where all values fit)")
    ap.add_argument("--fc-share", type=int, default=FC_SHARED_MAX,
                    help="FULLY_CONNECTED ops on one input per kernel call (%(default)s; 1: one each)")
    ap.add_argument("--traceback", action="store_true", help="show full tracebacks")
    args = ap.parse_args(argv)
    try:
        facts = generate_model_c(args.model, args.out_dir, model_sha256=args.sha256,
                                 activation_luts=not args.no_luts, fc_bias16=not args.bias32,
                                 fc_share=args.fc_share)
    except CodegenError as e:
        if args.traceback:
            raise
        print(f"codegen: error: {e}", file=sys.stderr)
        return 2
    import json
    print(json.dumps(facts, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
