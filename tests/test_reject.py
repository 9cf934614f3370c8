"""The `noise` and `other` classes (train/reject.py): their clips, their splits, and a model trained with them.

Uses a small FSDD-shaped set and a small noise folder made here (tests/conftest.py), so it runs anywhere; the
flite words join when flite is installed.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_synthetic_fsdd, write_wav
from train import data as D
from train import reject as R

SMALL = R.RejectConfig(noise_train=60, other_train=60, noise_test=20, other_test=20, word_variants=1)


def make_noise_root(root: Path) -> Path:
    """noise/ (two training recordings, one held-out, one validation), speech/ (one sentence per speaker), rir/ (one
    room)."""
    rng = np.random.default_rng(5)
    for name in ("fan.wav", "street.wav", R.HELD_OUT_NOISE[0], R.VALIDATION_NOISE[0]):
        write_wav(root / "noise" / name, (rng.standard_normal(8000 * 2) * 500).astype(np.int16))
    t = np.arange(8000 * 2) / 8000
    for name in ("sb_spk1_snt1.wav", R.TEST_SPEECH_PREFIX + "snt1.wav"):
        write_wav(root / "speech" / name, (3000 * np.sin(2 * np.pi * 180 * t) * np.sin(2 * np.pi * 3 * t)).astype(np.int16))
    h = np.zeros(800)
    h[0], h[200], h[500] = 1.0, 0.4, 0.2
    write_wav(root / "rir" / "room.wav", (h * 30000).astype(np.int16))
    return root


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    base = tmp_path_factory.mktemp("reject")
    fsdd = make_synthetic_fsdd(base / "fsdd", per_digit=6)
    return D.load_dataset(fsdd), make_noise_root(base / "noise")


def test_sources_keep_held_out_recordings_and_speakers_for_test(small):
    _, root = small
    tr, te, va = R.Sources.load(root, "train"), R.Sources.load(root, "test"), R.Sources.load(root, "val")
    assert {n for n, _ in tr.noise} == {"fan.wav", "street.wav"}
    assert {n for n, _ in te.noise} == {R.HELD_OUT_NOISE[0]}
    assert {n for n, _ in va.noise} == {R.VALIDATION_NOISE[0]}  # trains nothing: choices are made on it
    assert not set(R.HELD_OUT_NOISE) & set(R.VALIDATION_NOISE)
    assert [R.noise_split(n) for n in ("fan.wav", R.HELD_OUT_NOISE[1], R.VALIDATION_NOISE[1])] == ["train", "test", "val"]
    assert [n for n, _ in tr.speech] == ["sb_spk1_snt1.wav"] and [n for n, _ in te.speech] == [R.TEST_SPEECH_PREFIX + "snt1.wav"]
    assert R.augment_pool(root).noises and R.augment_pool(root).rirs and R.augment_pool(None) is None
    words = {w: R.word_split(w) for w in R.OTHER_WORDS}
    assert {"train", "test"} == set(words.values())
    homophones = {"to", "too", "two", "for", "four", "fore", "won", "one", "ate", "eight", "oh", "owe", "nein"}
    assert not homophones & {w for phrase in R.OTHER_WORDS for w in phrase.split()}


def test_extend_adds_two_labels_and_keeps_each_clip_in_its_split(small):
    ds, root = small
    ext, counts = R.extend(ds, "official", SMALL, root)
    assert ext.names == tuple(str(d) for d in range(10)) + ("noise", "other")
    made = [c for c in ext.clips if c.origin is not None]
    assert len(made) == 60 + 60 + 20 + 20 and sum(counts.values()) == len(made)
    assert {c.split for c in made} == {"train", "test"}
    tr, te = D.split_indices(ext, "official")
    assert all(ext.clips[i].split == "test" for i in te if ext.clips[i].origin)
    # under LOSO the generated clips keep their part, and the held-out speaker's audio makes only test clips
    sp = ds.clips[0].speaker
    ext2, _ = R.extend(ds, f"loso:{sp}", SMALL, root)
    tr2, te2 = D.split_indices(ext2, f"loso:{sp}")
    held = {c.samples.tobytes() for c in ds.clips if c.speaker == sp}
    for i in tr2:
        c = ext2.clips[i]
        if c.origin == "reject:other:reversed":
            assert c.samples[::-1].tobytes() not in held
    assert any(ext2.clips[i].origin == "reject:other:reversed" and ext2.clips[i].samples[::-1].tobytes() in held
               for i in te2)
    # the same seed makes the same clips; another seed others
    again, _ = R.extend(ds, "official", SMALL, root)
    assert all(np.array_equal(a.samples, b.samples) for a, b in zip(ext.clips, again.clips))
    other, _ = R.extend(ds, "official", R.RejectConfig(**{**SMALL.to_dict(), "seed": 1}), root)
    assert not all(np.array_equal(a.samples, b.samples) for a, b in zip(ext.clips[len(ds):], other.clips[len(ds):]))


def test_noise_clips_are_int16_at_the_drawn_levels_and_without_a_folder_synthetic_only(small):
    ds, root = small
    rng = np.random.default_rng(0)
    src = R.Sources.load(root, "train")
    for kind, _ in R.NOISE_KINDS:
        x = R.noise_clip(kind, rng, SMALL, src)
        assert x.dtype == np.int16 and 4000 <= len(x) <= int(1.2 * 8000)
        rms = np.sqrt(np.mean(x.astype(np.float64) ** 2))
        assert rms <= 3.5 if kind == "silence" else 5 <= rms <= 3000 * 1.3, (kind, rms)
    ext, counts = R.extend(ds, "official", SMALL, None)
    kinds = {k.split("/", 1)[1] for k in counts}
    assert "noise:real" not in kinds and "noise:mix" not in kinds and "other:sentence" not in kinds
    assert "noise:white" in kinds and "other:reversed" in kinds


def test_bad_reject_configs_say_what_is_wrong():
    with pytest.raises(ValueError, match="noise_train must be a positive"):
        R.RejectConfig(noise_train=0)
    with pytest.raises(ValueError, match="seconds"):
        R.RejectConfig(seconds=(1.0, 0.5))
    with pytest.raises(ValueError, match="unknown kinds"):
        R.RejectConfig(noise_kinds=(("thunder", 1.0),))
    assert R.RejectConfig.from_dict(SMALL.to_dict()) == SMALL


def test_noise_variants_vary_the_training_recordings_only(small):
    """--noise-variants: varied copies (speed, tilt, loudness contour) of each training recording, seeded, at the
    recording's level; the test and validation recordings are never varied or added."""
    _, root = small
    plain, varied = R.Sources.load(root, "train"), R.Sources.load(root, "train", 3, seed=7)
    assert [n for n, _ in varied.noise] == [n for n, _ in plain.noise] + [
        f"{n}~v{k}" for n, _ in plain.noise for k in range(3)]
    assert R.Sources.load(root, "test", 3).noise[0][0] == R.HELD_OUT_NOISE[0] and len(R.Sources.load(root, "test", 3).noise) == 1
    again = R.Sources.load(root, "train", 3, seed=7)
    other_seed = R.Sources.load(root, "train", 3, seed=8)
    src = dict(plain.noise)
    for (name, x), (_, y), (_, z) in zip(varied.noise[2:], again.noise[2:], other_seed.noise[2:]):
        base = src[name.split("~")[0]]
        assert np.array_equal(x, y) and not np.array_equal(x, z)
        assert 0.6 <= len(base) / len(x) <= 1.6 + 1e-3  # the speed
        rms = lambda a: float(np.sqrt(np.mean(a * a)))
        assert rms(x) == pytest.approx(rms(base), rel=1e-6)
        assert len(x) != len(base) or not np.allclose(x, base)
    # the transform itself: a 500 Hz tone played 1.25x as fast lands at 625 Hz
    t = np.arange(8000) / 8000
    rng = np.random.default_rng(0)
    speed = float(np.exp(np.random.default_rng(0).uniform(np.log(0.6), np.log(1.6))))
    y = R.vary_noise(np.sin(2 * np.pi * 500 * t), rng)
    peak = np.argmax(np.abs(np.fft.rfft(y))) * 8000 / len(y)
    assert peak == pytest.approx(500 * speed, abs=8000 / len(y) + 1)
    assert R.augment_pool(root, 2).noises and len(R.augment_pool(root, 2).noises) == 3 * len(R.augment_pool(root).noises)
    # the config: written only when used, checked, and the training clips change with it
    assert "noise_variants" not in SMALL.to_dict()
    v = R.RejectConfig(**{**SMALL.to_dict(), "noise_variants": 2})
    assert v.to_dict()["noise_variants"] == 2 and R.RejectConfig.from_dict(v.to_dict()) == v
    with pytest.raises(ValueError, match="noise_variants must be a number of copies"):
        R.RejectConfig(noise_variants=-1)
    a = R.make_clips("train", [], R.RejectConfig(**{**SMALL.to_dict(), "noise_kinds": (("real", 1.0),)}), root)
    b = R.make_clips("train", [], R.RejectConfig(**{**SMALL.to_dict(), "noise_kinds": (("real", 1.0),),
                                                  "noise_variants": 2}), root)
    assert len(a) == len(b) and not all(np.array_equal(p[0], q[0]) for p, q in zip(a, b))


