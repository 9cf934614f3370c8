"""Bit-exactness of the int8 C kernels and of the generated model against the
TensorFlow Lite Micro interpreter (the parity reference, DESIGN.md).

Where the golden vectors come from: nothing is stored. Each test builds a
tiny tf_keras model, converts it to a full-integer int8 .tflite with a
representative dataset (TFLITE_BUILTINS_INT8, int8 input and output), runs it
in the TFLite Micro interpreter (package tflite-micro, reference kernels) on
seeded random int8 inputs - for LOGISTIC and TANH on all 256 int8 values at
several input scales - and compares, element for element, with the same
model compiled by convert/codegen.py and run by the firmware's executor and
kernels (built here with the system gcc, -std=c99 -Wall -Wextra -Werror
-ffp-contract=off). A mismatch lists every position with actual and
reference values.

Run: .venv/bin/python -m pytest tests/test_kernels.py -q
Build products go to pytest's tmp_path; nothing is written in the repo.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from convert import codegen  # noqa: E402
from convert.tflm_ref import find_min_arena, run_tflm  # noqa: E402

FW = ROOT / "firmware"
KERNEL_SOURCES = sorted((FW / "src" / "kernels").glob("*.c"))
EXECUTOR_SOURCE = FW / "src" / "sd_model.c"  # includes the generated header
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off", "-O2"]
INCLUDES = ["-I", str(FW / "include"), "-I", str(FW / "src" / "kernels")]


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tf():
    import tensorflow as tf_mod

    return tf_mod


@pytest.fixture(scope="session")
def keras():
    import tf_keras

    return tf_keras


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("sd_build")


@pytest.fixture(scope="session")
def kernel_objects(build_dir):
    """The kernels, compiled once."""
    objs = []
    for src in KERNEL_SOURCES:
        obj = build_dir / (src.stem + ".o")
        subprocess.run(["gcc", *CFLAGS, *INCLUDES, "-c", str(src), "-o", str(obj)], check=True)
        objs.append(str(obj))
    return objs


def _has_float_tensor(tflite: bytes) -> bool:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(tflite, 0))
    return any(t.type == schema.TensorType.FLOAT32 for t in m.subgraphs[0].tensors)


def convert_int8(tf, model, rep_data, *, per_tensor_dense=False, attempts=8, allow_float=False,
                 add_batch=True) -> bytes:
    """Full-integer int8 conversion. The converter is not deterministic: some
    runs leave a float island (DESIGN.md), so convert again until none is left."""
    for _ in range(attempts):
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        samples = [np.asarray(r, np.float32)[None] if add_batch else np.asarray(r, np.float32)
                   for r in rep_data]
        conv.representative_dataset = lambda: ([x] for x in samples)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
        if per_tensor_dense:
            conv._experimental_disable_per_channel_quantization_for_dense_layers = True
        tfl = conv.convert()
        if allow_float or not _has_float_tensor(tfl):
            return tfl
    pytest.fail(f"{attempts} conversions all left float tensors")


def build_model_exe(tflite: bytes, workdir: Path, kernel_objects, *, luts=True, bias16=True) -> tuple[Path, dict]:
    workdir.mkdir(parents=True, exist_ok=True)
    model_path = workdir / "model.tflite"
    model_path.write_bytes(tflite)
    gen = workdir / "gen"
    facts = codegen.generate_model_c(model_path, gen, activation_luts=luts, fc_bias16=bias16)
    exe = workdir / "test_model"
    subprocess.run(["gcc", *CFLAGS, *INCLUDES, "-I", str(gen), str(gen / "sd_model_graph.c"),
                    str(EXECUTOR_SOURCE), str(FW / "tests" / "sd_test_port.c"), str(FW / "tests" / "test_model_main.c"),
                    *kernel_objects, "-o", str(exe)], check=True)
    return exe, facts


def run_exe(exe: Path, x: np.ndarray, out_shape) -> np.ndarray:
    inp = exe.parent / "in.bin"
    out = exe.parent / "out.bin"
    np.ascontiguousarray(x, dtype=np.int8).tofile(inp)
    subprocess.run([str(exe), str(inp), str(out), str(x.shape[0])], check=True)
    return np.fromfile(out, dtype=np.int8).reshape((x.shape[0],) + tuple(out_shape))


def assert_exact(actual: np.ndarray, reference: np.ndarray, what: str, inputs=None):
    assert actual.shape == reference.shape, f"{what}: shape {actual.shape} != {reference.shape}"
    bad = np.argwhere(actual != reference)
    if len(bad):
        lines = [f"{what}: {len(bad)} of {reference.size} elements differ (position: actual, reference"
                 + (", input" if inputs is not None else "") + ")"]
        for pos in bad:
            p = tuple(int(v) for v in pos)
            extra = f", input {int(inputs[p])}" if inputs is not None and inputs.shape == actual.shape else ""
            lines.append(f"  {p}: {int(actual[p])}, {int(reference[p])}{extra}")
        pytest.fail("\n".join(lines))


def check_model(tflite: bytes, x: np.ndarray, workdir: Path, kernel_objects, what: str, *, luts=True, bias16=True):
    ref = run_tflm(tflite, x)
    exe, facts = build_model_exe(tflite, workdir, kernel_objects, luts=luts, bias16=bias16)
    got = run_exe(exe, x, ref.shape[1:])
    assert_exact(got, ref, what, inputs=x)
    return facts


def all_int8_values(shape_prefix=(1, 1)) -> np.ndarray:
    return np.arange(-128, 128, dtype=np.int8).reshape(shape_prefix + (256,))


# ---------------------------------------------------------------------------
# unary activations: all 256 inputs, several input quantizations
# ---------------------------------------------------------------------------

# (float range of the representative data, offset): gives different input
# scales and asymmetric zero points.
ACT_RANGES = [(0.25, 0.0), (3.0, 0.5), (9.0, -2.0), (60.0, 10.0)]


@pytest.mark.parametrize("kind", ["sigmoid", "tanh"])
def test_activation_all_inputs(kind, tf, keras, build_dir, kernel_objects):
    rng = np.random.default_rng(7)
    for k, (rng_, off) in enumerate(ACT_RANGES):
        inp = keras.Input((256,), batch_size=1)
        out = keras.layers.Activation(kind)(inp)
        model = keras.Model(inp, out)
        rep = [rng.uniform(off - rng_, off + rng_, size=(256,)) for _ in range(8)]
        tfl = convert_int8(tf, model, rep)
        x = all_int8_values((1, 1))
        facts = None
        for luts in (True, False):
            facts = check_model(tfl, x, build_dir / f"{kind}_{k}_{int(luts)}", kernel_objects,
                                f"{kind} range {rng_} luts={luts}", luts=luts)
        assert facts["ops_by_type"] == {"LOGISTIC" if kind == "sigmoid" else "TANH": 1}


def test_python_lut_matches_c_kernel_params():
    """The generator's Python fixed point equals the TFLM results through the
    model tests; here: tables are stable and monotonic for sane scales."""
    for scale, zp in [(0.0295, -26), (0.0091, -8), (0.1, 0), (0.5, 100)]:
        for kind in ("LOGISTIC", "TANH"):
            t = codegen.activation_lut(kind, scale, zp)
            vals = t[(np.arange(-128, 128) & 0xFF)]
            assert np.all(np.diff(vals.astype(int)) >= 0), (kind, scale, zp)


# ---------------------------------------------------------------------------
# FULLY_CONNECTED / ADD / MUL / SOFTMAX / QUANTIZE
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("per_tensor", [False, True])
@pytest.mark.parametrize("use_bias,activation", [(True, None), (False, "relu"), (True, "relu6")])
def test_fully_connected(per_tensor, use_bias, activation, tf, keras, build_dir, kernel_objects):
    keras.utils.set_random_seed(3)
    inp = keras.Input((37,), batch_size=3)
    out = keras.layers.Dense(23, use_bias=use_bias, activation=activation,
                             bias_initializer="random_normal")(inp)
    model = keras.Model(inp, out)
    rng = np.random.default_rng(11)
    rep = [rng.normal(0.3, 1.5, size=(3, 37)).astype(np.float32)[0] for _ in range(16)]
    # batch of 3 rows: the representative data must have the model's batch
    rep = [np.stack([r, r * 0.5, -r]) for r in rep]
    tfl = convert_int8(tf, model, rep, per_tensor_dense=per_tensor, add_batch=False)
    x = rng.integers(-128, 128, size=(40, 3, 37), dtype=np.int8)
    facts = check_model(tfl, x, build_dir / f"fc_{per_tensor}_{use_bias}_{activation}", kernel_objects,
                        f"FC per_tensor={per_tensor} bias={use_bias} act={activation}")
    assert facts["ops_by_type"].get("FULLY_CONNECTED") == 1
    # the same with every bias kept int32 (codegen's default stores an
    # effective bias that fits int16 as int16: sd_fully_connected_s8_b16)
    gen_c = (build_dir / f"fc_{per_tensor}_{use_bias}_{activation}" / "gen" / "sd_model_graph.c").read_text()
    check_model(tfl, x, build_dir / f"fc32_{per_tensor}_{use_bias}_{activation}", kernel_objects,
                f"FC int32 bias per_tensor={per_tensor} bias={use_bias} act={activation}", bias16=False)
    gen32_c = (build_dir / f"fc32_{per_tensor}_{use_bias}_{activation}" / "gen" / "sd_model_graph.c").read_text()
    assert "static const int16_t sd_bias_" not in gen32_c
    if use_bias:
        assert "static const int16_t sd_bias_" in gen_c, "the small bias was not stored as int16"


def test_add_mul_concat_requantize(tf, keras, build_dir, kernel_objects):
    """ADD and MUL of two differently quantized tensors, ADD with a broadcast
    constant, CONCATENATION (the converter may insert int8 QUANTIZE ops)."""
    keras.utils.set_random_seed(5)
    inp = keras.Input((48,), batch_size=1)
    h1 = keras.layers.Dense(32)(inp)
    h2 = keras.layers.Dense(32, activation="tanh")(inp)
    a = keras.layers.Add()([h1, h2])
    m = keras.layers.Multiply()([h1, h2])
    r = keras.layers.Reshape((4, 8))(a)
    b = keras.layers.Lambda(lambda t: t + tf.constant(np.linspace(-2, 3, 8, dtype=np.float32)))(r)
    b = keras.layers.Reshape((32,))(b)
    out = keras.layers.Concatenate()([b, m])
    model = keras.Model(inp, out)
    rng = np.random.default_rng(13)
    rep = [rng.normal(0, 1.0, size=(48,)) for _ in range(32)]
    tfl = convert_int8(tf, model, rep)
    x = rng.integers(-128, 128, size=(60, 1, 48), dtype=np.int8)
    facts = check_model(tfl, x, build_dir / "addmul", kernel_objects, "add/mul/concat")
    assert facts["ops_by_type"].get("ADD", 0) >= 2 and facts["ops_by_type"].get("MUL", 0) == 1


@pytest.mark.parametrize("spread", [1.0, 8.0])
def test_softmax(spread, tf, keras, build_dir, kernel_objects):
    inp = keras.Input((10,), batch_size=2)
    out = keras.layers.Softmax()(inp)
    model = keras.Model(inp, out)
    rng = np.random.default_rng(17)
    rep = [rng.normal(0, spread, size=(2, 10)).astype(np.float32) for _ in range(16)]
    tfl = convert_int8(tf, model, rep, add_batch=False)
    x = rng.integers(-128, 128, size=(200, 2, 10), dtype=np.int8)
    x[:20] = x[:20] // 16  # rows of close values
    facts = check_model(tfl, x, build_dir / f"softmax_{spread}", kernel_objects, f"softmax spread {spread}")
    assert facts["ops_by_type"] == {"SOFTMAX": 1}


# ---------------------------------------------------------------------------
# data movement: RESHAPE, UNPACK, SPLIT, SPLIT_V, STRIDED_SLICE, CONCATENATION
# ---------------------------------------------------------------------------


def test_data_movement(tf, keras, build_dir, kernel_objects):
    """RESHAPE, SPLIT, SPLIT_V, STRIDED_SLICE (steps, negative index, shrink
    axis), CONCATENATION. UNPACK is covered by the LSTM tests: alone, the
    converter leaves it in float (a float island the generator refuses)."""
    # Every output of both splits is used: a SPLIT with unused outputs made the converter leave it (or the
    # SPLIT_V before it) in float in 10 of 12 conversions, and all 8 attempts of one full run (measured:
    # 24 of 24 conversions all-int8 with every output consumed, with and without a fresh Keras session).
    keras.utils.set_random_seed(11)
    inp = keras.Input((6, 10), batch_size=1)

    def body(t):
        flat = tf.reshape(t, (1, 60))                    # RESHAPE
        s2 = tf.split(flat, [25, 35], axis=1)            # SPLIT_V
        s1 = tf.split(s2[0], 5, axis=1)                  # SPLIT
        sl = t[:, 1:5:2, ::3]                            # STRIDED_SLICE
        sl2 = t[:, -1, 2:9]                              # STRIDED_SLICE, shrink axis
        parts = [s1[3], s1[0], s1[4], s1[1], s1[2], s2[1], tf.reshape(sl, (1, -1)), sl2]  # reordered
        return tf.concat(parts, axis=1)                  # CONCATENATION

    h = keras.layers.Dense(10)(inp)  # an int8 producer keeps the rest in int8
    out = keras.layers.Lambda(body)(h)
    model = keras.Model(inp, out)
    rng = np.random.default_rng(19)
    rep = [rng.normal(0, 1.0, size=(6, 10)) for _ in range(8)]
    tfl = convert_int8(tf, model, rep)
    x = rng.integers(-128, 128, size=(10, 1, 6, 10), dtype=np.int8)
    facts = check_model(tfl, x, build_dir / "move", kernel_objects, "data movement")
    ops = facts["ops_by_type"]
    for name in ("RESHAPE", "SPLIT", "SPLIT_V", "STRIDED_SLICE", "CONCATENATION"):
        assert name in ops, ops


def test_codegen_refuses_float_island(tf, keras, tmp_path):
    """UNPACK whose outputs feed only data movement stays float after
    conversion (DEQUANTIZE ... QUANTIZE): the generator must refuse it."""
    inp = keras.Input((6, 10), batch_size=1)
    out = keras.layers.Lambda(lambda t: tf.concat(tf.unstack(t, axis=1)[::2], axis=1))(inp)
    model = keras.Model(inp, out)
    rng = np.random.default_rng(3)
    rep = [rng.normal(size=(6, 10)) for _ in range(4)]
    for _ in range(6):  # the converter leaves the island in most, not all, runs
        tfl = convert_int8(tf, model, rep, allow_float=True, attempts=1)
        if _has_float_tensor(tfl):
            break
    p = tmp_path / "island.tflite"
    p.write_bytes(tfl)
    if not _has_float_tensor(tfl):
        pytest.skip("this conversion came out all-int8")
    with pytest.raises(codegen.CodegenError, match=r"op \d+ \((DE)?QUANTIZE|FLOAT32"):
        codegen.generate_model_c(p, tmp_path / "gen")


# ---------------------------------------------------------------------------
# whole model: unrolled LSTM(32) -> Dense(10) -> softmax
# ---------------------------------------------------------------------------


def _lstm_model(keras):
    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 80), batch_size=1)
    x = keras.layers.LSTM(32, unroll=True)(inp)
    x = keras.layers.Dense(10)(x)
    out = keras.layers.Softmax()(x)
    return keras.Model(inp, out)


@pytest.fixture(scope="session")
def lstm_tflite(tf, keras):
    model = _lstm_model(keras)
    rng = np.random.default_rng(1)
    rep = [rng.standard_normal((16, 80)) for _ in range(40)]
    return convert_int8(tf, model, rep)


@pytest.mark.parametrize("luts", [True, False])
def test_whole_lstm_model(luts, lstm_tflite, build_dir, kernel_objects):
    rng = np.random.default_rng(23)
    x = rng.integers(-128, 128, size=(50, 1, 16, 80), dtype=np.int8)
    facts = check_model(lstm_tflite, x, build_dir / f"lstm_{luts}", kernel_objects,
                        f"LSTM(32) model luts={luts}")
    ops = facts["ops_by_type"]
    assert ops.get("FULLY_CONNECTED", 0) >= 17 and ops.get("SOFTMAX") == 1
    assert facts["head_ops"] >= 2 and facts["lstm_ops"] > 100


def test_whole_lstm_model_per_tensor(tf, keras, build_dir, kernel_objects):
    model = _lstm_model(keras)
    rng = np.random.default_rng(2)
    rep = [rng.standard_normal((16, 80)) for _ in range(40)]
    tfl = convert_int8(tf, model, rep, per_tensor_dense=True)
    x = rng.integers(-128, 128, size=(50, 1, 16, 80), dtype=np.int8)
    check_model(tfl, x, build_dir / "lstm_pt", kernel_objects, "LSTM(32) per-tensor")


def _write_vectors_header(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    n = x.shape[0]
    rows = lambda a: ",\n".join("{" + ",".join(map(str, v.ravel().tolist())) + "}" for v in a)  # noqa: E731
    path.write_text(f"#define SD_TEST_NUM_VECTORS {n}\n"
                    f"static const int8_t sd_test_inputs[{n}][{x[0].size}] = {{\n{rows(x)}}};\n"
                    f"static const int8_t sd_test_outputs[{n}][{y[0].size}] = {{\n{rows(y)}}};\n")


def test_model_on_qemu_cortex_m4(lstm_tflite, tmp_path):
    """The same parity on the target code path (SXTB16/SMLAD inner loop):
    mps2-an386 under QEMU, semihosting exit status = mismatch count."""
    port = FW / "ports" / "cortex_m"
    board = FW / "ports" / "mps2-an386"
    tools = ("arm-none-eabi-gcc", "qemu-system-arm")
    if not all(any(os.access(os.path.join(d, t), os.X_OK) for d in os.environ.get("PATH", "").split(os.pathsep))
               for t in tools) or not (board / "sd_port_mps2.c").exists():
        pytest.skip("arm-none-eabi-gcc, qemu-system-arm or the mps2-an386 port is missing")
    p = tmp_path / "m.tflite"
    p.write_bytes(lstm_tflite)
    gen = tmp_path / "gen"
    codegen.generate_model_c(p, gen)
    rng = np.random.default_rng(29)
    x = rng.integers(-128, 128, size=(8, 1, 16, 80), dtype=np.int8)
    _write_vectors_header(gen / "sd_test_vectors.h", x, run_tflm(lstm_tflite, x))
    elf = tmp_path / "t.elf"
    srcs = [*KERNEL_SOURCES, EXECUTOR_SOURCE, gen / "sd_model_graph.c", FW / "tests" / "test_model_target.c",
            board / "sd_port_mps2.c", port / "startup.c", port / "cm_cost.c", port / "cm_halt.c",
            port / "cm_semihost.c"]
    subprocess.run(["arm-none-eabi-gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-ffp-contract=off",
                    "-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard",
                    "-ffunction-sections", "-fdata-sections", "-DSD_SEMIHOSTING=1", *INCLUDES,
                    "-I", str(board), "-I", str(port), "-I", str(gen), *map(str, srcs),
                    "--specs=nano.specs", "-nostartfiles", "-T", str(board / "mps2_an386.ld"), "-L", str(port),
                    "-Wl,--gc-sections", "-Wl,--no-warn-rwx-segments", "-lm", "-o", str(elf)], check=True)
    r = subprocess.run(["qemu-system-arm", "-M", "mps2-an386", "-icount", "shift=0", "-display", "none",
                        "-monitor", "none", "-serial", "null", "-semihosting-config",
                        "enable=on,target=native", "-kernel", str(elf)],
                       capture_output=True, text=True, timeout=120)
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS" in r.stdout


def test_codegen_deterministic(lstm_tflite, tmp_path):
    p = tmp_path / "m.tflite"
    p.write_bytes(lstm_tflite)
    codegen.generate_model_c(p, tmp_path / "a")
    facts = codegen.generate_model_c(p, tmp_path / "b")
    for name in ("sd_model_graph.h", "sd_model_graph.c"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    text = (tmp_path / "a" / "sd_model_graph.h").read_text()
    assert facts["sha256"] in text and "TensorFlow" in text
    for macro in ("SD_MODEL_INPUT_SIZE", "SD_MODEL_OUTPUT_SIZE", "SD_MODEL_INPUT_SCALE",
                  "SD_MODEL_INPUT_ZERO_POINT", "SD_MODEL_OUTPUT_SCALE", "SD_MODEL_OUTPUT_ZERO_POINT",
                  "SD_MODEL_SHA256", "SD_MODEL_ARENA_BYTES", "SD_MODEL_NUM_OPS"):
        assert f"#define {macro} " in text
    # weights shared by the 16 steps are stored once
    c_text = (tmp_path / "a" / "sd_model_graph.c").read_text()
    assert c_text.count("static const uint32_t sd_weights_") == 3  # input, recurrent, dense (packed)


def test_generated_code_builds_for_cortex_m4(lstm_tflite, tmp_path):
    if not any(os.access(os.path.join(d, "arm-none-eabi-gcc"), os.X_OK)
               for d in os.environ.get("PATH", "").split(os.pathsep)):
        pytest.skip("arm-none-eabi-gcc not installed")
    p = tmp_path / "m.tflite"
    p.write_bytes(lstm_tflite)
    codegen.generate_model_c(p, tmp_path / "gen")
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-mcpu=cortex-m4", "-mthumb",
             "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-ffp-contract=off"]
    for src in KERNEL_SOURCES + [EXECUTOR_SOURCE, tmp_path / "gen" / "sd_model_graph.c"]:
        subprocess.run(["arm-none-eabi-gcc", *flags, *INCLUDES, "-I", str(tmp_path / "gen"), "-c", str(src),
                        "-o", str(tmp_path / (Path(src).stem + ".o"))], check=True)


def test_codegen_refuses_float_model(tf, keras, tmp_path):
    inp = keras.Input((8,), batch_size=1)
    model = keras.Model(inp, keras.layers.Dense(4)(inp))
    tfl = tf.lite.TFLiteConverter.from_keras_model(model).convert()  # float32 model
    p = tmp_path / "f.tflite"
    p.write_bytes(tfl)
    with pytest.raises(codegen.CodegenError, match=r"op 0 .*FLOAT32|FLOAT32"):
        codegen.generate_model_c(p, tmp_path / "gen")


def test_codegen_refuses_unsupported_op(tf, keras, tmp_path):
    inp = keras.Input((8, 8, 1), batch_size=1)
    model = keras.Model(inp, keras.layers.Conv2D(2, 3)(inp))
    rng = np.random.default_rng(0)
    tfl = convert_int8(tf, model, [rng.normal(size=(8, 8, 1)) for _ in range(4)])
    p = tmp_path / "c.tflite"
    p.write_bytes(tfl)
    with pytest.raises(codegen.CodegenError, match=r"op \d+ \(CONV_2D\): no int8 kernel"):
        codegen.generate_model_c(p, tmp_path / "gen")


def test_min_arena_probe(lstm_tflite, tmp_path):
    p = tmp_path / "m.tflite"
    p.write_bytes(lstm_tflite)
    arena = find_min_arena(p, lo=4096, hi=1 << 20, granularity=4096)
    assert 4096 < arena < (1 << 20)
    x = np.zeros((1, 1, 16, 80), dtype=np.int8)
    run_tflm(p, x, arena_size=arena)
