"""Reference front end: shape, orientation, mel placement, padding, window rule, quantization."""

from __future__ import annotations

import json

import numpy as np
import pytest

from train import features as F

CFG = F.FrontendConfig()


def tone(freq: float, n: int, amp: float = 0.5, sr: int = 8000) -> np.ndarray:
    t = np.arange(n) / sr
    return np.round(amp * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def test_shape_dtype_orientation():
    x = tone(440, 4000)
    m = F.clip_logmel(x, CFG)
    assert m.shape == (16, 80) and m.dtype == np.float32
    # rows are time steps: a tone that starts half way lights up only the later rows
    half = np.concatenate([np.zeros(2000, np.int16), tone(1000, 2000)])
    m = F.clip_logmel(half, F.FrontendConfig(window_rule="first"))
    energy_per_row = m.max(axis=1)
    assert energy_per_row[:6].max() < energy_per_row[10:].min() - 5


@pytest.mark.parametrize("freq", [300.0, 1000.0, 2500.0])
def test_pure_tone_lands_in_expected_band(freq):
    import librosa

    m = F.clip_logmel(tone(freq, 4000), CFG)
    centres = librosa.mel_frequencies(n_mels=CFG.n_mels + 2, fmin=CFG.fmin, fmax=CFG.fmax)[1:-1]
    expected = int(np.argmin(np.abs(centres - freq)))
    got = int(np.argmax(m[4:12].mean(axis=0)))
    assert abs(got - expected) <= 1, (got, expected)


def silence_value(cfg: F.FrontendConfig) -> float:
    """What a frame of digital silence gives: the log floor, less what the noise stage takes away
    (v2: the floor equals the noise estimate, so the subtraction keeps noise_min_remaining)."""
    if not cfg.is_integer:
        return float(np.log(np.float32(cfg.log_floor)))
    from train import intfront

    t = intfront.tables(cfg)
    return (t.log_floor_q + int(t.gain_table[0])) / 2.0**cfg.log_frac_bits


def test_short_clip_is_zero_padded():
    x = tone(500, 1500)
    padded = F.pad_clip(x, CFG)
    assert len(padded) == 4000 and np.all(padded[1500:] == 0) and np.array_equal(padded[:1500], x)
    m = F.clip_logmel(x, CFG)
    assert m.shape == (16, 80)
    # frames past the audio hold only the log floor (v2: as high as the noise floor has fallen back to it)
    v1 = F.FrontendConfig(version=1)
    assert np.allclose(F.clip_logmel(x, v1)[-3:], silence_value(v1), atol=1e-3)
    assert np.all(m[-1] <= m[4:8].max(axis=0))


@pytest.mark.parametrize("version", [1, 2])
def test_silence_is_finite_log_floor(version):
    cfg = F.FrontendConfig(version=version)
    m = F.clip_logmel(np.zeros(4000, np.int16), cfg)
    assert np.all(np.isfinite(m))
    assert np.allclose(m, silence_value(cfg))


def test_long_clip_window_follows_energy():
    # 1.5 s of near-silence with a loud burst at 1.0-1.3 s: the max-energy window must cover the burst
    x = np.zeros(12000, np.int16)
    x[8000:10400] = tone(700, 2400)
    padded = F.pad_clip(x, CFG)
    e = F.frame_energies(padded, CFG)
    assert len(e) == 1 + 12000 // 256
    start = F.choose_window(e, CFG)
    centres = (np.arange(start, start + 16)) * 256
    assert centres[0] <= 8000 and centres[-1] >= 10400 - 256
    assert F.choose_window(e, F.FrontendConfig(window_rule="first")) == 0


def test_frame_energy_is_exact_integer_sum():
    rng = np.random.default_rng(0)
    x = rng.integers(-32768, 32767, 5000).astype(np.int16)
    e = F.frame_energies(x, CFG)
    xp = np.concatenate([np.zeros(256, np.int64), x.astype(np.int64), np.zeros(256, np.int64)])
    for t in (0, 3, len(e) - 1):
        assert e[t] == int(np.sum(xp[t * 256 : t * 256 + 512] ** 2))


def test_window_tie_takes_earliest():
    e = np.ones(20, np.int64)
    assert F.choose_window(e, CFG) == 0


def test_round_half_away_matches_c_roundf():
    v = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 0.49999997, -0.49999997, 126.5, -128.5], np.float32)
    assert F.round_half_away(v).tolist() == [1, 2, 3, -1, -2, 0, -0, 127, -129]


def test_quantize_matches_definition():
    cfg = CFG.with_normalization(np.linspace(-5, 0, 80), np.linspace(1, 3, 80))
    rng = np.random.default_rng(1)
    logmel = rng.uniform(-14, 4, (16, 80)).astype(np.float32)
    scale, zp = 0.05, -3
    q = F.quantize_logmel(logmel, cfg, scale, zp)
    ref = np.clip(np.round(F.normalize(logmel, cfg) / scale) + zp, -128, 127)
    assert q.dtype == np.int8
    assert np.max(np.abs(q.astype(int) - ref)) <= 1  # same up to float rounding
    assert np.mean(q == ref) > 0.99


