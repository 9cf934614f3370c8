"""convert.codegen, part 4: graph lowering (each TFLite op to a firmware node)
and memory planning (the static activation arena, shared-input FC calls).

Split out of convert/codegen.py (issue 22).
"""

from __future__ import annotations

import numpy as np

from convert.codegen_emit import _Emitter
from convert.codegen_read import _TYPE_NAMES, T_INT8, T_INT32, CodegenError, _Node
from convert.codegen_tables import (_activation_params, _activation_range, _calculate_input_radius, _f32,
                                    _quantize_multiplier_smaller_than_one_exp, activation_lut, pack_fc_weights,
                                    quantize_multiplier)

ARENA_ALIGNMENT = 16

# sd_fc_params_t.per_channel's third value (SD_FC_PER_CHANNEL_NORMALIZED in
# firmware/include/sd_kernels.h): per channel, every multiplier >= 2^30 and
# every shift in [-FC_NORMALIZED_MAX_RIGHT_SHIFT, -1], so that the DSP
# path's inner routine requantizes each row itself (its hz = (2 zp + 1)
# 2^(e - 1) fits 32 bits up to e = 23).
FC_PER_CHANNEL_NORMALIZED = 2
FC_NORMALIZED_MAX_RIGHT_SHIFT = 23


def fc_channels_normalized(mults, shifts) -> bool:
    """Whether a per-channel FULLY_CONNECTED may be marked FC_PER_CHANNEL_NORMALIZED."""
    return all(int(m) >= 1 << 30 and -FC_NORMALIZED_MAX_RIGHT_SHIFT <= int(s) <= -1 for m, s in zip(mults, shifts))


# sd_fc_param_t.bias_kind (SD_FC_BIAS_* in firmware/include/sd_graph.h). An
# int32 effective bias is marked FC_BIAS_INT32_SMALL (sd_fc_params_t.bias_small
# in firmware/include/sd_kernels.h) when every |b| + accum_depth 2^14 stays
# below FC_BIAS_SMALL_LIMIT: an int8 x int8 product is at most 2^14, so every
# accumulator then stays below 2^23, the bound the DSP path's inner routine
# needs, and it starts from that bias as from an int16 one.
FC_BIAS_INT32, FC_BIAS_INT16, FC_BIAS_INT32_SMALL = 0, 1, 2
FC_BIAS_SMALL_LIMIT = 1 << 23


def fc_bias_small(eff, depth: int) -> bool:
    """Whether an int32 effective bias of an op with ``depth`` inputs may be marked FC_BIAS_INT32_SMALL."""
    return bool(np.all(np.abs(np.asarray(eff, np.int64)) + int(depth) * (1 << 14) < FC_BIAS_SMALL_LIMIT))

# Ops the LSTM stage ends with (see sd_model_cost_t): the last one of these
# closes the recurrent cell; everything after it is the head.
_CELL_OPS = {"LOGISTIC", "TANH", "MUL"}

# sd_op_type_t in firmware/include/sd_graph.h, in order.
OP_KINDS = ("SD_OP_FULLY_CONNECTED", "SD_OP_ADD", "SD_OP_MUL", "SD_OP_LOGISTIC", "SD_OP_TANH", "SD_OP_LUT",
            "SD_OP_SOFTMAX", "SD_OP_QUANTIZE", "SD_OP_RESHAPE", "SD_OP_SPLIT", "SD_OP_SPLIT_V", "SD_OP_UNPACK",
            "SD_OP_CONCATENATION", "SD_OP_STRIDED_SLICE", "SD_OP_COPY")


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
        bias_kind = (FC_BIAS_INT16 if bias16 else
                     FC_BIAS_INT32_SMALL if bias_name != "0" and fc_bias_small(eff, depth) else FC_BIAS_INT32)
        bias_i = 255 if bias_name == "0" else self._index(self.fc_biases16 if bias16 else self.fc_biases, bias_name)
        if per_channel:
            mult_c = self._index(self.fc_channels, f"{{ {mult_name}, {shift_name} }}")
            shift_c = 0
            pc_flag = FC_PER_CHANNEL_NORMALIZED if fc_channels_normalized(mults, shifts) else 1
        else:
            mult_c, shift_c = mults[0], shifts[0]
            pc_flag = 0
        param = self._index(self.fc_params, f"{{ {mult_c}, {batches}, {mat}, {bias_i}, {shift_c}, "
                                              f"{ty.zero_point}, {amin}, {amax}, {pc_flag}, {bias_kind} }}")
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
