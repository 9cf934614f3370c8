"""The C front end against the Python reference (librosa), element for element.

Reference: convert.reference.Reference.features (librosa log-mel, the
max-energy window rule, the folded int8 quantization). Device: the firmware's
sd_frontend.c built for the host, fed through firmware/tests/frontend/frontend_main.c.
Targets (issue 4): >= 99.9 % identical int8 elements, never more than 1 LSB apart.
"""

from __future__ import annotations

import struct
import subprocess

import numpy as np
import pytest

from firmware_build import RELEASED, build_test, generated_model_sha, require_generated

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
