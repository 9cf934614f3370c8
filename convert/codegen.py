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

The compiler is four modules along its seams: codegen_read (the flatbuffer),
codegen_tables (TFLite Micro's parameter arithmetic and tables),
codegen_lower (ops to nodes, arena planning) and codegen_emit (C arrays);
this one puts them together and writes the files.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import os
import sys

from convert.codegen_emit import _c_float, _Emitter
from convert.codegen_lower import _CELL_OPS, FC_SHARED_MAX, OP_KINDS, _Lowering, _plan_arena, _share_fc_inputs
from convert.codegen_read import _TYPE_NAMES, T_INT8, CodegenError, _load
from convert.codegen_tables import FC_WEIGHT_LAYOUT, activation_lut, pack_fc_weights, quantize_multiplier

__all__ = ["generate_model_c", "CodegenError", "quantize_multiplier", "activation_lut", "pack_fc_weights",
           "main"]

TOOL_NAME = "convert/codegen.py"


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
