"""Training-time augmentation (train/augment.py): seeded, deterministic, and doing what it says."""

from __future__ import annotations

import numpy as np
import pytest

from train.augment import AugmentConfig, augment_audio, change_speed, pink_noise, spec_masks


def tone(n=4000, f=440.0, amp=8000.0):
    return np.round(amp * np.sin(2 * np.pi * f * np.arange(n) / 8000)).astype(np.int16)


def test_same_seed_clip_and_copy_give_the_same_audio_and_others_differ():
    cfg = AugmentConfig(seed=5)
    x = tone()
    a = augment_audio(x, cfg, clip=3, copy=1)
    assert np.array_equal(a, augment_audio(x, cfg, clip=3, copy=1))
    assert not np.array_equal(a, augment_audio(x, cfg, clip=3, copy=2))
    assert not np.array_equal(a, augment_audio(x, AugmentConfig(seed=6), clip=3, copy=1))


def test_speed_changes_length_and_pitch():
    x = tone(8000, 500.0)
    fast = change_speed(x, 1.25)
    assert len(fast) == 6400
    spec = np.abs(np.fft.rfft(fast.astype(float)))
    assert abs(np.argmax(spec) * 8000 / len(fast) - 625.0) < 5  # 500 Hz played 1.25x faster


def test_noise_lands_at_the_drawn_snr():
    x = tone(8000)
    cfg = AugmentConfig(speed=(1.0, 1.0), shift_max=0, gain_db=(0.0, 0.0), noise_prob=1.0, snr_db=(10.0, 10.0))
    y = augment_audio(x, cfg, clip=0, copy=0).astype(float)
    noise = y - x
    snr = 10 * np.log10(np.mean(x.astype(float) ** 2) / np.mean(noise**2))
    assert 9.0 < snr < 11.0
    assert abs(np.mean(pink_noise(4096, np.random.default_rng(0)) ** 2) - 1.0) < 1e-9


def test_off_switches_leave_the_clip_alone_and_loud_copies_clip():
    off = AugmentConfig(speed=(1.0, 1.0), shift_max=0, gain_db=(0.0, 0.0), noise_prob=0.0)
    x = tone()
    assert np.array_equal(augment_audio(x, off, clip=1, copy=0), x)
    loud = AugmentConfig(speed=(1.0, 1.0), shift_max=0, gain_db=(20.0, 20.0), noise_prob=0.0)
    y = augment_audio(x, loud, clip=1, copy=0)
    assert y.dtype == np.int16 and y.max() == 32767 and y.min() == -32768


def test_masks_zero_whole_frames_and_bands():
    cfg = AugmentConfig(time_masks=1, time_mask_max=2, freq_masks=2, freq_mask_max=8)
    x = np.ones((16, 80), np.float32)
    hits = 0
    for clip in range(20):
        m = spec_masks(x, cfg, clip=clip, copy=0)
        zero_rows = np.all(m == 0, axis=1).sum()
        zero_cols = np.all(m == 0, axis=0).sum()
        assert zero_rows <= 2 and zero_cols <= 16
        assert np.all((m == 0) | (m == 1))
        hits += zero_rows + zero_cols
    assert hits > 0
    assert np.array_equal(spec_masks(x, cfg, clip=4, copy=1), spec_masks(x, cfg, clip=4, copy=1))


