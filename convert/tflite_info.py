"""Reading a .tflite flatbuffer: ops, tensor types, constants; and the
full-integer checks every released model must pass."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import convert  # noqa: F401

# Ops the firmware has kernels for and TFLite Micro ships.
SUPPORTED_OPS = frozenset(
    {
        "FULLY_CONNECTED", "ADD", "MUL", "LOGISTIC", "TANH", "SOFTMAX",
        "STRIDED_SLICE", "RESHAPE", "SPLIT", "SPLIT_V", "UNPACK", "CONCATENATION",
    }
)


class ConversionError(ValueError):
    """A converted model that must not be released; the message names the op or tensor."""


@dataclass
class TfliteInfo:
    ops: Counter
    op_list: list[str]
    input_shape: tuple
    output_shape: tuple
    input_type: str
    output_type: str
    input_quant: tuple[float, int]
    output_quant: tuple[float, int]
    const_bytes: int
    problems: list[str] = field(default_factory=list)


def _names(enum_cls) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


def inspect(data: bytes) -> TfliteInfo:
    """Op counts, I/O shapes and quantization, constant bytes, and everything that breaks full-int8."""
    from tensorflow.lite.python import schema_py_generated as sch

    try:
        model = sch.Model.GetRootAsModel(data, 0)
        if model.SubgraphsLength() != 1:
            raise ConversionError(f"expected one subgraph, found {model.SubgraphsLength()}")
        g = model.Subgraphs(0)
    except ConversionError:
        raise
    except Exception as exc:
        raise ConversionError(f"not a TFLite flatbuffer ({exc})") from exc
    op_names = _names(sch.BuiltinOperator)
    type_names = _names(sch.TensorType)
    ops: Counter = Counter()
    op_list = []
    problems = []
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), f"CUSTOM:{code.CustomCode()}")
        ops[name] += 1
        op_list.append(name)
        if name not in SUPPORTED_OPS:
            problems.append(f"op {i} is {name}, which the firmware has no kernel for")
    const_bytes = 0
    seen = set()
    for i in range(g.TensorsLength()):
        t = g.Tensors(i)
        buf = model.Buffers(t.Buffer())
        is_const = buf is not None and buf.DataLength() > 0
        tname = type_names.get(t.Type(), str(t.Type()))
        if is_const and t.Buffer() not in seen:
            seen.add(t.Buffer())
            const_bytes += buf.DataLength()
        if tname == "FLOAT32":
            problems.append(f"tensor {i} ({t.Name().decode()}) is float32")
        elif not is_const and tname != "INT8":
            problems.append(f"activation tensor {i} ({t.Name().decode()}) is {tname}, not INT8")
        elif is_const and tname not in ("INT8", "INT32"):
            problems.append(f"constant tensor {i} ({t.Name().decode()}) is {tname}")

    def io(idx):
        t = g.Tensors(idx)
        q = t.Quantization()
        quant = (float(q.ScaleAsNumpy()[0]), int(q.ZeroPointAsNumpy()[0])) if q is not None and q.ScaleLength() else (0.0, 0)
        return tuple(int(v) for v in t.ShapeAsNumpy()), type_names.get(t.Type()), quant

    if g.InputsLength() != 1 or g.OutputsLength() != 1:
        problems.append(f"expected one input and one output, found {g.InputsLength()} and {g.OutputsLength()}")
    in_shape, in_type, in_q = io(g.Inputs(0))
    out_shape, out_type, out_q = io(g.Outputs(0))
    for what, shape, typ in (("input", in_shape, in_type), ("output", out_shape, out_type)):
        if typ != "INT8":
            problems.append(f"model {what} is {typ}, not INT8")
        if not shape or shape[0] != 1:
            problems.append(f"model {what} shape {shape} has no fixed batch of 1")
    return TfliteInfo(ops, op_list, in_shape, out_shape, in_type, out_type, in_q, out_q, const_bytes, problems)


def check_full_int8(info: TfliteInfo, *, where: str = "model") -> None:
    """Raises ConversionError listing every problem (float tensors, QUANTIZE/DEQUANTIZE, unknown ops)."""
    if info.problems:
        lines = "\n".join(f"  - {p}" for p in info.problems[:20])
        more = f"\n  ... and {len(info.problems) - 20} more" if len(info.problems) > 20 else ""
        raise ConversionError(f"{where} is not a full-integer model the firmware can run:\n{lines}{more}")
