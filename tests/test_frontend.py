"""The C front end against the Python reference (librosa), element for element.

Reference: convert.reference.Reference.features (librosa log-mel, the
max-energy window rule, the folded int8 quantization). Device: the firmware's
sd_frontend.c built for the host, fed through firmware/tests/frontend/frontend_main.c.
Targets (issue 4): >= 99.9 % identical int8 elements, never more than 1 LSB apart.
Also: the generated front-end tables (convert/firmware_gen.py) and the exact
transformations they rely on (window pre-scaled by 2**-15, half window table).
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
        assert max_lsb <= 1 and identical >= 0.99, (name, identical, max_lsb)


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
    assert max_lsb <= 1
    assert identical >= 0.999


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
    assert facts["window_half"] and "#define SD_WINDOW_HALF 1" in header
    assert "typedef uint8_t sd_mel_index_t;" in header


def test_window_table_is_the_reference_window_exactly():
    """The device computes x * (w * 2**-15); the reference (x * 2**-15) * w: identical for every int16 x."""
    from convert.firmware_gen import frame_window
    from train.features import DEFAULT_CONFIG, hann_window

    w = hann_window(DEFAULT_CONFIG)
    stored, half = frame_window(w)
    n = len(w)
    assert half and len(stored) == n // 2 + 1 and stored.dtype == np.float32
    full = np.concatenate([stored, stored[1 : n // 2][::-1]])  # w[n] = w[N - n]
    assert np.array_equal(full * np.float32(2.0**15), w)
    x = np.arange(-32768, 32768, dtype=np.int16).astype(np.float32)[:, None]  # every int16
    y = x * np.float32(1.0 / 32768.0)
    for a in range(0, n, 64):  # every window value
        ref = y * w[a : a + 64]
        dev = x * full[a : a + 64]
        assert np.array_equal(ref.view(np.uint32), dev.view(np.uint32)), a


def test_window_table_falls_back_or_refuses():
    from convert.firmware_gen import frame_window, index_type

    w = np.hanning(16).astype(np.float32)  # symmetric (not periodic): w[n] != w[16 - n]
    stored, half = frame_window(w)
    assert not half and len(stored) == 16
    w2 = np.full(8, 1.0, np.float32)
    w2[3] = np.float32(1e-36)  # * 2**-15 is subnormal
    with pytest.raises(ValueError, match="cannot be folded"):
        frame_window(w2)
    assert index_type(np.array([0, 255]), np.array([3])) == "uint8_t"
    assert index_type(np.array([0, 256])) == "uint16_t"
    with pytest.raises(ValueError):
        index_type(np.array([70000]))
