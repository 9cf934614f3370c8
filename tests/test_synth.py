"""Synthetic training speakers (train/synth.py): real flite/festival output, read by the usual loader."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from train import data as fsdd
from train import synth


@pytest.mark.skipif(shutil.which("flite") is None, reason="Debian's flite is not installed")
def test_generates_every_voice_digit_and_variant_and_reuses_the_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(synth, "available_voices", lambda engines=synth.DEFAULT_ENGINES: ["flite-slt", "flite-kal"])
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
    monkeypatch.setattr(synth, "available_voices", lambda engines=synth.DEFAULT_ENGINES: [])
    with pytest.raises(synth.SynthError, match="flite"):
        synth.generate(synth.SynthConfig(variants=1), tmp_path / "none", progress=False)


needs_piper = pytest.mark.skipif(not synth.piper_voices(), reason="the piper extra is not installed (pip install -e '.[piper]')")


@needs_piper
def test_piper_speaks_each_digit_repeatably_with_rate_and_pitch(tmp_path):
    """The neural voice: every digit and variant, speech-like level and length at 8 kHz, the same samples when
    generated again (no generator noise), and the drawn rate and pitch acting on the audio."""
    cfg = synth.SynthConfig(variants=2, seed=4, engines=("piper",))
    out = synth.generate(cfg, tmp_path / "a", progress=False)
    ds = fsdd.load_dataset(out, sr=8000, strict=False, progress=False)
    assert len(ds.clips) == 10 * 2 and not ds.errors and set(ds.speakers) == {"piper-joe"}
    assert np.bincount(ds.labels).tolist() == [2] * 10
    assert all(0.2 * 8000 < len(c.samples) < 1.5 * 8000 and np.abs(c.samples).max() > 20000 for c in ds.clips)
    again = synth.generate(cfg, tmp_path / "b", progress=False)
    for f in sorted(out.glob("*.wav")):
        assert f.read_bytes() == (again / f.name).read_bytes(), f.name
    model = synth.load_piper("joe")
    base = synth.piper_say(model, "seven")
    slow = synth.piper_say(model, "seven", stretch=1.3)
    high = synth.piper_say(model, "seven", pitch=1.25)
    assert len(slow) > 1.15 * len(base)
    assert abs(len(high) - len(base)) < 0.1 * len(base)  # pitch keeps the duration

    def centroid(x):
        spec = np.abs(np.fft.rfft(x.astype(float)))
        return float((spec * np.arange(len(spec))).sum() / spec.sum() / len(x) * 8000)

    assert centroid(high) > 1.1 * centroid(base)


def test_engines_are_checked_and_a_missing_piper_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="flite, festival, piper"):
        synth.SynthConfig(engines=("espeak",))
    assert synth.parse_engines(" piper,flite,piper ") == ("piper", "flite")
    with pytest.raises(ValueError, match="comma-separated"):
        synth.parse_engines("flite,espeak-ng")
    monkeypatch.setattr(synth, "piper_voices", lambda: [])
    with pytest.raises(synth.SynthError, match=r"pip install -e '\.\[piper\]'"):
        synth.generate(synth.SynthConfig(variants=1, engines=("piper",)), tmp_path / "none", progress=False)
    # the default engines' cache key is the one from before engines could be chosen (the same fields, no engines)
    import hashlib
    import json
    from dataclasses import asdict

    cfg = synth.SynthConfig()
    old = {"v": synth.VERSION, **{k: v for k, v in asdict(cfg).items() if k != "engines"},
           "voices": synth.available_voices()}
    assert synth.cache_dir(cfg).name == hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()[:16]
    assert synth.cache_dir(cfg) != synth.cache_dir(synth.SynthConfig(engines=("flite", "festival", "piper")))


def test_synth_engines_on_the_training_command_line(tmp_path, monkeypatch):
    """`python -m train --synth-engines` is checked before any data is read."""
    from train.__main__ import main

    common = ["--data-dir", str(tmp_path / "unread"), "--out", str(tmp_path / "m")]
    with pytest.raises(SystemExit, match="give both"):
        main([*common, "--synth-engines", "piper"])
    with pytest.raises(SystemExit, match="comma-separated list of flite, festival, piper"):
        main([*common, "--synth", "2", "--synth-engines", "espeak"])
    monkeypatch.setattr(synth, "piper_voices", lambda: [])
    with pytest.raises(SystemExit, match="piper engine is not installed"):
        main([*common, "--synth", "2", "--synth-engines", "flite,piper"])


@pytest.mark.skipif(shutil.which("flite") is None, reason="Debian's flite is not installed")
def test_runs_started_together_share_the_cache(tmp_path, monkeypatch):
    """Two generations into one folder at once (parallel benchmark folds): one writes, the other waits and
    reuses it; both see every clip."""
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(synth, "available_voices", lambda engines=synth.DEFAULT_ENGINES: ["flite-slt"])
    calls = []
    real = synth._flite
    monkeypatch.setattr(synth, "_flite", lambda *a: (calls.append(a[0]), real(*a)))
    cfg = synth.SynthConfig(variants=1, seed=2)
    with ThreadPoolExecutor(2) as ex:
        outs = list(ex.map(lambda _: synth.generate(cfg, tmp_path / "shared", progress=False), range(2)))
    assert outs[0] == outs[1] and calls == ["flite-slt"] and len(list(outs[0].glob("*.wav"))) == 10


@needs_piper
def test_training_with_the_neural_voice(fsdd_dir, tmp_path, monkeypatch):
    """`python -m train --synth 1 --synth-engines piper`: the neural voice's ten clips join the training part
    (and only it: the test clips and their count stay FSDD's)."""
    import json

    from train.__main__ import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "m"
    args = ["--data-dir", str(fsdd_dir), "--out", str(out), "--limit", "2", "--epochs", "1", "--augment", "0",
            "--lstm-units", "8", "--dense-units", "8", "--no-progress", "--no-reject"]
    assert main([*args, "--synth", "1", "--synth-engines", "piper"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_synthetic_clips"] == 10 and m["n_test"] == 300
    wavs = list((tmp_path / "cache").rglob("*_piper-joe_0.wav"))
    assert len(wavs) == 10