def test_noise_variants_needs_reject(tmp_path):
    from train.__main__ import main

    with pytest.raises(SystemExit, match="--noise-variants varies the training noise of --reject"):
        main(["--data-dir", str(tmp_path / "unread"), "--out", str(tmp_path / "m"), "--noise-variants", "2"])


def test_reject_refuses_a_folder_per_label_and_existing_names(tmp_path, small):
    ds, root = small
    words = tmp_path / "w"
    for lab in ("yes", "no"):
        for s in ("ann", "bob", "cy"):
            write_wav(words / lab / f"{s}_nohash_0.wav", (np.ones(4000) * 100).astype(np.int16))
    wds = D.load_dataset(words)
    with pytest.raises(ValueError, match="folder for each"):
        R.extend(wds, "official", SMALL, root)


def test_training_with_reject_gives_twelve_outputs_and_scores_rejection(tmp_path, small, monkeypatch):
    """python -m train --reject end to end on the small set: labels, metrics and the saved model."""
    from train.__main__ import main

    ds, root = small
    monkeypatch.setenv("SD_NOISE_DIR", str(root))
    out = tmp_path / "m"
    assert main(["--data-dir", str(ds.root), "--reject", "--reject-clips", "60", "--epochs", "3", "--augment", "1", "--lstm-units", "16",
                 "--dense-units", "0", "--out", str(out), "--no-progress"]) == 0
    labels = json.loads((out / "labels.json").read_text())["labels"]
    assert labels[-2:] == ["noise", "other"] and len(labels) == 12
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_test"] == sum(1 for c in ds.clips if D.is_official_test(c))  # accuracy is over the digits
    t = m["reject"]["test"]
    assert t["by_kind"]["noise"]["clips"] == 12 and t["by_kind"]["other"]["clips"] == 12
    assert 0.0 <= t["rejected"] <= 1.0 and m["reject"]["config"]["noise_train"] == 60
    from train.model import load_model

    assert load_model(out / "model.keras").output_shape[-1] == 12
    # train.evaluate scores such a model on the files' digits (it used to refuse the twelve labels)
    from train.evaluate import evaluate

    ev = evaluate(out, data_dir=ds.root, progress=False)
    assert ev["clips"] == m["n_test"] and ev["labels"] == labels
    assert abs(ev["accuracy"] - m["test_accuracy"]) < 1e-9


