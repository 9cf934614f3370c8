"""Front end v2 (train/intfront.py) against float arithmetic, and its worst-case bit widths.

The integer pipeline is checked three ways here: its FFT against numpy's
float FFT, its log-mel against librosa's (the design tool), and every
intermediate against the device's types on the signals that push them
hardest (the pipeline itself raises OverflowError when a value leaves its
type: train/intfront.py's check_range). C against Python is
tests/test_frontend.py and tests/test_stream.py.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from train import features as F
from train import intfront as I

CFG = F.FrontendConfig()
T = I.tables(CFG)


def speechlike(n: int, seed: int) -> np.ndarray:
    """Harmonics of a wobbling 120-180 Hz voice with formant-like weights, at random levels."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 8000
    f0 = 150 + 30 * np.sin(2 * np.pi * 3 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(f0) / 8000
    x = sum(np.sin(h * phase) / h * (1 + 3 * np.exp(-((h * 150 - 700) / 300) ** 2)) for h in range(1, 20))
    x = x / np.max(np.abs(x)) * rng.uniform(300, 30000)
    return np.round(x).astype(np.int16)


def test_fft_power_matches_float_fft():
    rng = np.random.default_rng(0)
    frames = np.stack([speechlike(512, s) for s in range(8)] + [rng.integers(-32768, 32768, 512).astype(np.int16)])
    power, s = I.power_spectrum(frames, T)
    v, s2 = I.frame_shift(frames, T)
    assert np.array_equal(s, s2)
    ref = np.abs(np.fft.rfft(v.astype(np.float64), axis=1) / 512) ** 2
    for k in range(len(frames)):
        strong = ref[k] > ref[k].max() * 1e-2  # within 20 dB of the frame's strongest bin
        rel = np.abs(power[k][strong] - ref[k][strong]) / ref[k][strong]
        assert np.median(rel) < 0.02 and rel.max() < 0.25, (k, np.median(rel), rel.max())


def test_logmel_agrees_with_librosa():
    v1 = dataclasses.replace(CFG, version=1)
    v2 = dataclasses.replace(CFG, noise_oversub=0.0, noise_min_remaining=1.0)  # no noise stage
    for seed in range(4):
        x = F.pad_clip(speechlike(4000, seed), CFG)
        ref = F.log_mel_frames(x, v1) / np.log(2)  # natural log -> log2
        got = F.log_mel_frames(x, v2)
        loud = ref > ref.max() - 12  # within 36 dB of the clip's loudest band
        err = np.abs(got - ref)[loud]
        assert np.median(err) < 0.02 and np.percentile(err, 99) < 0.3, (seed, np.median(err), err.max())


def test_block_scaling_keeps_quiet_frames_exact_in_shape():
    """A frame and the same frame 2**k times quieter have the same spectrum shape: the shift s absorbs the level."""
    x = speechlike(512, 3).astype(np.int64)
    loud = np.clip(x * 32767 // np.abs(x).max(), -32768, 32767).astype(np.int16)
    quiet = (loud.astype(np.int64) >> 8).astype(np.int16)  # 48 dB down
    a = I.frame_logmel(loud[None], CFG)[0]
    b = I.frame_logmel(quiet[None], CFG)[0]
    top = a > a.max() - 10 * 1024
    dev = np.abs((a - b)[top] - 8 * 2 * 1024)  # 8 bits = 16 octaves of power
    assert np.median(dev) < 0.02 * 1024 and dev.max() < 0.15 * 1024  # the quiet copy's own rounding, not the FFT's


STRESS = {
    "full_scale_noise": lambda n, r: r.integers(-32768, 32768, n),
    "most_negative_dc": lambda n, r: np.full(n, -32768),
    "most_positive_dc": lambda n, r: np.full(n, 32767),
    "nyquist_square": lambda n, r: np.tile([32767, -32768], n // 2),
    "square_1khz": lambda n, r: np.where((np.arange(n) // 4) % 2 == 0, 32767, -32768),
    "square_62hz": lambda n, r: np.where((np.arange(n) // 64) % 2 == 0, 32767, -32768),
    "clipped_sine": lambda n, r: np.clip(np.round(1e6 * np.sin(2 * np.pi * 440 * np.arange(n) / 8000)), -32768, 32767),
    "impulses": lambda n, r: np.where(np.arange(n) % 97 == 0, -32768, 0),
    "one_lsb": lambda n, r: r.integers(-1, 2, n),
    "silence": lambda n, r: np.zeros(n),
}


@pytest.mark.parametrize("name", list(STRESS))
def test_worst_case_signals_stay_in_the_device_types(name):
    """Every intermediate fits its C type (check_range raises otherwise) and the output is finite and bounded."""
    rng = np.random.default_rng(5)
    x = np.asarray(STRESS[name](8000, rng), np.int64).astype(np.int16)
    for cfg in (CFG, dataclasses.replace(CFG, agc_strength=256, agc_shift=0)):
        frames = I.frames_of(x, cfg.n_fft, cfg.hop_length, 1 + len(x) // cfg.hop_length)
        out = I.run_frames(frames, cfg)
        assert np.all(np.abs(out) < 1 << 16)


def test_worst_case_fft_input_is_the_bound():
    """The largest input modulus (both parts -2**14) through every stage: parts stay within int16."""
    v = np.full((1, 256), -(1 << 14), np.int64)
    re, im = I.cfft_q15(v.copy(), v.copy(), T.twiddle)
    assert max(np.abs(re).max(), np.abs(im).max()) <= 23175


def test_hours_of_silence_and_dc_do_not_drift():
    """An hour of frames is 112,500; the state must settle and stay put (here 20 minutes of each)."""
    n = 20 * 60 * 8000
    for x in (np.zeros(n, np.int16), np.full(n, 12000, np.int16)):
        frames = I.frames_of(x, CFG.n_fft, CFG.hop_length, n // CFG.hop_length)
        out = I.run_frames(frames[::50], CFG)  # the state sees a constant input either way
        assert np.all(out[-100:] == out[-1])


def test_noise_floor_follows_a_noise_and_subtraction_lowers_it():
    """Steady noise: once the floor has settled, the subtraction takes energy off every band."""
    rng = np.random.default_rng(9)
    x = np.round(rng.normal(0, 2000, 8000 * 4)).astype(np.int16)
    frames = I.frames_of(x, CFG.n_fft, CFG.hop_length, len(x) // CFG.hop_length)
    raw = I.frame_logmel(frames, CFG)
    out = I.run_frames(frames, CFG)
    late = slice(60, None)
    assert np.all(out[late] <= raw[late])
    assert np.median(raw[late] - out[late]) > 512  # at least half an octave (1.5 dB) taken off the noise
    st = I.NoiseState(CFG)
    for k in range(len(raw)):
        st.step(raw[k][None])
    gap = np.median(raw[late], axis=0) - st.floor[0]
    assert np.all(gap > 0) and np.all(gap < 4.5 * 1024)  # below the noise's median (a band of one bin swings most)


def test_state_starts_afresh_per_clip_in_a_batch():
    clips = [speechlike(4000 + 700 * k, k) for k in range(5)]
    frames = [I.frames_of(F.pad_clip(c, CFG), 512, 256, 1 + len(F.pad_clip(c, CFG)) // 256) for c in clips]
    batch = I.run_batch(frames, CFG)
    for f, b in zip(frames, batch):
        assert np.array_equal(I.run_frames(f, CFG), b)


def test_tables_are_what_the_docstring_says():
    assert T.window.max() == 32767 and T.window[0] == 0 and np.array_equal(T.window[1:256], T.window[:256:-1])
    assert np.abs(T.twiddle).max() <= 32767 and tuple(T.twiddle[0]) == (32767, 0)
    assert sorted(T.digit_rev.tolist()) == list(range(256)) and T.digit_rev[1] == 64
    assert T.log_table[0] == 0 and T.log_table[-1] == 65536
    assert np.all(np.diff(T.gain_table) >= 0) and T.gain_table.max() <= 0
    assert T.gain_table[0] == round(np.log2(CFG.noise_min_remaining) * 1024)
    assert T.mel_weights.max() < 65536 and np.all(T.mel_weights.sum(axis=1) > 0)


def test_v1_configs_keep_their_json_and_hash():
    """A v1 frontend.json (no version field) loads as v1 and writes back the same bytes."""
    v1 = dataclasses.replace(CFG, version=1)
    d = v1.to_dict()
    assert "version" not in d and "noise_oversub" not in d
    again = F.FrontendConfig.from_dict(d)
    assert again.version == 1 and again.sha256() == v1.sha256() != CFG.sha256()
    with pytest.raises(ValueError, match="v1 configs have no"):
        F.FrontendConfig.from_dict({**d, "agc_strength": 3})


POOLED = dataclasses.replace(CFG, frame_pool=2, clip_samples=8000)


def test_frame_pool_config_rules():
    """frame_pool 1 writes the JSON of configs from before it (same hash); 2 is written, and needs 32 frames."""
    assert "frame_pool" not in CFG.to_dict() and CFG.window_frames == 16
    d = POOLED.to_dict()
    assert d["frame_pool"] == 2 and F.FrontendConfig.from_dict(d) == POOLED != CFG and POOLED.window_frames == 32
    assert F.FrontendConfig.from_dict(CFG.to_dict()).frame_pool == 1
    with pytest.raises(ValueError, match="= 32 frames, but clip_samples=7000 and hop_length=256 give 28"):
        dataclasses.replace(CFG, frame_pool=2, clip_samples=7000)
    with pytest.raises(ValueError, match="frame_pool must be 1 or 2"):
        dataclasses.replace(CFG, frame_pool=3)
    with pytest.raises(ValueError, match="integer front end"):
        dataclasses.replace(CFG, version=1, frame_pool=2, clip_samples=8000)


def test_pooled_window_is_the_floor_mean_of_frame_pairs():
    """A pooled clip's 16 steps are (q[2j] + q[2j+1]) >> 1 of its integer frames, pairs counted from its first
    frame, at the 16 consecutive steps with the largest summed energy (a step's energy: its frames' sum)."""
    x = np.concatenate([speechlike(3000, 5) // 50, speechlike(6500, 6), speechlike(2000, 7) // 20])
    got = F.clip_logmel(x, POOLED)
    assert got.shape == (16, CFG.n_mels)
    padded = F.pad_clip(x, POOLED)
    q = I.run_frames(I.frames_of(padded, 512, 256, 1 + len(padded) // 256), POOLED)
    assert len(q) % 2 == 1  # an odd frame count: the last frame is dropped
    steps = (q[0:-1:2] + q[1::2]) >> 1  # numpy's >> floors, as C's arithmetic shift
    assert np.any((q[0:-1:2] + q[1::2]) % 2)  # the floor was exercised
    e = F.frame_energies(padded, POOLED)
    es = e[0:-1:2] + e[1::2]
    start = int(np.argmax([es[k:k + 16].sum() for k in range(len(es) - 15)]))
    assert 0 < start < len(es) - 16  # the loud middle is chosen, not an end
    assert np.array_equal(F.logmel_to_int(got, POOLED), steps[start:start + 16])
    assert np.array_equal(F.batch_logmel([x, x[:5000]], POOLED)[0], got)
    short = F.batch_logmel([x[:5000]], POOLED)[0]  # padded to 8000 samples: 32 frames, the window is all of them
    q2 = I.run_frames(I.frames_of(F.pad_clip(x[:5000], POOLED), 512, 256, 32), POOLED)
    assert np.array_equal(F.logmel_to_int(short, POOLED), (q2[0::2] + q2[1::2]) >> 1)
    assert np.array_equal(F.pool_frames(got, CFG), got) and np.array_equal(F.pool_energies(e, CFG), e)  # P = 1


def test_firmware_generator_emits_the_pooling_and_checks_its_range(tmp_path):
    """The generated header carries SD_FRAME_POOL and SD_STEP_HOP (the device pools: tests/test_frame_pool_twin.py);
    a pooled config whose suppressed values could leave int16 (the device keeps a step's first frame as int16
    without gain control) is refused before anything is written."""
    from convert import firmware_gen

    base = F.FrontendConfig.load(Path(__file__).resolve().parent.parent / "models" / "released" / "frontend.json")
    pooled = dataclasses.replace(base, frame_pool=2, clip_samples=8000)
    for cfg, pool, hop in ((base, 1, 256), (pooled, 2, 512)):
        out = tmp_path / str(pool)
        firmware_gen.generate_frontend_c(cfg, 0.1, 0, out, stamp="test")
        h = (out / "sd_frontend_config.h").read_text()
        assert f"#define SD_FRAME_POOL {pool}u" in h and f"#define SD_STEP_HOP {hop}u" in h
        assert f"#define SD_CLIP_SAMPLES {cfg.clip_samples}u" in h
    deep = dataclasses.replace(pooled, log_floor=1e-9)  # floor -30615 (Q10) plus a gain of -4426: below int16
    with pytest.raises(ValueError, match="may leave int16"):
        firmware_gen.generate_frontend_c(deep, 0.1, 0, tmp_path / "deep", stamp="test")
    assert not (tmp_path / "deep").exists() or not list((tmp_path / "deep").iterdir())  # nothing half-written
    firmware_gen.generate_frontend_c(dataclasses.replace(deep, frame_pool=1, clip_samples=4000), 0.1, 0,
                                     tmp_path / "deep1", stamp="test")  # unpooled: no int16 pending values
