"""Short training runs: the CLI writes its artefacts, beats chance, and is reproducible."""

from __future__ import annotations

import json

import pytest

from train.__main__ import main as train_main
from train.model import ModelConfig
from train.trainer import TrainConfig, run

SMALL = dict(mcfg=ModelConfig(lstm_units=32, dense_units=32), tcfg=TrainConfig(epochs=25, patience=25, seed=3))


def test_cli_writes_artefacts_and_beats_chance(fsdd_dir, tmp_path, capsys):
    out = tmp_path / "run"
    rc = train_main(["--data-dir", str(fsdd_dir), "--out", str(out), "--epochs", "25", "--patience", "25",
                     "--lstm-units", "32", "--dense-units", "32", "--limit", "4", "--no-progress", "--no-reject"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    for name in ("model.keras", "frontend.json", "metrics.json", "training_curve.png", "confusion_matrix.png"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("test_accuracy", "train_accuracy", "split", "epochs", "seconds"):
        assert key in metrics
    assert metrics["split"] == "official" and summary["test_accuracy"] == metrics["test_accuracy"]
    # 240 training clips (4 per digit and speaker), 25 epochs of a small LSTM: far above the 10 % of chance
    assert metrics["test_accuracy"] >= 0.6, metrics["test_accuracy"]
    assert sum(map(sum, metrics["confusion_matrix"])) == metrics["n_test"]


def test_same_seed_same_metrics(fsdd_dir):
    a = run(data_dir=fsdd_dir, save=False, progress=False, limit_per_speaker=2, **SMALL)
    b = run(data_dir=fsdd_dir, save=False, progress=False, limit_per_speaker=2, **SMALL)
    assert a["history"] == b["history"]
    assert (a["test_accuracy"], a["train_accuracy"]) == (b["test_accuracy"], b["train_accuracy"])


def test_cli_bad_data_dir_is_a_clear_error(tmp_path, capsys):
    rc = train_main(["--data-dir", str(tmp_path / "missing"), "--out", str(tmp_path / "o"), "--no-progress"])
    assert rc == 2
    assert "missing" in capsys.readouterr().err


def test_cli_bad_split(fsdd_dir, tmp_path, capsys):
    rc = train_main(["--data-dir", str(fsdd_dir), "--split", "loso:nobody", "--out", str(tmp_path / "o"), "--no-progress"])
    assert rc == 2
    assert "nobody" in capsys.readouterr().err


def test_help_lists_options(capsys):
    with pytest.raises(SystemExit):
        train_main(["--help"])
    text = capsys.readouterr().out
    for opt in ("--data-dir", "--split", "--epochs", "--seed", "--out"):
        assert opt in text


def test_augmented_copies_come_from_the_training_speakers_only(fsdd_dir):
    import numpy as np

    from train import data as fsdd
    from train.augment import AugmentConfig
    from train.trainer import augmented_features, stratified_holdout

    tiny = dict(mcfg=ModelConfig(lstm_units=16, dense_units=16), tcfg=TrainConfig(epochs=2, patience=2, seed=1))
    m = run(data_dir=fsdd_dir, split="loso:theo", save=False, progress=False, limit_per_speaker=1,
            acfg=AugmentConfig(copies=2, seed=1), **tiny)
    ds = fsdd.load_dataset(fsdd.resolve_data_dir(fsdd_dir), sr=8000, strict=False, progress=False)
    from train.trainer import limit_training_clips

    ds = ds.subset(limit_training_clips(ds, 1))
    train_idx, test_idx = fsdd.split_indices(ds, "loso:theo")
    fit_rel, _ = stratified_holdout(ds.labels[train_idx], 0.1, 1)
    assert m["n_extra"] == 2 * len(fit_rel)  # two copies of each clip early stopping does not hold out
    assert m["augment"]["copies"] == 2 and m["clip_norm"] == "band-mean"
    assert all(ds.clips[i].speaker != "theo" for i in train_idx) and len(test_idx) > 0
    # the copies are reproducible and differ from the clips they came from
    from train import features as F

    cfg = F.fit_normalization(F.batch_logmel([ds.clips[i].samples for i in train_idx], F.DEFAULT_CONFIG), F.DEFAULT_CONFIG)
    a, ya = augmented_features(ds, train_idx[:4], cfg, AugmentConfig(copies=1, seed=1), progress=False)
    b, _ = augmented_features(ds, train_idx[:4], cfg, AugmentConfig(copies=1, seed=1), progress=False)
    assert np.array_equal(a, b) and np.array_equal(ya, ds.labels[train_idx[:4]])
    orig = F.normalize(F.batch_logmel([ds.clips[i].samples for i in train_idx[:4]], cfg), cfg)
    assert not np.allclose(a, orig)


def test_nested_speaker_validation_holds_one_training_voice_out(fsdd_dir, capsys):
    import numpy as np

    from train import data as fsdd
    from train.data import Dataset
    from train.trainer import holdout, limit_training_clips, validation_speaker

    ds = fsdd.load_dataset(fsdd.resolve_data_dir(fsdd_dir), sr=8000, strict=False, progress=False)
    ds = ds.subset(limit_training_clips(ds, 2))
    train_idx, _ = fsdd.split_indices(ds, "loso:theo")
    speakers = sorted({ds.clips[i].speaker for i in train_idx})
    assert "theo" not in speakers and len(speakers) >= 2
    seen = set()
    for seed in range(len(speakers)):  # "auto" rotates the held-out voice with the seed
        tcfg = TrainConfig(seed=seed, val_speaker="auto")
        fit, val = holdout(ds, train_idx, tcfg)
        sp = validation_speaker(ds, train_idx, tcfg)
        seen.add(sp)
        assert {ds.clips[i].speaker for i in val} == {sp}
        assert sp not in {ds.clips[i].speaker for i in fit}  # never fitted
        assert sorted(np.concatenate([fit, val]).tolist()) == sorted(train_idx.tolist())
    assert seen == set(speakers)
    fit, val = holdout(ds, train_idx, TrainConfig(val_speaker=speakers[1]))
    assert {ds.clips[i].speaker for i in val} == {speakers[1]}
    with pytest.raises(ValueError, match="'theo' is not a training speaker"):
        holdout(ds, train_idx, TrainConfig(val_speaker="theo"))  # the test speaker cannot validate
    # one speaker only: said plainly, and the CLI stops with it
    one = Dataset(root=ds.root, clips=[c for c in ds.clips if c.speaker == speakers[0]])
    with pytest.raises(ValueError, match="at least two training speakers; the training part has 1"):
        holdout(one, np.arange(len(one)), TrainConfig(val_speaker="auto"))
    rc = train_main(["--data-dir", str(fsdd_dir), "--split", "loso:theo", "--val-speaker", "theo", "--limit", "1",
                     "--epochs", "1", "--no-progress", "--augment", "0", "--no-reject"])
    assert rc == 2 and "--val-speaker 'theo' is not a training speaker" in capsys.readouterr().err


def test_the_cli_adds_the_rejection_classes_only_when_asked():
    from train.__main__ import build_parser

    p = build_parser()
    assert p.parse_args([]).reject is False  # not the release recipe: it calls unseen voices `other`
    assert p.parse_args(["--reject"]).reject is True and p.parse_args(["--no-reject"]).reject is False


def test_frame_pool_switch_makes_1_s_windows_and_needs_front_end_2():
    from train import features as F
    from train.__main__ import build_parser, frontend_config

    p = build_parser()
    assert frontend_config(p.parse_args([]), F) == F.FrontendConfig()
    pooled = frontend_config(p.parse_args(["--frame-pool", "2"]), F)
    assert (pooled.frame_pool, pooled.clip_samples, pooled.window_frames, pooled.n_frames) == (2, 8000, 32, 16)
    with pytest.raises(SystemExit, match="needs the integer front end"):
        frontend_config(p.parse_args(["--frame-pool", "2", "--frontend", "1"]), F)
