"""A folder per label (Speech Commands' layout): listing, speakers, splits, label lists and bad folders.

The clips are small tone bursts written here (conftest.synth_clip); nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import synth_clip, write_wav
from train import data as D


def make_words(root: Path, words=("yes", "no", "up"), speakers=("ann", "bob", "cy", "dee", "eve"), takes=2) -> Path:
    for w, word in enumerate(words):
        for s, spk in enumerate(speakers):
            for k in range(takes):
                write_wav(root / word / f"{spk}_nohash_{k}.wav", synth_clip(w, s, k))
    return root


def test_folder_layout_is_read_with_sorted_labels_speakers_and_hash_split(tmp_path):
    root = make_words(tmp_path / "words")
    ds = D.load_dataset(root)
    assert ds.layout == D.LAYOUT_FOLDERS and ds.names == ("no", "up", "yes")
    assert len(ds) == 30 and sorted(set(ds.speakers)) == ["ann", "bob", "cy", "dee", "eve"]
    for c in ds.clips:
        assert ds.names[c.label] == c.path.parent.name
        assert c.split == D.hash_split(c.speaker)  # a speaker's clips share one split
    # the hash rule is stable (SHA-1 of the speaker, not Python's salted hash) and roughly 10/10/80
    assert [D.hash_split(s) for s in ("ann", "bob", "cy")] == [D.hash_split(s) for s in ("ann", "bob", "cy")]
    splits = [D.hash_split(f"speaker{i}") for i in range(2000)]
    assert 0.07 < splits.count("test") / 2000 < 0.13 and 0.07 < splits.count("validation") / 2000 < 0.13


def test_lists_decide_the_split_and_validation_is_held_out(tmp_path):
    root = make_words(tmp_path / "w")
    (root / "testing_list.txt").write_text("yes/ann_nohash_0.wav\nyes/ann_nohash_1.wav\nno/ann_nohash_0.wav\n"
                                           "no/ann_nohash_1.wav\nup/ann_nohash_0.wav\nup/ann_nohash_1.wav\n")
    (root / "validation_list.txt").write_text("\n".join(f"{w}/bob_nohash_{k}.wav" for w in ("yes", "no", "up")
                                                        for k in (0, 1)) + "\n")
    ds = D.load_dataset(root)
    tr, te = D.split_indices(ds, "official")
    assert {ds.clips[i].speaker for i in te} == {"ann"} and len(te) == 6
    val = D.validation_indices(ds, tr)
    assert val is not None and {ds.clips[i].speaker for i in val} == {"bob"}
    assert {ds.clips[i].speaker for i in tr} == {"bob", "cy", "dee", "eve"}
    assert any("testing_list.txt" in n for n in ds.notes)
    # one clip in two lists, or one speaker in two splits: refused, naming them
    (root / "validation_list.txt").write_text("yes/ann_nohash_0.wav\n")
    with pytest.raises(D.DatasetError, match="yes/ann_nohash_0.wav listed in both"):
        D.load_dataset(root)
    (root / "validation_list.txt").write_text("yes/cy_nohash_0.wav\n")
    with pytest.raises(D.DatasetError, match="speaker.*cy.*more than one split"):
        D.load_dataset(root)


def test_label_subset_keeps_the_given_order(tmp_path):
    root = make_words(tmp_path / "w")
    ds = D.load_dataset(root, labels=["yes", "no"])
    assert ds.names == ("yes", "no") and len(ds) == 20
    assert all(ds.names[c.label] == c.path.parent.name for c in ds.clips)
    assert any("left out" in n and "up" in n for n in ds.notes)
    with pytest.raises(D.DatasetError, match="no label folder named 'maybe'.*no, up, yes"):
        D.load_dataset(root, labels=["yes", "maybe"])
    with pytest.raises(D.DatasetError, match="digits 0-9"):  # an FSDD folder has the digits only
        write_wav(tmp_path / "f" / "3_x_0.wav", synth_clip(3, 0, 0))
        D.load_dataset(tmp_path / "f", labels=["yes", "no"])


def test_bad_folders_say_what_is_wrong(tmp_path):
    # one label
    one = make_words(tmp_path / "one", words=("yes",))
    with pytest.raises(D.DatasetError, match="at least 2 labels.*yes"):
        D.load_dataset(one)
    # a label with no clips: left out, said so; other files and nested folders: ignored, said so
    root = make_words(tmp_path / "w")
    (root / "empty").mkdir()
    (root / "yes" / "README.txt").write_text("notes")
    write_wav(root / "no" / "deeper" / "ann_nohash_9.wav", synth_clip(1, 0, 9))
    write_wav(root / "_background_noise_" / "hum.wav", synth_clip(0, 0, 0))
    ds = D.load_dataset(root)
    assert ds.names == ("no", "up", "yes") and len(ds) == 30
    notes = "\n".join(ds.notes)
    assert "empty" in notes and "README.txt" in notes and "deeper" in notes
    assert [p.name for p in ds.background] == ["hum.wav"]
    # labels that differ only in case
    case = make_words(tmp_path / "case", words=("Yes", "yes", "no"))
    with pytest.raises(D.DatasetError, match="differ only in case"):
        D.load_dataset(case)
    # spaces and non-ASCII names: read, each file its own speaker without _nohash_
    odd = make_words(tmp_path / "odd", words=("oui", "non"))
    write_wav(odd / "oui" / "réponse à moi.wav", synth_clip(0, 9, 0))
    ds = D.load_dataset(odd)
    c = next(c for c in ds.clips if c.path.name == "réponse à moi.wav")
    assert c.speaker == "réponse à moi" and ds.names[c.label] == "oui"
    # a 16 kHz clip is resampled, with a notice; a broken one is skipped and named
    write_wav(odd / "non" / "fast_nohash_0.wav", np.zeros(16000, np.int16), sr=16000)
    (odd / "non" / "broken_nohash_0.wav").write_bytes(b"RIFF....WAVEjunk")
    ds = D.load_dataset(odd, strict=False)
    assert any("16000" in n for n in ds.notes)
    assert [Path(e.path).name for e in ds.errors] == ["broken_nohash_0.wav"]
    with pytest.raises(D.DatasetError, match="broken_nohash_0.wav"):
        D.load_dataset(odd)


def test_empty_test_split_says_how_to_fix_it(tmp_path):
    # two speakers whose hash puts neither in test
    speakers = [s for s in (f"spk{i}" for i in range(100)) if D.hash_split(s) == "train"][:2]
    ds = D.load_dataset(make_words(tmp_path / "w", speakers=speakers))
    with pytest.raises(ValueError, match="testing_list.txt"):
        D.split_indices(ds, "official")
    tr, te = D.split_indices(ds, f"loso:{speakers[0]}")
    assert {ds.clips[i].speaker for i in te} == {speakers[0]}
