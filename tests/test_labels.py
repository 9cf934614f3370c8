"""The model folder's label list (train/labels.py) and where it flows: the reference, events, reports."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from train.labels import FSDD_DIGITS, Labels

ROOT = Path(__file__).resolve().parent.parent
RELEASED = ROOT / "models" / "released"


def test_fsdd_digits_are_the_default_and_map_to_digits():
    lab = Labels()
    assert lab.names == FSDD_DIGITS and len(lab) == 10
    assert [lab.digit(i) for i in range(10)] == list(range(10)) and lab.digit(None) is None and lab.name(None) is None


def test_words_that_are_not_digits_have_no_digit():
    lab = Labels(("yes", "no", "noise", "7"))
    assert lab.digit(0) is None and lab.name(2) == "noise" and lab.digit(3) == 7
    assert lab.sha256() != Labels(("no", "yes", "noise", "7")).sha256()  # the order is part of the list


@pytest.mark.parametrize("names, message", [
    (("only",), "2 .. 32 labels"),
    (tuple(f"w{i}" for i in range(33)), "2 .. 32 labels"),
    (("Yes", "yes"), "differ only in case"),
    (("yes", ""), "non-empty"),
    (("yes", " no"), "leading or trailing"),
    (("yes", "n\no"), "control character"),
    (("yes", "x" * 33), "longer than 32 bytes"),
])
def test_bad_label_lists_are_refused_with_the_reason(names, message):
    with pytest.raises(ValueError, match=message):
        Labels(names)


def test_load_save_and_folders_without_a_list(tmp_path):
    assert Labels.load(tmp_path) == Labels()  # written before labels.json existed: FSDD digits
    lab = Labels(("café", "naïve", "noise"))
    lab.save(tmp_path)
    assert Labels.load(tmp_path) == lab
    (tmp_path / "labels.json").write_text('{"labels": "yes"}')
    with pytest.raises(ValueError, match=r"labels\.json: not a valid label list"):
        Labels.load(tmp_path)


def test_released_model_folder_has_its_list():
    """The release (train/release.py's recipe) has the ten digits, then `noise`; report.json says the same."""
    assert Labels.load(RELEASED).names == (*FSDD_DIGITS, "noise")
    assert json.loads((RELEASED / "report.json").read_text())["labels"] == [*FSDD_DIGITS, "noise"]


def test_reference_refuses_a_list_that_does_not_match_the_outputs(tmp_path):
    from convert.reference import Reference

    folder = tmp_path / "m"
    shutil.copytree(RELEASED, folder, ignore=shutil.ignore_patterns("*.keras", "*.cc", "*.png"))
    Labels(("a", "b", "c")).save(folder)
    with pytest.raises(ValueError, match=r"11 outputs but labels\.json names 3"):
        Reference.from_dir(folder)


def test_events_carry_label_and_digit():
    from train.stream import Event

    e = Event.of_class(4, 10, 20, np.arange(10))
    assert e.to_dict() == {"digit": 4, "label": "4", "start": 10, "end": 20, "outputs": list(range(10))}
    assert Event.of_class(None, 1, 2, [0] * 10).to_dict()["label"] is None
    w = Event.of_class(1, 1, 2, [0, 0, 0], Labels(("on", "off", "noise")))
    assert w.digit is None and w.label == "off"
    assert Event.from_dict(w.to_dict()) == w