def test_other_kinds_shape_training_clips_only(small):
    """--other-kinds: the training `other` clips follow the asked shares; the test clips keep the default mix, so
    rejection figures of two recipes compare."""
    from train.__main__ import parse_kinds

    ds, root = small
    kinds = parse_kinds("reversed=0.5,splice=0.5", "--other-kinds")
    assert kinds == (("reversed", 0.5), ("splice", 0.5))
    ext, counts = R.extend(ds, "official", R.RejectConfig(**{**SMALL.to_dict(), "other_kinds": kinds}), root)
    train_other = {k.split(":")[1] for k in counts if k.startswith("train/other")}
    assert train_other == {"reversed", "splice"}, counts
    assert {k for k in counts if k.startswith("test/other")} == {
        k for k in R.extend(ds, "official", SMALL, root)[1] if k.startswith("test/other")}
    for bad in ("reversed", "reversed=x", "=0.5"):
        with pytest.raises(SystemExit, match="KIND=SHARE"):
            parse_kinds(bad, "--other-kinds")


def test_real_rooms_augments_digits_only_training_and_needs_the_folder(small, monkeypatch):
    """--real-rooms without --reject: the digits' augmented copies draw real noises and rooms (the training
    differs from the same run without), metrics say so; asked for with no folder, a plain error."""
    from train.augment import AugmentConfig
    from train.model import ModelConfig
    from train.trainer import TrainConfig, run

    ds, root = small
    monkeypatch.setenv("SD_NOISE_DIR", str(root))
    kw = dict(data_dir=ds.root, save=False, progress=False, limit_per_speaker=1,
              acfg=AugmentConfig(copies=1, noise_prob=1.0, real_noise_share=1.0, rir_prob=1.0),
              mcfg=ModelConfig(lstm_units=8, dense_units=0), tcfg=TrainConfig(epochs=2, patience=2, seed=4))
    on, off, default = run(real_rooms=True, **kw), run(real_rooms=False, **kw), run(**kw)
    assert on["real_rooms"] is True and off["real_rooms"] is False and default["real_rooms"] is False
    assert on["history"]["loss"] != off["history"]["loss"] and off["history"] == default["history"]
    monkeypatch.setattr(R, "noise_root", lambda *a, **k: None)
    with pytest.raises(ValueError, match="--real-rooms needs the real noise"):
        run(real_rooms=True, **kw)