def test_config_json_roundtrip_and_hash(tmp_path):
    cfg = CFG.with_normalization(np.zeros(80), np.ones(80))
    p = tmp_path / "fe.json"
    cfg.save(p)
    again = F.FrontendConfig.load(p)
    assert again == cfg and again.sha256() == cfg.sha256()
    assert cfg.sha256() != CFG.sha256()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_fft": 500}, "power of two"),
        ({"fmax": 5000.0}, "fmax"),
        ({"window_rule": "middle"}, "window_rule"),
        ({"n_frames": 15}, "n_frames=15"),
        ({"log_floor": 0.0}, "log_floor"),
        ({"band_mean": (0.0,) * 3}, "band_mean has 3 values"),
    ],
)
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        F.FrontendConfig(**kwargs)


def test_config_is_keyword_only_and_frozen():
    with pytest.raises(TypeError):
        F.FrontendConfig(8000)  # type: ignore[misc]
    with pytest.raises(Exception):
        CFG.sr = 16000  # type: ignore[misc]


def test_load_names_bad_file(tmp_path):
    p = tmp_path / "fe.json"
    p.write_text(json.dumps({"sr": 8000, "bogus": 1}))
    with pytest.raises(ValueError, match=r"fe\.json.*bogus"):
        F.FrontendConfig.load(p)


# -- per-clip normalization (clip_norm="band-mean") ---------------------------------
BAND_MEAN = CFG if CFG.clip_norm == "band-mean" else F.FrontendConfig(clip_norm="band-mean")


def test_band_mean_quantize_matches_float_definition():
    rng = np.random.default_rng(2)
    logmel = rng.uniform(-14, 4, (8, 16, 80)).astype(np.float32)
    cfg = F.fit_normalization(logmel, BAND_MEAN)
    scale, zp = 0.03, 7
    q = F.quantize_logmel(logmel, cfg, scale, zp)
    ref = np.clip(np.round(F.normalize(logmel, cfg) / scale) + zp, -128, 127)
    assert q.dtype == np.int8 and q.shape == logmel.shape
    assert np.max(np.abs(q.astype(int) - ref)) <= 1  # the fine int16 step rounds once more
    assert np.mean(q == ref) > 0.99


def test_band_mean_removes_a_level_change_and_constant_bands_give_the_zero_point():
    rng = np.random.default_rng(3)
    logmel = rng.uniform(-10, 2, (16, 80)).astype(np.float32)
    cfg = F.fit_normalization(logmel[None], BAND_MEAN)
    q = F.quantize_logmel(logmel, cfg, 0.03, -5)
    louder = F.quantize_logmel(logmel + np.float32(np.log(4.0)), cfg, 0.03, -5)  # 6 dB more in every band
    assert np.max(np.abs(q.astype(int) - louder)) <= 1 and np.mean(q == louder) > 0.98
    flat = np.broadcast_to(rng.uniform(-14, 4, (1, 80)).astype(np.float32), (16, 80))  # silence, DC: constant per band
    assert np.all(F.quantize_logmel(flat, cfg, 0.03, -5) == -5)


def test_band_mean_statistics_are_those_of_the_clip_centred_values():
    rng = np.random.default_rng(4)
    offsets = rng.normal(0, 5, (50, 1, 80))  # per-clip levels: what the clip mean removes
    logmel = (offsets + rng.normal(0, 1, (50, 16, 80))).astype(np.float32)
    cfg = F.fit_normalization(logmel, BAND_MEAN)
    assert np.allclose(cfg.band_std, 1.0, atol=0.1)  # the spread within clips, not the 5.1 across them
    glob = F.fit_normalization(logmel, F.FrontendConfig(clip_norm="none"))
    assert np.all(np.asarray(glob.band_std) > 3.0)


def test_fine_values_saturate_instead_of_wrapping():
    cfg = F.FrontendConfig(clip_norm="band-mean").with_normalization(np.zeros(80), np.full(80, 1e-3))
    w = F.fine_features(np.array([[1e4, -1e4, np.nan] + [0.0] * 77] * 16, np.float32), cfg, 0.01)
    assert w.dtype == np.int16 and w[0, 0] == 32767 and w[0, 1] == -32768 and w[0, 2] == -32768


def test_rdiv_rounds_half_away_from_zero():
    assert F.rdiv(np.array([7, 8, 9, -7, -8, -9, 0]), 16).tolist() == [0, 1, 1, 0, -1, -1, 0]


def test_configs_from_before_clip_norm_mean_the_global_normalization():
    d = F.FrontendConfig().to_dict()
    del d["clip_norm"]
    assert F.FrontendConfig.from_dict(d).clip_norm == "none"
    with pytest.raises(ValueError, match="clip_norm"):
        F.FrontendConfig(clip_norm="per-clip-std")
    assert F.FrontendConfig(clip_norm="none").sha256() != F.FrontendConfig().sha256()
