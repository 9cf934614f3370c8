"""train/release.py: the seed rule, resuming, installing, and a failed step that says which."""

import json
import shutil
from pathlib import Path

import pytest

from train import release as RL

ROOT = Path(__file__).resolve().parent.parent


def fig(recall, fph):
    return {"recall": recall, "false_per_hour_real": fph}


def test_choose_best_recall_within_the_budget():
    # seed 1 recalls most but is over the budget; of the two within it, seed 2 recalls more
    assert RL.choose([fig(0.60, 6.0), fig(0.80, 30.0), fig(0.70, 12.0)], 12.0) == 2
    # equal recall: fewer false digits, then the lower seed
    assert RL.choose([fig(0.70, 6.0), fig(0.70, 0.0), fig(0.70, 0.0)], 12.0) == 1
    # none within the budget: the fewest false digits
    assert RL.choose([fig(0.9, 40.0), fig(0.5, 20.0), fig(0.6, 20.0)], 12.0) == 2
    # no real noise measured (None): counts as zero
    assert RL.choose([{"recall": 0.5, "false_per_hour_real": None}, fig(0.6, 0.0)], 0.0) == 1


def test_a_finished_seed_is_reused_and_a_changed_one_is_not(tmp_path):
    run = tmp_path / "s3"
    run.mkdir()
    (run / "model_int8.tflite").write_bytes(b"x")
    (run / "release_run.json").write_text(json.dumps(RL.run_record(3, str(tmp_path))))
    said = []
    assert RL.train_seed(3, tmp_path, str(tmp_path), said.append) == run
    assert said == [f"seed 3: reusing {run}"]
    # a run made by older code (another hash of the recipe's files) is not reused
    assert RL.run_record(3, str(tmp_path))["code"] == RL.recipe_code() and len(RL.recipe_code()) == 64
    (run / "release_run.json").write_text(json.dumps({**RL.run_record(3, str(tmp_path)), "code": "0" * 64}))
    with pytest.raises(RuntimeError, match=r"seed 3: training failed"):
        RL.train_seed(3, tmp_path, str(tmp_path), said.append)
    (run / "release_run.json").write_text(json.dumps(RL.run_record(3, str(tmp_path))))
    # another data folder is another run: it trains, and here fails with the step and the command named
    with pytest.raises(RuntimeError, match=r"seed 3: training failed .*-m train"):
        RL.train_seed(3, tmp_path, str(tmp_path / "no-such-data"), said.append)


def test_install_copies_the_run_and_records_it(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(ROOT / "models" / "released", run, ignore=shutil.ignore_patterns("release.json"))
    dest = tmp_path / "released"
    record = {"chosen_seed": 1, "rule": "r"}
    assert RL.install(run, record, dest) == {}  # not models/released: firmware/generated is left alone
    for f in RL.MODEL_FILES:
        assert (dest / f).read_bytes() == (run / f).read_bytes(), f
    assert json.loads((dest / "release.json").read_text()) == record
    (run / "report.json").unlink()
    with pytest.raises(FileNotFoundError, match="report.json"):
        RL.install(run, record, tmp_path / "other")
    assert not (tmp_path / "other").exists()


def test_cli_refuses_repeated_seeds(capsys):
    with pytest.raises(SystemExit):
        RL.main(["--seeds", "1", "1"])
    assert "repeats a seed" in capsys.readouterr().err


def test_release_args_parse_as_train_arguments():
    """The recipe is a valid `python -m train` command line: the noise class, its tonal kinds."""
    from train.__main__ import build_parser, reject_config
    from train.reject import RejectConfig

    args = build_parser().parse_args(["--out", "x", *RL.RECIPE_ARGS])
    assert args.reject
    rcfg = reject_config(args, RejectConfig)
    assert rcfg.classes == ("noise",)
    shares = dict(rcfg.noise_kinds)
    assert shares["chirps"] > 0 and shares["tones"] > 0 and abs(sum(shares.values()) - 1.0) < 1e-9


def test_a_recorded_neutral_change_keeps_earlier_runs(monkeypatch):
    """same_recipe_code: the current code, or an earlier one NEUTRAL_CHANGES chains to it; nothing else, and a
    cycle in the table ends the walk."""
    monkeypatch.setattr(RL, "recipe_code", lambda: "c3")
    monkeypatch.setattr(RL, "NEUTRAL_CHANGES", {"c3": ("c2", "an option off by default"), "c2": ("c1", "a docstring")})
    assert all(RL.same_recipe_code(c) for c in ("c3", "c2", "c1"))
    assert not RL.same_recipe_code("c0") and not RL.same_recipe_code(None)
    monkeypatch.setattr(RL, "NEUTRAL_CHANGES", {"c3": ("c2", "x"), "c2": ("c3", "y")})
    assert not RL.same_recipe_code("c1")
    monkeypatch.setattr(RL, "NEUTRAL_CHANGES", {})
    assert RL.same_recipe_code("c3") and not RL.same_recipe_code("c2")


def test_neutral_changes_entries_say_how_they_were_checked():
    """Every recorded neutral change names the earlier code (a SHA-256) and says what was checked."""
    for new, (old, why) in RL.NEUTRAL_CHANGES.items():
        assert len(new) == len(old) == 64 and new != old
        assert "identical" in why, f"{new[:12]}: say how the change was checked to train identically"
