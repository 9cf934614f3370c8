"""benchmarks.run's nested-validation section: its verdict rule and its tables, on fold results made up here
(a real fold trains for minutes; `make bench` runs them)."""

from __future__ import annotations

import json

import pytest

from benchmarks import run as B


@pytest.fixture
def fake_folds(tmp_path, monkeypatch):
    """loso_fold stand-in: int8 accuracy = table[recipe args][speaker] + seed offset; writes metrics.json."""
    data = tmp_path / "fsdd"
    data.mkdir()
    (data / "speakers.json").write_text(json.dumps({"ann": {}, "bob": {}, "cy": {}}))
    monkeypatch.setattr(B, "SCRATCH", tmp_path / "bench")
    monkeypatch.setattr(B, "LOSO_ONLY", None)
    calls = []

    def fold(data_args, sp, out, train_args=(), *, int8=True):
        args = list(train_args)
        seed = int(args[args.index("--seed") + 1])
        lever = args[4:]
        base = {"ann": 0.70, "bob": 0.80, "cy": 0.90}[sp] + 0.01 * seed
        gain = {(): 0.0, ("--good",): 0.05, ("--noisy",): (0.04, -0.03, 0.02)[seed]}[tuple(lever)]
        from pathlib import Path

        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "metrics.json").write_text(json.dumps({"val_speaker": f"v{seed}"}))
        calls.append((sp, seed, tuple(lever), out))
        return {"int8": base + gain}

    monkeypatch.setattr(B, "loso_fold", fold)
    return ["--data-dir", str(data)], calls


def test_nested_verdict_needs_every_seed_and_more_than_the_spread(fake_folds):
    data_args, calls = fake_folds
    recipes = (("release", ()), ("good lever", ("--good",)), ("noisy lever", ("--noisy",)))
    md, res = B.bench_nested(data_args, seeds=(0, 1, 2), recipes=recipes)
    assert len(calls) == 3 * 3 * 3 and len({c[3] for c in calls}) == 27  # one folder per recipe, seed and speaker
    rel, good, noisy = (res["recipes"][n] for n, _ in recipes)
    assert rel["means"]["ann"] == pytest.approx(0.71) and rel["mean"] == pytest.approx(0.81)
    assert rel["seed_means"] == pytest.approx([0.80, 0.81, 0.82])
    assert good["diff_vs_release"] == pytest.approx([0.05] * 3) and good["wins"] is True
    assert noisy["wins"] is False  # one seed lost: mean gain +1 point, but not in every seed
    assert rel["wins"] is False and set(res) == {"seeds", "recipes"}
    assert "| ann | 70.00 % (v0) | 71.00 % (v1) | 72.00 % (v2) | **71.00 %** | 1.00 |" in md
    assert "| 1: good lever | `--good` | **86.00 %** | 1.00 | +5.00, +5.00, +5.00 (against 0) | ann 76.00 % | yes |" in md
    assert "| 2: noisy lever | `--noisy` |" in md and md.count("| no |") == 1


def test_a_lever_is_judged_against_the_recipe_it_extends():
    """A recipe that is another's arguments and more is a lever on it: compared with the longest such recipe
    (a lever on a lever with the first lever), not with the digits-only baseline; recipes that extend none of
    the others are compared with the first."""
    from train.release import RECIPE_ARGS

    recipes = (("digits", ()), ("other", ("--augment", "0")), ("release", RECIPE_ARGS),
               ("lever", (*RECIPE_ARGS, "--synth", "20")), ("lever on it", (*RECIPE_ARGS, "--synth", "20", "--x")),
               ("other lever", (*RECIPE_ARGS, "--y")), ("on other", ("--augment", "0", "--z")))
    assert [B._against(recipes, r) for r in range(len(recipes))] == [0, 0, 0, 2, 3, 2, 1]
    assert [B._against(B.NESTED_RECIPES, r) for r in range(len(B.NESTED_RECIPES))] == [0, 0, 1, 2]


def test_a_fold_made_before_a_recorded_neutral_change_is_reused(tmp_path, monkeypatch):
    """loso_fold reuses a fold whose fold.json has the same arguments and code the current code follows from by
    train/release.py's NEUTRAL_CHANGES; with any other code it would train again (here: refuses to run)."""
    from train import release as RL

    monkeypatch.setattr(RL, "recipe_code", lambda: "new")
    monkeypatch.setattr(RL, "NEUTRAL_CHANGES", {"new": ("old", "checked: identical")})
    out = tmp_path / "fold"
    out.mkdir()
    key = {**B.fold_key("ann", ("--seed", "1"), True), "code": "old"}
    (out / "fold.json").write_text(json.dumps({"key": key, "result": {"int8": 0.5}}))
    monkeypatch.setattr(B, "sh", lambda *a, **k: pytest.fail("retrained a fold it should reuse"))
    assert B.loso_fold([], "ann", str(out), ("--seed", "1")) == {"int8": 0.5}
    (out / "fold.json").write_text(json.dumps({"key": {**key, "code": "older"}, "result": {"int8": 0.5}}))
    with pytest.raises(pytest.fail.Exception):
        B.loso_fold([], "ann", str(out), ("--seed", "1"))