@pytest.mark.parametrize("kwargs", [{"copies": -1}, {"speed": (1.2, 0.9)}, {"noise_prob": 1.5}, {"snr_db": (30.0, 5.0)}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        AugmentConfig(**kwargs)


def test_cli_shift_max_reaches_the_augment_config():
    from train.__main__ import augment_config, build_parser

    p = build_parser()
    plain = augment_config(p.parse_args([]), AugmentConfig)
    assert (plain.shift_max, plain.stream_share) == (AugmentConfig().shift_max, 0.0)
    assert augment_config(p.parse_args(["--stream-share", "0.5"]), AugmentConfig).stream_share == 0.5
    both = augment_config(p.parse_args(["--stream-share", "0.5", "--no-shift"]), AugmentConfig)
    assert (both.shift_max, both.stream_share) == (0, 0.5)  # the explicit share wins over --no-shift's
    with pytest.raises(SystemExit, match="--stream-share"):
        augment_config(p.parse_args(["--stream-share", "2"]), AugmentConfig)
    assert augment_config(p.parse_args(["--shift-max", "2048"]), AugmentConfig).shift_max == 2048
    assert augment_config(p.parse_args(["--shift-max", "2048", "--no-shift"]), AugmentConfig).shift_max == 0
    with pytest.raises(SystemExit, match="--shift-max"):
        augment_config(p.parse_args(["--shift-max", "-1"]), AugmentConfig)


def test_stream_aligned_copies_start_their_window_at_the_drawn_offset_from_the_onset():
    from train.augment import onset_sample

    word = tone(3000, 300.0)
    padded = np.concatenate([np.zeros(1500, np.int16), word])  # a word with leading silence, as flite says one
    assert onset_sample(padded) == 1472  # the 64-sample block holding the first loud sample
    clean = dict(speed=(1.0, 1.0), gain_db=(0.0, 0.0), noise_prob=0.0, stream_share=1.0)
    from train.augment import augment_copy

    early, aligned = augment_copy(padded, AugmentConfig(**clean, stream_offset=(1024, 1024)), clip=0, copy=0)
    assert aligned and len(early) == 1024 + len(padded) - 1472  # the silence is now the drawn 1024 samples
    assert not early[:1024 + 28].any() and early[1024 + 29] != 0  # (the tone's first sample is sin(0) = 0)
    late, _ = augment_copy(padded, AugmentConfig(**clean, stream_offset=(-512, -512)), clip=0, copy=0)
    assert np.array_equal(late, padded[1472 + 512:])  # the window starts 512 samples inside the word
    # off by default, and a share of 0 draws nothing more: the other copies stay as they were
    assert AugmentConfig().stream_share == 0.0
    plain = AugmentConfig(seed=3)
    assert np.array_equal(augment_audio(padded, plain, clip=2, copy=1),
                          augment_audio(padded, AugmentConfig(seed=3, stream_offset=(0, 0)), clip=2, copy=1))
    some = [augment_copy(padded, AugmentConfig(seed=3, stream_share=0.5), clip=c, copy=0)[1] for c in range(40)]
    assert 5 < sum(some) < 35
    with pytest.raises(ValueError, match="stream_offset"):
        AugmentConfig(stream_offset=(100, -100))
    with pytest.raises(ValueError, match="stream_share"):
        AugmentConfig(stream_share=1.5)


def test_trainer_shows_the_model_an_aligned_copys_first_frames():
    from dataclasses import replace

    from train import features as F
    from train.data import Clip, Dataset
    from train.trainer import augmented_features

    # a lead-in 12 dB down (within the onset's 20 dB: it is kept), then a loud burst late in the clip: the
    # loudest 16 frames and the first 16 differ
    x = np.concatenate([tone(6000, 500.0, 3000.0), tone(4000, 900.0, 12000.0)])
    ds = Dataset(root=None, clips=[Clip(path=None, label=3, speaker="s", index=0, samples=x)])
    cfg = F.fit_normalization(F.batch_logmel([x], F.DEFAULT_CONFIG), F.DEFAULT_CONFIG)
    acfg = AugmentConfig(copies=1, speed=(1.0, 1.0), gain_db=(0.0, 0.0), noise_prob=0.0, time_masks=0, freq_masks=0,
                         stream_share=1.0, stream_offset=(0, 0))
    got, labels = augmented_features(ds, np.array([0]), cfg, acfg, progress=False)
    assert labels.tolist() == [3]
    first = F.normalize(F.batch_logmel([x], replace(cfg, window_rule="first")), cfg)
    loudest = F.normalize(F.batch_logmel([x], cfg), cfg)
    assert not np.array_equal(first, loudest)
    assert np.array_equal(got, first)
