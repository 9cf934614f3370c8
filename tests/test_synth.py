"""Synthetic training speakers (train/synth.py): real flite/festival output, read by the usual loader."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from train import data as fsdd
from train import synth


@pytest.mark.skipif(shutil.which("flite") is None, reason="Debian's flite is not installed")
def test_generates_every_voice_digit_and_variant_and_reuses_the_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(synth, "available_voices", lambda: ["flite-slt", "flite-kal"])
    cfg = synth.SynthConfig(variants=2, seed=3)
    out = synth.generate(cfg, tmp_path / "syn", progress=False)
    ds = fsdd.load_dataset(out, sr=8000, strict=False, progress=False)
    assert len(ds.clips) == 2 * 10 * 2 and not ds.errors
    assert sorted(set(ds.speakers)) == ["flite-kal", "flite-slt"]
    assert np.bincount(ds.labels).tolist() == [4] * 10
    assert all(len(c.samples) > 1600 and np.abs(c.samples).max() > 1000 for c in ds.clips)  # speech, not silence
    stamp = (out / "done.json").stat().st_mtime_ns
    assert synth.generate(cfg, out, progress=False) == out and (out / "done.json").stat().st_mtime_ns == stamp


def test_draws_are_seeded_per_voice_and_digit():
    a = synth._draws(synth.SynthConfig(seed=1), "flite-awb", 4)
    assert np.array_equal(a, synth._draws(synth.SynthConfig(seed=1), "flite-awb", 4))
    assert not np.array_equal(a, synth._draws(synth.SynthConfig(seed=1), "flite-awb", 5))
    assert np.all((a[:, 0] >= 0.8) & (a[:, 0] <= 1.3))


def test_no_voice_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(synth, "available_voices", lambda: [])
    with pytest.raises(synth.SynthError, match="flite"):
        synth.generate(synth.SynthConfig(variants=1), tmp_path / "none", progress=False)
