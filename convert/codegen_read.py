"""convert.codegen, part 1: reading the .tflite flatbuffer into tensors and ops.

Split out of convert/codegen.py (issue 22): `generate_model_c` there is the
entry point; this module only parses, checks nothing beyond the schema, and
names things.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
T_INT8 = schema.TensorType.INT8
T_INT32 = schema.TensorType.INT32


class CodegenError(ValueError):
    """The model cannot be compiled (unsupported op, float tensor, bad params)."""


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
