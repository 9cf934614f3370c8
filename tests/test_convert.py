"""python -m convert.quantize: full-int8 output, determinism, TFLite Micro, and the error cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from firmware_build import RELEASED

QUANT_KEYS = ("float_accuracy", "ptq_accuracy", "qat_accuracy", "int8_accuracy", "tflite_bytes", "weight_bytes",
              "tflm_arena_bytes", "ops", "sha256")


@pytest.fixture(scope="module")
def small_model(fsdd_dir, tmp_path_factory):
    from train.model import ModelConfig
    from train.trainer import TrainConfig, run

    out = tmp_path_factory.mktemp("small")
    run(data_dir=fsdd_dir, out=out, progress=False, limit_per_speaker=6,
        mcfg=ModelConfig(lstm_units=24, dense_units=16), tcfg=TrainConfig(epochs=20, patience=20, seed=1))
    return out


@pytest.fixture(scope="module")
def converted(small_model, fsdd_dir, tmp_path_factory):
    from convert.quantize import quantize

    out = tmp_path_factory.mktemp("conv")
    c_out = tmp_path_factory.mktemp("gen")
    report = quantize(model_dir=small_model, out_dir=out, c_out=c_out, data_dir=fsdd_dir, qat_epochs=1,
                      rep_samples=64, probe_arena=True, progress=False)
    return out, c_out, report


def test_small_model_end_to_end(converted):
    from convert.tflite_info import SUPPORTED_OPS, check_full_int8, inspect

    out, c_out, report = converted
    for key in QUANT_KEYS:
        assert key in report, key
    data = (out / "model_int8.tflite").read_bytes()
    info = inspect(data)
    check_full_int8(info)
    assert info.input_shape == (1, 16, 80) and info.output_shape == (1, 10)
    assert info.input_type == info.output_type == "INT8"
    assert set(info.ops) <= SUPPORTED_OPS and "QUANTIZE" not in info.ops and "DEQUANTIZE" not in info.ops
    assert report["deterministic"]["reconverted_identical"]
    assert report["tflm_arena_bytes"] and report["tflm_arena_bytes"] > 1000
    assert json.loads((out / "report.json").read_text())["sha256"] == report["sha256"]
    assert "alignas(16) const unsigned char g_digit_model_data[]" in (out / "model_int8.cc").read_text()
    assert (c_out / "sd_model_graph.h").is_file() and (c_out / "sd_frontend_tables.c").is_file()
    # the small model learns something real, and int8 stays near float
    assert report["float_accuracy"] > 0.3
    assert abs(report["int8_accuracy"] - report["float_accuracy"]) < 0.1


def test_conversion_is_byte_identical(small_model, fsdd_dir):
    from convert import cell
    from convert.quantize import convert_once
    from train.model import load_model

    m = load_model(small_model / "model.keras")
    cm = cell.explicit_model(m, batch_size=1)
    rep = np.random.default_rng(0).standard_normal((32, 16, 80)).astype(np.float32)
    assert convert_once(cm, rep, per_tensor=True) == convert_once(cm, rep, per_tensor=True)


def test_generation_is_deterministic(converted, small_model, tmp_path):
    from convert.firmware_gen import generate_firmware_sources
    from train.features import FrontendConfig

    out, _, _ = converted
    cfg = FrontendConfig.load(small_model / "frontend.json")
    generate_firmware_sources(out / "model_int8.tflite", cfg, tmp_path / "a")
    generate_firmware_sources(out / "model_int8.tflite", cfg, tmp_path / "b")
    names = sorted(f.name for f in (tmp_path / "a").iterdir())
    assert "sd_model_graph.c" in names and "sd_frontend_config.h" in names
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_released_model_accuracy(fsdd_dir):
    """The released int8 model in TFLite Micro, on the official test split."""
    from convert.reference import Reference
    from train import data as fsdd

    report = json.loads((RELEASED / "report.json").read_text())
    for key in QUANT_KEYS:
        assert key in report, key
    ref = Reference.from_dir(RELEASED)
    assert ref.sha256 == report["sha256"]
    ds = fsdd.load_dataset(fsdd_dir)
    _, te = fsdd.split_indices(ds, "official")
    res = ref.run([ds.clips[i].samples for i in te])
    acc = float(np.mean(res.labels == ds.labels[te]))
    if len(te) == 300:  # the real FSDD
        assert acc == pytest.approx(report["int8_accuracy"])
        assert acc >= 0.98
    assert report["weight_bytes"] <= 130 * 1024


# -- bad input ---------------------------------------------------------------------
def test_missing_and_corrupt_model_files(tmp_path):
    from convert.quantize import main, quantize
    from train.features import FrontendConfig

    assert main(["--model", str(tmp_path / "none"), "--c-out", "", "--no-progress"]) == 2
    d = tmp_path / "corrupt"
    d.mkdir()
    FrontendConfig().with_normalization(np.zeros(80), np.ones(80)).save(d / "frontend.json")
    (d / "model.keras").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match=r"model\.keras.*not a loadable Keras model"):
        quantize(model_dir=d, c_out=None, out_dir=tmp_path / "o", progress=False)


def test_unsupported_layers_are_named():
    import tf_keras as keras

    from convert.cell import UnsupportedModelError, check_supported

    inp = keras.Input((16, 80), name="x")
    conv = keras.layers.Conv1D(8, 3, name="my_conv")(inp)
    out = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(conv))
    with pytest.raises(UnsupportedModelError, match="my_conv.*Conv1D"):
        check_supported(keras.Model(inp, out))
    x = keras.layers.LSTM(8, unroll=False, name="rolled")(inp)
    with pytest.raises(UnsupportedModelError, match="rolled.*unroll=False"):
        check_supported(keras.Model(inp, keras.layers.Dense(10, activation="softmax")(x)))


def test_empty_representative_set(small_model):
    from convert import cell
    from convert.quantize import convert_once
    from convert.tflite_info import ConversionError
    from train.model import load_model

    cm = cell.explicit_model(load_model(small_model / "model.keras"), batch_size=1)
    with pytest.raises(ConversionError, match="representative dataset is empty"):
        convert_once(cm, np.zeros((0, 16, 80), np.float32), per_tensor=True)


def test_float_model_is_refused(small_model):
    import tensorflow as tf

    from convert import cell
    from convert.tflite_info import ConversionError, check_full_int8, inspect
    from train.model import load_model

    cm = cell.explicit_model(load_model(small_model / "model.keras"), batch_size=1)
    data = tf.lite.TFLiteConverter.from_keras_model(cm).convert()  # plain float conversion
    with pytest.raises(ConversionError, match="float32"):
        check_full_int8(inspect(data))