def test_noise_alone_adds_one_label_and_no_other_clips(small):
    """--reject-classes noise: eleven labels, no `other` clip in either split; file_labels drops just `noise`."""
    ds, root = small
    cfg = R.RejectConfig(**{**SMALL.to_dict(), "classes": ("noise",)})
    ext, counts = R.extend(ds, "official", cfg, root)
    assert ext.names == tuple(str(d) for d in range(10)) + ("noise",)
    assert counts and all(k.split("/")[1].startswith("noise:") for k in counts)
    assert R.file_labels(ext.names, {"reject": {"config": cfg.to_dict()}}) == tuple(str(d) for d in range(10))
    assert R.file_labels(ext.names + ("other",), {"reject": {"config": SMALL.to_dict()}}) == ext.names[:10]
    assert R.RejectConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="classes must be"):
        R.RejectConfig(classes=("other",))


def test_chirps_and_tones_are_the_sounds_they_name():
    """The tonal noise kinds: unit RMS and seeded; chirps put their energy above 1.2 kHz, where birds call, and
    tones put theirs in a few narrow harmonic peaks (a note's spectrum), unlike broadband noise."""
    n = 8000
    for make in (R.chirps, R.tones):
        a, b = make(n, np.random.default_rng(3)), make(n, np.random.default_rng(3))
        assert np.array_equal(a, b) and abs(float(np.sqrt(np.mean(a * a))) - 1.0) < 1e-9
    spec = lambda x: np.abs(np.fft.rfft(x)) ** 2  # noqa: E731  (1 Hz bins over one second)
    high = [spec(R.chirps(n, np.random.default_rng(s)))[1200:].sum() / spec(R.chirps(n, np.random.default_rng(s))).sum()
            for s in range(20)]
    assert np.median(high) > 0.8, high
    for s in range(20):
        p = np.sort(spec(R.tones(n, np.random.default_rng(s))))[::-1]
        assert p[:200].sum() / p.sum() > 0.5, "a few hundred 1 Hz bins should hold most of a note's energy"
        w = np.sort(spec(R.coloured(n, np.random.default_rng(s), "pink")))[::-1]
        assert w[:200].sum() / w.sum() < p[:200].sum() / p.sum()


