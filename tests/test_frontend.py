"""The C front end against the Python reference, element for element: equal.

Reference: convert.reference.Reference.features (front end v2: the integer
log-mel of train/intfront.py with its noise state, the max-energy window rule,
the integer int8 quantization). Device: the firmware's sd_frontend.c built for
the host, fed through firmware/tests/frontend/frontend_main.c. Front end v2 is
integer arithmetic on both sides, so every int8 element must be identical
(issue 19; v1's float front end agreed to 1 LSB on 99.9 %). The same
program under QEMU is tests/test_parity.py's job (the firmware on the boards).
Also: the generated front-end tables are what convert/firmware_gen.py writes.
"""

from __future__ import annotations

import struct
import subprocess

import numpy as np
import pytest

from firmware_build import GENERATED, RELEASED, build_test, generated_model_sha, require_generated

FEATURES = 16 * 80


@pytest.fixture(scope="module")
def frontend_bin():
    require_generated()
    return build_test("tests/frontend/frontend_main.c")


@pytest.fixture(scope="module")
def reference():
    from convert.reference import Reference

    require_generated()
    return Reference.from_dir(RELEASED)


def run_c(binary, clips, chunk=0):
    blob = b"".join(struct.pack("<II", len(c), chunk) + np.asarray(c, "<i2").tobytes() for c in clips)
    r = subprocess.run([str(binary)], input=blob, capture_output=True, timeout=300, check=True)
    out, rec = r.stdout, 4 + FEATURES
    assert len(out) == rec * len(clips)
    seen = [struct.unpack_from("<I", out, k * rec)[0] for k in range(len(clips))]
    feats = np.stack([np.frombuffer(out, np.int8, FEATURES, k * rec + 4).reshape(16, 80) for k in range(len(clips))])
    return seen, feats


def stress_clips():
    rng = np.random.default_rng(7)
    t = np.arange(4000) / 8000
    return {
        "silence": np.zeros(4000, np.int16),
        "full_scale_noise": rng.integers(-32768, 32768, 4000).astype(np.int16),
        "clipped_sine": np.clip(np.round(80000 * np.sin(2 * np.pi * 440 * t)), -32768, 32767).astype(np.int16),
        "dc_offset": (12000 + np.round(2000 * np.sin(2 * np.pi * 300 * t))).astype(np.int16),
        "full_scale_dc": np.full(4000, -32768, np.int16),
        "short_300ms": np.round(9000 * np.sin(2 * np.pi * 700 * t[:2400])).astype(np.int16),
        "tiny_5_samples": np.array([100, -200, 300, -400, 500], np.int16),
        "long_2_3s_burst": np.concatenate([np.zeros(12000, np.int16), rng.integers(-20000, 20000, 3000).astype(np.int16),
                                           np.zeros(3400, np.int16)]),
    }


def compare(dev, ref):
    diff = np.abs(dev.astype(np.int32) - ref.astype(np.int32))
    return float(np.mean(diff == 0)), int(diff.max())


def test_generated_sources_match_released_model(reference):
    assert generated_model_sha() == reference.sha256


def test_stress_signals(frontend_bin, reference):
    clips = stress_clips()
    seen, dev = run_c(frontend_bin, list(clips.values()))
    for (name, x), n, d in zip(clips.items(), seen, dev):
        assert n == len(x), name
        ref = reference.features(x)
        identical, max_lsb = compare(d, ref)
        assert identical == 1.0, (name, identical, max_lsb)


def test_chunking_does_not_matter(frontend_bin):
    clips = list(stress_clips().values())
    _, whole = run_c(frontend_bin, clips, 0)
    for chunk in (1, 37, 256, 512):
        _, parts = run_c(frontend_bin, clips, chunk)
        assert np.array_equal(whole, parts), chunk


def test_test_split_feature_parity(frontend_bin, reference, fsdd_dir):
    from train import data as fsdd

    ds = fsdd.load_dataset(fsdd_dir)
    _, te = fsdd.split_indices(ds, "official")
    clips = [ds.clips[i].samples for i in te]
    _, dev = run_c(frontend_bin, clips, 512)
    ref = np.stack([reference.features(x) for x in clips])
    identical, max_lsb = compare(dev, ref)
    print(f"feature parity on {len(clips)} clips: {identical:.5%} identical, max {max_lsb} LSB")
    assert np.array_equal(dev, ref)


# ---- the generated tables ------------------------------------------------------------------------
def test_generated_frontend_tables_are_current(tmp_path):
    """firmware/generated/sd_frontend_* are what convert/firmware_gen.py writes for the released config."""
    import json

    from convert.firmware_gen import generate_frontend_c
    from train.features import FrontendConfig

    require_generated()
    cfg = FrontendConfig.load(RELEASED / "frontend.json")
    inp = json.loads((RELEASED / "report.json").read_text())["input"]
    header = (GENERATED / "sd_frontend_config.h").read_text()
    stamp = header.splitlines()[0].removeprefix("/* ")
    assert stamp.endswith(f"model sha256 {generated_model_sha()}"), "front-end tables from another model's conversion"
    facts = generate_frontend_c(cfg, inp["scale"], inp["zero_point"], tmp_path, stamp=stamp)
    for name in ("sd_frontend_config.h", "sd_frontend_tables.c"):
        assert (tmp_path / name).read_text() == (GENERATED / name).read_text(), name
    assert facts["version"] == 2 and "#define SD_FRONTEND_VERSION 2" in header
    assert "typedef uint8_t sd_mel_index_t;" in header


def test_index_type_and_packing():
    from convert.firmware_gen import index_type, packed16

    assert index_type(np.array([0, 255]), np.array([3])) == "uint8_t"
    assert index_type(np.array([0, 256])) == "uint16_t"
    with pytest.raises(ValueError):
        index_type(np.array([70000]))
    assert packed16(np.array([[1, -1], [-32768, 32767]])).tolist() == [0xFFFF0001, 0x7FFF8000]
    with pytest.raises(ValueError):
        packed16(np.array([[40000, 0]]))


def test_v1_config_is_refused_by_the_generator(tmp_path):
    import dataclasses

    from convert.firmware_gen import generate_frontend_c
    from train.features import FrontendConfig

    v1 = dataclasses.replace(FrontendConfig.load(RELEASED / "frontend.json"), version=1)
    with pytest.raises(ValueError, match=r"v1 \(float\) is not built by this firmware"):
        generate_frontend_c(v1, 0.05, 0, tmp_path, stamp="test")
