"""Training windows cut by the streaming detector (train/streamwin.py): their labels, their sources, and a run.

Uses the small FSDD-shaped set and noise folder of tests/test_reject.py, so it runs anywhere.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.test_reject import small  # noqa: F401  (the small FSDD-shaped set and noise folder, a fixture)
from train import features as F
from train import reject as R
from train import streamgen as G
from train import streamwin as W

HOP = 256


def truth(digit, first_frame, last_frame):
    return G.Truth(digit, first_frame * HOP, last_frame * HOP + 10)


@pytest.mark.parametrize("start, want", [
    (18, 7),     # 2 frames before the word, all of it inside: the digit
    (20, 7),     # at the word's first frame
    (23, 7),     # 3 frames inside, 12 of 15 frames held
    (24, None),  # 4 frames inside: the word's tail, left out
    (12, None),  # 8 frames before: 8 of the word's 15 frames, under the cover: left out
    (40, -1),    # after the word: background
    (0, -1),     # before it, touching at most one frame
    (5, -1),
    (6, None),   # overlaps the word by 2 frames: neither
])
def test_a_window_is_the_digit_background_or_left_out(start, want):
    cfg = W.StreamWindowConfig(start_inside=3, cover=0.7)
    assert W.label_window(start, [truth(7, 20, 35)], 16, HOP, cfg) == want


def test_a_window_holding_two_words_is_left_out():
    cfg = W.StreamWindowConfig()
    t = [truth(3, 20, 26), truth(4, 28, 34)]
    assert W.label_window(19, t, 16, HOP, cfg) is None
    assert W.label_window(27, t, 16, HOP, cfg) == 4  # only the second one starts near the window


def test_bad_configs_say_what_is_wrong():
    with pytest.raises(ValueError, match="snr_db"):
        W.StreamWindowConfig(snr_db=(20.0, 10.0))
    with pytest.raises(ValueError, match="cover"):
        W.StreamWindowConfig(cover=1.5)
    with pytest.raises(ValueError, match="window_pres"):
        W.StreamWindowConfig(window_pres=())


def _normalized_cfg(ds, cfg=F.FrontendConfig()):
    logmel = F.batch_logmel((c.samples for c in ds.clips), cfg)
    return F.fit_normalization(logmel, cfg)


def test_windows_come_labelled_from_training_audio_only_and_repeat_from_the_seed(small):
    ds, root = small
    cfg = _normalized_cfg(ds)
    pool = R.augment_pool(root)
    clips, labels = [c.samples for c in ds.clips], ds.labels
    swcfg = W.StreamWindowConfig(streams=6, noise_minutes=1, snr_db=(10.0, 20.0), seed=3)
    x, y, counts = W.stream_windows(clips, labels, cfg, swcfg, noise_label=10, pool=pool)
    assert x.shape == (len(y), cfg.n_frames, cfg.n_mels) and x.dtype == np.float32
    assert counts["streams"] == 7 and counts["digit"] > 0
    assert set(np.unique(y)) <= set(range(11)) and np.sum(y < 10) == counts["digit"]
    assert np.sum(y == 10) == counts["noise_kept"] <= counts["digit"]  # max_noise_ratio 1
    assert counts["noise_in_noise_streams"] > 0  # the gate opens on the minute of noise alone
    # the digits found are the clips' own: every digit label is one the streams were made of
    assert set(y[y < 10]) <= set(labels)
    x2, y2, _ = W.stream_windows(clips, labels, cfg, swcfg, noise_label=10, pool=pool)
    assert np.array_equal(y, y2) and np.array_equal(x, x2)
    # the pool never holds a held-out recording: its noise is the training folder's only
    assert len(pool.noises) == 2
    assert sum(counts["by_noise"].values()) == 7 and set(counts["by_noise"]) <= {"none", "real", "white", "pink"}


def test_synthetic_share_puts_streams_over_procedural_noise(small):
    """synthetic_share 1: every noisy stream and noise-alone minute is over `modulated` noise (a seeded bank), and
    the gate still finds background windows in it; the bank is the same for the same seed."""
    ds, root = small
    cfg = _normalized_cfg(ds)
    clips, labels = [c.samples for c in ds.clips], ds.labels
    swcfg = W.StreamWindowConfig(streams=6, noise_minutes=1, clean_share=0.0, synthetic_share=1.0, seed=3)
    _, y, counts = W.stream_windows(clips, labels, cfg, swcfg, noise_label=10, pool=R.augment_pool(root))
    assert counts["by_noise"] == {"synthetic": 7} and counts["noise_in_noise_streams"] > 0 and counts["digit"] > 0
    a, b = W.synthetic_bank(3), W.synthetic_bank(3)
    assert len(a.audio) == W.SYNTHETIC_BANK[0] and all(np.array_equal(u, v) for u, v in zip(a.audio, b.audio))
    with pytest.raises(ValueError, match="synthetic_share"):
        W.StreamWindowConfig(synthetic_share=1.5)


def test_train_with_stream_windows_records_them_and_needs_the_noise_class(tmp_path, small, monkeypatch):
    from train.__main__ import main

    ds, root = small
    monkeypatch.setenv("SD_NOISE_DIR", str(root))
    common = ["--data-dir", str(ds.root), "--epochs", "2", "--augment", "0", "--lstm-units", "8", "--dense-units", "0",
              "--stream-windows", "4", "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "no")]) == 2  # no `noise` class to label background with
    out = tmp_path / "m"
    assert main([*common, "--reject", "--reject-classes", "noise", "--reject-clips", "20", "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    sw = m["stream_windows"]
    assert sw["config"]["streams"] == 4 and sw["windows"]["streams"] == 4 + 1
    assert m["n_extra"] == sw["windows"]["digit"] + sw["windows"]["noise_kept"]


def test_stream_synthetic_needs_stream_windows_and_a_share(tmp_path, small):
    from train.__main__ import main

    ds, _ = small
    common = ["--data-dir", str(ds.root), "--reject", "--reject-classes", "noise", "--out", str(tmp_path / "m")]
    with pytest.raises(SystemExit, match="give both"):
        main([*common, "--stream-synthetic", "0.3"])
    with pytest.raises(SystemExit, match="synthetic_share must be in"):
        main([*common, "--stream-windows", "4", "--stream-synthetic", "2"])


def test_pooled_windows_are_16_steps_of_32_frames(small):
    """--frame-pool 2: the detector counts steps of two frames (pooled from the stream's first frame, energies
    summed), and a window is 16 of them."""
    import dataclasses

    from train import stream as S

    ds, root = small
    cfg = _normalized_cfg(ds, dataclasses.replace(F.FrontendConfig(), frame_pool=2, clip_samples=8000))
    swcfg = W.StreamWindowConfig(streams=3, noise_minutes=1, snr_db=(10.0, 20.0), seed=4)
    x, y, counts = W.stream_windows([c.samples for c in ds.clips], ds.labels, cfg, swcfg, noise_label=10)
    assert x.shape == (len(y), 16, cfg.n_mels) and counts["digit"] > 0
    st = np.concatenate([np.zeros(3001, np.int16), ds.clips[0].samples, np.zeros(4000, np.int16)])
    a = S.StreamAnalysis(st, cfg)
    frames = S.stream_frames(st, dataclasses.replace(cfg, frame_pool=1, clip_samples=4000))
    n = len(st) // 256
    assert len(a.frames) == len(a.energies) == n // 2 and len(frames) == n
    q = F.logmel_to_int(frames, cfg)
    assert np.array_equal(F.logmel_to_int(a.frames, cfg), (q[0:-1:2] + q[1::2]) >> 1)
    e = F.frame_energies(st, cfg)[:n]
    assert np.array_equal(a.energies, e[0:-1:2] + e[1::2])
    b1 = S.band_energies(st, F.FrontendConfig(), (1, -1))
    assert np.array_equal(S.band_energies(st, cfg, (1, -1)), b1[0:-1:2] + b1[1::2])