def test_noise_kinds_switch_shapes_training_noise_only(small):
    """--noise-kinds: chirps and tones have no default share (the test clips never change); asked for, they make
    training noise clips."""
    from train.__main__ import parse_kinds

    ds, root = small
    assert all(dict(R.NOISE_KINDS)[k] == 0 for k in ("chirps", "tones", "modulated"))
    kinds = parse_kinds("chirps=0.3,tones=0.3,modulated=0.4", "--noise-kinds")
    cfg = R.RejectConfig(**{**SMALL.to_dict(), "noise_kinds": kinds, "classes": ("noise",)})
    _, counts = R.extend(ds, "official", cfg, root)
    assert {k.split(":")[1] for k in counts if k.startswith("train/noise")} == {"chirps", "tones", "modulated"}, counts
    assert not any(k.split(":")[1] in ("chirps", "tones", "modulated") for k in counts if k.startswith("test/"))
    with pytest.raises(ValueError, match="birds"):
        R.RejectConfig(noise_kinds=(("birds", 1.0),))


def test_modulated_noise_is_a_varied_non_stationary_family():
    """modulated: unit RMS and seeded; its level moves from frame to frame far more than white noise's (gusts,
    showers of impulses), and its spectral balance differs from seed to seed (a family, not one colour)."""
    n = 4 * 8000
    a, b = R.modulated(n, np.random.default_rng(3)), R.modulated(n, np.random.default_rng(3))
    assert np.array_equal(a, b) and abs(float(np.sqrt(np.mean(a * a))) - 1.0) < 1e-9

    def spread_db(x):  # 5th to 95th percentile of 32 ms frame energies
        e = np.sum(x[: len(x) // 256 * 256].reshape(-1, 256) ** 2, axis=1)
        lo, hi = np.percentile(e, [5, 95])
        return 10 * np.log10(hi / lo)

    def low_share(x):
        p = np.abs(np.fft.rfft(x)) ** 2
        return p[: len(p) // 4].sum() / p.sum()  # below 1 kHz

    fam = [R.modulated(n, np.random.default_rng(s)) for s in range(20)]
    white = R.coloured(n, np.random.default_rng(0), "white")
    assert np.median([spread_db(x) for x in fam]) > 3 * spread_db(white)
    assert np.std([low_share(x) for x in fam]) > 0.15


@pytest.mark.skipif(shutil.which("flite") is None, reason="needs Debian's flite")
def test_two_trainings_fill_the_flite_word_cache_at_once(tmp_path):
    """Benchmark folds train in parallel and share the cache of flite words: both must come through with the same
    clips and leave no temporaries (before each wrote its own temporary, one failed on the other's)."""
    import subprocess
    import sys

    code = ("import sys, numpy as np; from train import reject as R; "
            "w = R.flite_words('train', R.RejectConfig(word_variants=1)); "
            "np.save(sys.argv[1], np.concatenate(w)); print(len(w))")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    root = Path(__file__).resolve().parent.parent
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / f"{i}.npy")], cwd=root, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-500:] for o in outs]
    assert int(outs[0][0]) == int(outs[1][0]) > 0
    assert np.array_equal(np.load(tmp_path / "0.npy"), np.load(tmp_path / "1.npy"))
    left = [p.name for p in (tmp_path / "cache").rglob("*") if p.is_file() and p.name.count(".") > 1]
    assert not left, left
