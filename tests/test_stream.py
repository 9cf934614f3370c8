"""Continuous recognition: the streaming reference (train/stream.py) and its C twin.

Reference: train.stream.reference_events (integer detector on exact frame
energies, the clip window rule over the utterance, TFLite Micro on the
window). Device: sd_frontend.c's streaming mode and the generated model,
built for the host, fed through firmware/tests/stream/stream_main.c.
The C twin must report exactly the reference's events (frames, samples,
outputs), with its windows inside the front end's parity contract.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from firmware_build import GENERATED, RELEASED, build_test, require_generated
from train import features as F
from train import stream as S
from train import streamgen as G

HOP = 256


# -- the reference on its own ---------------------------------------------------
def test_level_is_sixteen_steps_per_octave():
    assert S.level(0) == 0 and S.level(1) == 0
    for b in range(1, 50):
        assert S.level(1 << b) == 16 * b
        assert S.level((1 << b) + (1 << b) // 2) == 16 * b + (8 if b >= 1 else 0)
    rng = np.random.default_rng(0)
    es = rng.integers(2, 1 << 40, 2000)
    lv = [S.level(int(e)) for e in es]
    # linear between octaves (at most 1.38 units low) and truncated (under 1 more): never above 16 * log2(e)
    assert all(16 * math.log2(int(e)) - 2.4 < v <= 16 * math.log2(int(e)) + 1e-9 for e, v in zip(es, lv))
    srt = sorted(es)
    assert [S.level(int(e)) for e in srt] == sorted(S.level(int(e)) for e in srt)  # monotone


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="stop_delta"):
        S.StreamConfig(start_delta=10, stop_delta=20)
    with pytest.raises(ValueError, match="min_frames"):
        S.StreamConfig(min_frames=0)
    with pytest.raises(ValueError, match="hangover"):
        S.StreamConfig(hangover=-1)
    with pytest.raises(ValueError, match="unknown stream config fields"):
        S.StreamConfig.from_dict({"start_delta": 40, "speed": 2})
    c = S.StreamConfig(reject_margin=12)
    assert S.StreamConfig.from_dict(c.to_dict()) == c and c.sha256() != S.DEFAULT_STREAM.sha256()


ONE = dict(slide_stride=0, window_pre=1)
"""The one-window-per-utterance mode (steps 5-6), which the detector tests below exercise."""


def _energies(pattern):
    """Frame energies from (level-ish energy, frames) runs."""
    return [e for e, n in pattern for _ in range(n)]


def test_detector_finds_a_burst_and_uses_hangover():
    c = S.StreamConfig(hangover=6, **ONE)
    quiet, loud = 1 << 20, 1 << 30  # levels 320 and 480: 160 units (30 dB) apart
    utts = S.detect(_energies([(quiet, 40), (loud, 10), (quiet, 3), (loud, 5), (quiet, 40)]), c)
    assert len(utts) == 1  # a 3-frame gap is inside the 6-frame hangover
    u = utts[0]
    assert (u.first_frame, u.last_frame) == (40, 57)
    assert u.decided_frame == 57 + c.hangover + 1
    # loud frames 40-49 and 53-57 span 18 frames: windows starting at 40, 41 and 42 each hold 13 loud
    # frames (the most); the earliest wins the tie
    assert u.window_start == 40
    assert u.samples(HOP) == (39 * HOP, 58 * HOP - 1)


def test_detector_drops_clicks_splits_gaps_and_caps_length():
    c = S.StreamConfig(hangover=4, **ONE)
    quiet, loud = 1 << 20, 1 << 30
    assert S.detect(_energies([(quiet, 40), (loud, c.min_frames - 1), (quiet, 40)]), c) == []
    two = S.detect(_energies([(quiet, 40), (loud, 8), (quiet, c.hangover + 1), (loud, 8), (quiet, 40)]), c)
    assert len(two) == 2
    long = S.detect(_energies([(quiet, 40), (loud, 3 * c.max_frames)]), c)
    assert [u.last_frame - u.first_frame + 1 for u in long] == [c.max_frames] * 3
    assert long[-1].decided_frame == 40 + 3 * c.max_frames - 1  # the last one at the end of the stream


def test_detector_ignores_silence_warmup_and_steady_noise():
    c = S.StreamConfig()
    assert S.detect([0] * 500, c) == []
    loud = 1 << 30
    assert S.detect([loud] * 10 + [0] * 100, c) == []  # loud only during the 15-frame warm-up
    rng = np.random.default_rng(3)
    noise = G.noise_stream(20, rng, kind="white", rms=2000, step_db=0.0)
    cfg = F.FrontendConfig()
    assert S.detect(S.stream_energies(noise.samples, cfg), c) == []


def test_stream_frames_are_the_clip_frames_of_the_whole_stream():
    cfg = F.FrontendConfig()
    rng = np.random.default_rng(5)
    x = np.round(rng.standard_normal(8000 + 77) * 3000).astype(np.int16)
    whole = F.log_mel_frames(x, cfg)
    n = len(x) // HOP
    assert len(S.stream_energies(x, cfg)) == n
    np.testing.assert_array_equal(S.stream_energies(x, cfg), F.frame_energies(x, cfg)[:n])
    for k0, k1 in ((0, 16), (3, 19), (n - 16, n)):
        np.testing.assert_array_equal(S.stream_logmel(x, cfg, slice(k0, k1)), whole[k0:k1])


def test_score_applies_the_mlperf_rule():
    truth = [G.Truth(3, 8000, 12000), G.Truth(5, 30000, 34000)]
    ev = [S.Event(3, 0, 12500, [0] * 10), S.Event(3, 0, 13000, [0] * 10),  # a repeat counts once
          S.Event(5, 0, 34000 + 8000, [0] * 10),  # 1 s after the end: still inside
          S.Event(7, 0, 60000, [0] * 10), S.Event(None, 0, 61000, [0] * 10)]
    sc = G.score(ev, truth)
    assert (sc["recalled"], sc["false_detections"], sc["rejected"], sc["substituted"]) == (2, 1, 1, 0)
    # latency: the first right detection against the end of speech (the clip's end when not given)
    assert sc["latency_samples"] == [500, 8000] and sc["recalled_by"] == [[0, 0], [1, 2]]
    sc = G.score([S.Event(4, 0, 12500, [0] * 10)], truth)
    assert (sc["recalled"], sc["substituted"], sc["missed"]) == (0, 1, 1)
    assert sc["latency_samples"] == []
    sc = G.score([S.Event(3, 0, 11000, [0] * 10)], [G.Truth(3, 8000, 12000, 10000)])
    assert sc["latency_samples"] == [1000]


def test_speech_end_is_the_last_loud_frame():
    """A clip's trailing quiet (more than 30 dB below its loudest frame) is not speech; a quieter tail within
    30 dB is."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1000, 2560), rng.normal(0, 100, 512), rng.normal(0, 10, 1024)])
    assert G.speech_end(x) == 2560 + 512 - 1  # the -20 dB tail counts, the -40 dB one does not
    assert G.speech_end(np.zeros(1000)) == 999
    assert G.speech_end(x[:100]) == 99  # shorter than a frame
    st = G.make_stream([type("C", (), {"samples": x.astype(np.int16), "digit": 3})()], rng, n_digits=1, snr_db=None)
    t = st.truth[0]
    assert t.speech_end - t.start == 2560 + 512 - 1 and t.end - t.start == len(x) - 1
    assert t.shifted(100).speech_end == t.speech_end + 100


# -- the C twin ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def stream_bin():
    require_generated()
    return build_test("tests/stream/stream_main.c")


@pytest.fixture(scope="module")
def reference():
    from convert.reference import Reference

    require_generated()
    return Reference.from_dir(RELEASED)


def run_c(binary, streams, chunk=0):
    from benchmarks.stream import run_c_stream

    return run_c_stream(binary, streams, chunk, timeout=600)


# the detection mode the release does not use, built from a copy of firmware/generated with its constants
OTHER_STREAM = (S.StreamConfig(slide_stride=6, smooth_windows=2, min_count=2, suppress_frames=12, detect_threshold=-20)
                if not S.DEFAULT_STREAM.slide_stride else S.StreamConfig(slide_stride=0))
# ... and the sliding mode with the other close_wait rule (a short word decided early, or at k0)
CLOSE_STREAM = dataclasses.replace(S.DEFAULT_STREAM, slide_stride=S.DEFAULT_STREAM.slide_stride or 8,
                                   close_wait=2 if S.DEFAULT_STREAM.close_wait > 16 else 255)


def _stream_bin_with(tmp_path_factory, scfg):
    """The stream test binary built from a copy of firmware/generated with ``scfg``'s constants."""
    import shutil

    from convert.firmware_gen import generate_stream_h

    require_generated()
    gen = tmp_path_factory.mktemp("gen-other-stream")
    for f in GENERATED.iterdir():
        shutil.copy(f, gen / f.name)
    generate_stream_h(scfg, gen)
    return build_test("tests/stream/stream_main.c", extra=[f"GEN={gen}"])


@pytest.fixture(scope="module")
def other_stream_bin(tmp_path_factory):
    return _stream_bin_with(tmp_path_factory, OTHER_STREAM)


@pytest.fixture(scope="module")
def close_stream_bin(tmp_path_factory):
    return _stream_bin_with(tmp_path_factory, CLOSE_STREAM)


MODES = {"default": ("stream_bin", S.DEFAULT_STREAM), "other": ("other_stream_bin", OTHER_STREAM),
         "close": ("close_stream_bin", CLOSE_STREAM)}


def reference_run(reference, samples, scfg=S.DEFAULT_STREAM):
    events, utts = S.reference_events(samples, reference.cfg, reference.infer, reference.input_scale,
                                      reference.input_zero_point, scfg, labels=reference.labels)
    n = reference.cfg.n_frames
    wins = [F.quantize_logmel(S.stream_logmel(samples, reference.cfg, slice(u.window_start, u.window_start + n)),
                              reference.cfg, reference.input_scale, reference.input_zero_point)
            if getattr(u, "window", True) else None for u in utts]
    return events, utts, wins


def test_band_filter_is_the_cascade_and_ignores_dc():
    """Step 1's band energy: the convolution with (1 - z^-1)(1 + z^-1)^order equals the device's cascade
    (difference, then sums of neighbours, state carried from hop to hop); a DC offset has none; a
    1 kHz tone has more than white noise of the same frame energy (|H|^2 = 80 there, 28 on average)."""
    c = S.DEFAULT_STREAM
    assert c.band_taps == (1, 3, 2, -2, -3, -1) and S.StreamConfig(band_order=0).band_taps == ()
    cfg = F.FrontendConfig()
    rng = np.random.default_rng(9)
    x = rng.integers(-32768, 32768, 256 * 7 + 100).astype(np.int16)
    st, hops = [0] * (c.band_order + 1), []
    e = 0
    for i, v in enumerate(x[: 256 * 7].astype(np.int64)):
        y, st[0] = v - st[0], v
        for j in range(1, c.band_order + 1):
            y, st[j] = y + st[j], y
        e += y * y
        if i % 256 == 255:
            hops.append(e)
            e = 0
    want = np.array(hops) + np.array([0] + hops[:-1])
    assert S.band_energies(x, cfg, c.band_taps).tolist() == want.tolist()
    assert S.band_energies(np.full(2048, 12345, np.int16), cfg, c.band_taps)[2:].tolist() == [0] * 6  # after the onset
    assert S.band_energies(x, cfg, ()) is None
    t = np.arange(256 * 8) / 8000
    tone = np.round(3000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    noise = np.round(rng.standard_normal(len(t)) * 3000 / np.sqrt(2)).astype(np.int16)
    bt, bn = S.band_energies(tone, cfg, c.band_taps)[3], S.band_energies(noise, cfg, c.band_taps)[3]
    et, en = S.stream_energies(tone, cfg)[3], S.stream_energies(noise, cfg)[3]
    assert abs(np.log2(et / en)) < 0.2 and S.level(bt) - S.level(bn) > 16  # gain 80 vs 28: > 3 dB apart
    with pytest.raises(ValueError, match="band_order"):
        S.StreamConfig(band_order=8)


def test_generated_stream_constants_are_the_reference_config():
    from convert.firmware_gen import generate_stream_h

    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        fresh = generate_stream_h(S.DEFAULT_STREAM, Path(d)).read_text()
    assert (GENERATED / "sd_stream_config.h").read_text() == fresh, "regenerate: python -m convert.firmware_gen"


def _test_streams(fsdd_dir):
    from train import data as D

    ds = D.load_dataset(fsdd_dir)
    _, test = D.split_indices(ds, "official")
    clips = [ds.clips[i] for i in test]
    rng = np.random.default_rng(11)
    out = {f"digits_snr{snr}": G.make_stream(clips, rng, n_digits=6, snr_db=snr).samples for snr in (None, 20)}
    t = np.arange(8000 * 3) / 8000
    out["silence"] = np.zeros(8000 * 3, np.int16)
    out["full_scale_noise"] = rng.integers(-32768, 32768, 8000 * 3).astype(np.int16)
    out["clipped_tone_bursts"] = np.where((t % 1.0) > 0.6, np.clip(np.round(60000 * np.sin(2 * np.pi * 440 * t)),
                                                                   -32768, 32767), 0).astype(np.int16)
    out["short"] = np.round(1000 * np.sin(2 * np.pi * 300 * t[:3000])).astype(np.int16)
    # speech on a DC offset and a near-full-scale square step (the band filter's extremes: a DC
    # offset gives no band energy; a +-32767 step gives its largest output)
    dc = G.make_stream(clips, rng, n_digits=3, snr_db=30).samples.astype(np.int32) + 9000
    out["digits_on_dc"] = np.clip(dc, -32768, 32767).astype(np.int16)
    out["square_steps"] = np.where((np.arange(8000 * 2) // 300) % 2 == 0, 32767, -32768).astype(np.int16)
    return out


@pytest.mark.parametrize("mode", list(MODES))
def test_c_stream_events_equal_the_reference(request, reference, fsdd_dir, mode):
    """Both detection modes (one window per utterance, sliding windows with smoothing) and both rules for a short
    word's last window (close_wait): detections (frames, samples) and labels are integer decisions, always
    identical; so are the windows and outputs."""
    binary = request.getfixturevalue(MODES[mode][0])
    scfg = MODES[mode][1]
    streams = _test_streams(fsdd_dir)
    got = run_c(binary, list(streams.values()))
    n_events = 0
    for (name, x), (events, n_frames) in zip(streams.items(), got):
        ref_events, utts, wins = reference_run(reference, x, scfg)
        assert n_frames == len(x) // HOP, name
        dev = [(e["frames"], e["start"], e["end"]) for e in events]
        ref = [((u.first_frame, u.last_frame, u.decided_frame, u.window_start), ev.start, ev.end)
               for u, ev in zip(utts, ref_events)]
        assert dev == ref, f"{name}: device detections differ from the reference"
        assert [e["label"] for e in events] == [reference.labels.names.index(ev.label) if ev.label else None
                                                  for ev in ref_events], name
        for e, ev, w in zip(events, ref_events, wins):
            assert (e["window"] is None) == (w is None), name
            if w is None:
                continue
            assert np.array_equal(e["window"], w), f"{name}: the device's window differs from the reference's"
        assert [e["outputs"] for e in events] == [ev.outputs for ev in ref_events], name
        n_events += len(events)
    assert n_events >= 6, "the digit streams should give events"


@pytest.mark.parametrize("chunk", [1, 37, 512])
def test_c_stream_chunking_does_not_matter(stream_bin, fsdd_dir, chunk):
    x = _test_streams(fsdd_dir)["digits_snr20"]
    whole = run_c(stream_bin, [x])[0][0]
    parts = run_c(stream_bin, [x], chunk=chunk)[0][0]
    assert [(e["frames"], e["outputs"]) for e in parts] == [(e["frames"], e["outputs"]) for e in whole]


# -- sliding windows (steps 5s-7s) -------------------------------------------------------
SLIDE = S.StreamConfig(slide_stride=6, hangover=4, window_pre=1)


def test_sliding_detector_schedules_windows_while_the_gate_is_open():
    quiet, loud = 1 << 20, 1 << 30
    evs = S.detect(_energies([(quiet, 40), (loud, 30), (quiet, 40)]), SLIDE)
    k0 = 40 - SLIDE.window_pre + 15  # the first window starts window_pre frames before the first loud one
    close = 69 + SLIDE.hangover + 1  # quiet for more than the hangover after the last loud frame (69)
    assert [e.frame for e in evs] == [k0, k0 + 6, k0 + 12, k0 + 18, close]  # the quiet frames before the close count
    assert [(e.first, e.last) for e in evs] == [(True, False)] + [(False, False)] * 3 + [(False, True)]
    assert all(e.window and e.window_start == e.frame - 15 and e.first_frame == 40 for e in evs)
    assert evs[-1].samples(HOP) == (39 * HOP, (close + 1) * HOP - 1)
    # a short word ends before its first window is complete: that window is its only one, and its last
    short = S.detect(_energies([(quiet, 40), (loud, 5), (quiet, 40)]), SLIDE)
    assert [(e.frame, e.first, e.last) for e in short] == [(k0, True, True)]
    # a click is dropped; the warm-up hears nothing
    assert S.detect(_energies([(quiet, 40), (loud, SLIDE.min_frames - 1), (quiet, 40)]), SLIDE) == []
    assert S.detect([loud] * 10 + [0] * 100, SLIDE) == []


def test_sliding_detector_at_the_end_of_the_stream():
    quiet, loud = 1 << 20, 1 << 30
    k0 = 40 - SLIDE.window_pre + 15
    # cut off by the end: closed at the last frame with a window of its own ...
    evs = S.detect(_energies([(quiet, 40), (loud, 20)]), SLIDE)
    assert [(e.frame, e.last, e.window) for e in evs] == [(k0, False, True), (59, True, True)]
    # ... or, when that frame's window was just evaluated, closed without a new one
    evs = S.detect(_energies([(quiet, 40), (loud, k0 - 40 + 7)]), SLIDE)
    assert [(e.frame, e.last, e.window) for e in evs] == [(k0, False, True), (k0 + 6, False, True),
                                                          (k0 + 6, True, False)]
    # too short for a complete window when the stream ends: nothing to classify
    assert S.detect(_energies([(quiet, 40), (loud, 8)]), SLIDE) == []


def test_close_wait_bounds_how_long_a_short_word_waits():
    quiet, loud = 1 << 20, 1 << 30
    k0 = 40 - SLIDE.window_pre + 15
    close = 44 + SLIDE.hangover + 1  # a 5-frame word (40-44) ends here, well before k0
    word = _energies([(quiet, 40), (loud, 5), (quiet, 40)])
    assert [e.frame for e in S.detect(word, SLIDE)] == [k0]  # the default waits for the first window
    for wait, frame in ((0, close), (3, close + 3), (k0 - close, k0), (k0 - close + 5, k0)):
        evs = S.detect(word, dataclasses.replace(SLIDE, close_wait=wait))
        assert [(e.frame, e.first, e.last, e.window_start) for e in evs] == [(frame, True, True, frame - 15)], wait
    # a long word is not affected: its windows come on the schedule before it ends
    long_word = _energies([(quiet, 40), (loud, 30), (quiet, 40)])
    assert S.detect(long_word, dataclasses.replace(SLIDE, close_wait=0)) == S.detect(long_word, SLIDE)
    # cut off by the end of the stream before k0: closed there and evaluated when no wait is left
    cut = _energies([(quiet, 40), (loud, 8)])
    assert S.detect(cut, dataclasses.replace(SLIDE, close_wait=2)) == []
    assert [(e.frame, e.last) for e in S.detect(cut, dataclasses.replace(SLIDE, close_wait=0))] == [(47, True)]
    with pytest.raises(ValueError, match="close_wait"):
        S.StreamConfig(close_wait=256)


def _ev(frame, first=False, last=False, window=True):
    return S.Evaluation(frame, 40, frame, frame - 15, first, last, window)


def test_smoother_averages_thresholds_and_suppresses():
    from train.labels import Labels

    labels = Labels(tuple("0123456789") + ("noise", "other"))
    c = S.StreamConfig(slide_stride=6, smooth_windows=2, min_count=2, detect_threshold=0, reject_margin=64,
                       suppress_frames=12)
    sm = S.Smoother(c, labels)

    def out(**kv):
        o = [-128] * 12
        for k, v in kv.items():
            o[labels.names.index(k.lstrip("_"))] = v
        return o

    assert sm.step(_ev(60, first=True), out(_3=127), HOP) is None  # one window: below min_count
    e = sm.step(_ev(66), out(_3=100), HOP)  # average (127 + 100) / 2 = 113
    assert (e.digit, e.label, e.outputs[3], e.end) == (3, "3", 113, 67 * HOP - 1)
    assert sm.step(_ev(72), out(_3=127), HOP) is None  # 3 again, 6 frames later: suppressed
    assert sm.step(_ev(78), out(_5=127), HOP) is None  # 3 and 5 tie in the average: no margin
    e = sm.step(_ev(84), out(_5=127), HOP)  # 18 frames after the 3: 5 fires
    assert (e.label, e.outputs[5], e.outputs[3]) == ("5", 127, -128)
    # a utterance with only non-digit windows closes with one event: the top rejection class
    assert sm.step(_ev(100, first=True), out(noise=120), HOP) is None
    e = sm.step(_ev(106, last=True), out(noise=110, other=0), HOP)
    assert (e.digit, e.label) == (None, "noise")
    # a digit below the threshold at the close: rejected (no label); averages floor like the device
    sm.step(_ev(200, first=True), out(_7=-1), HOP)
    e = sm.step(_ev(206, last=True), out(_7=-2), HOP)
    assert (e.digit, e.label, e.outputs[7], e.outputs[0]) == (None, None, -2, -128)
    # a close without a window uses what the utterance has
    sm.step(_ev(300, first=True), out(_1=127), HOP)
    e = sm.step(_ev(300, last=True, window=False), None, HOP)
    assert e.label == "1"


def test_sliding_config_is_checked():
    with pytest.raises(ValueError, match="slide_stride"):
        S.StreamConfig(slide_stride=2)
    with pytest.raises(ValueError, match="min_count"):
        S.StreamConfig(smooth_windows=2, min_count=3)
    with pytest.raises(ValueError, match="detect_threshold"):
        S.StreamConfig(detect_threshold=128)
    with pytest.raises(ValueError, match="window_pre"):
        S.Detector(S.StreamConfig(window_pre=16), 16)


def test_benchmark_reads_the_c_twins_labels():
    """benchmarks.stream parses the C twin's lines (the tests here read them the same way) and takes an event's
    label from them: -1 is no label; in the sliding mode the label cannot be recomputed from the averaged outputs."""
    from benchmarks import stream as B

    line = "E 1 2 3 0 256 767 {} " + " ".join(["127"] + ["-128"] * 9) + " {}\nS 40\n"
    [(evs, frames)] = B.parse_c_stream(line.format(-1, "-"))
    ev = B._c_event(evs[0])
    assert (frames, evs[0]["frames"], evs[0]["window"]) == (40, (1, 2, 3, 0), None)
    assert (ev["digit"], ev["label"], ev["outputs"][0], ev["start"], ev["end"]) == (None, None, 127, 256, 767)
    [(evs, _)] = B.parse_c_stream(line.format(3, "01" * 1280))
    assert B._c_event(evs[0])["digit"] == 3 and evs[0]["window"].shape == (16, 80) and evs[0]["window"][0, 0] == 1


@pytest.mark.parametrize("scfg", [S.DEFAULT_STREAM, OTHER_STREAM], ids=["default", "other"])
def test_stream_analysis_gives_the_samples_events(reference, fsdd_dir, scfg):
    """A sweep reuses one StreamAnalysis (energies, band energies, frames) across detector configurations: its
    events must be the events of the samples themselves, and reusing it must not change them."""
    x = _test_streams(fsdd_dir)["digits_snr20"]
    args = (reference.cfg, reference.infer, reference.input_scale, reference.input_zero_point)
    want, _ = S.reference_events(x, *args, scfg, labels=reference.labels)
    a = S.StreamAnalysis(x, reference.cfg)
    other = OTHER_STREAM if scfg == S.DEFAULT_STREAM else S.DEFAULT_STREAM
    S.reference_events(a, *args, other, labels=reference.labels)  # fills the caches under another config first
    got, _ = S.reference_events(a, *args, scfg, labels=reference.labels)
    assert want and [e.to_dict() for e in got] == [e.to_dict() for e in want]


def test_held_out_streams_use_only_folds_of_the_models_labels(reference, fsdd_dir, tmp_path):
    """benchmarks.stream's held-out-speaker streams run each fold's own model; a fold whose labels are not the
    benchmarked model's is another recipe and is skipped by name, and each fold's training arguments are kept."""
    import json
    import shutil

    from benchmarks import stream as B
    from train import data as D
    from train.labels import Labels

    ds = D.load_dataset(fsdd_dir)
    first, second = sorted({c.speaker for c in ds.clips})[:2]
    for sp in (first, second):
        d = tmp_path / sp
        d.mkdir()
        for f in ("model_int8.tflite", "frontend.json", "labels.json"):
            if (RELEASED / f).is_file():
                shutil.copy(RELEASED / f, d / f)
    (tmp_path / first / "fold.json").write_text(json.dumps({"key": {"train_args": ["--seed", "0"]}}))
    Labels(tuple(f"w{i}" for i in range(len(reference.labels)))).save(tmp_path / second)  # as many, other names
    held = B.held_out_speakers(ds, None, 5, tmp_path, reference.labels, streams_per_condition=1)
    assert list(held["speakers"]) == [first] and held["speakers"][first]["train_args"] == ["--seed", "0"]
    assert second in held["skipped"] and "w0" in held["skipped"][second]
    rec = held["speakers"][first]["recall"]
    assert rec["clean"][1] == 10 and rec["clean"][0] >= 5, "the released model should hear its own training voices"
    # with a recipe, a fold must be that recipe's, trained by the code as it stands (its fold.json says)
    from benchmarks.run import fold_key

    args = ["--val-speaker", "auto", "--seed", "1", "--reject"]
    (tmp_path / first / "fold.json").write_text(json.dumps({"key": fold_key(first, tuple(args), True)}))
    assert B.fold_mismatch(tmp_path / first, ["--reject"]) is None
    assert "not the recipe --reject --stream-windows 3" in B.fold_mismatch(tmp_path / first, ["--reject", "--stream-windows", "3"])
    stale = {"key": {**fold_key(first, tuple(args), True), "code": "0" * 64}}
    (tmp_path / first / "fold.json").write_text(json.dumps(stale))
    assert "older code" in B.fold_mismatch(tmp_path / first, ["--reject"])
    assert "no fold.json" in B.fold_mismatch(tmp_path / second, ["--reject"])
    held = B.held_out_speakers(ds, None, 5, tmp_path, reference.labels, streams_per_condition=1, recipe=["--reject"])
    assert held["speakers"] == {} and "older code" in held["skipped"][first]
    # skipped folds are listed once per reason
    lines = B.skipped_lines({"b": "old", "a": "old", "c": "new"})
    assert lines == ["- Skipped a, b: old.", "- Skipped c: new."]


def test_stream_state_size_is_measured_on_the_m4():
    """benchmarks.stream measures the streaming mode's RAM from the compiled structs (firmware/tools/
    stream_state_size.c); the decider's size follows the generated config: int8 outputs of the last
    smooth_windows windows, then four 32-bit fields."""
    import shutil

    import re

    from benchmarks import stream as B

    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("no arm-none-eabi-gcc")
    got = B.stream_state_bytes()
    cfg = S.DEFAULT_STREAM
    n = int(re.search(r"#define SD_LABEL_COUNT (\d+)", (GENERATED / "sd_labels.h").read_text()).group(1))
    hist = cfg.smooth_windows * n if cfg.slide_stride > 0 else 0
    assert got["decider"] == (-(-hist // 4) * 4 + 16 if cfg.slide_stride > 0 else 4)
    # the detector's fields: a function pointer, the eight-stage band cascade and a 64-bit band energy at least
    assert got["detector"] >= 4 + 8 * 4 + 8


def test_a_stream_section_without_the_soak_reports_the_last_one(tmp_path):
    """With --soak-minutes 0 the section says what the last soak measured and whether the model, the detector's
    constants and the firmware's C it ran are still the current ones (benchmarks.stream.soak_record)."""
    from benchmarks import stream as B

    assert "no earlier soak" in B.last_soak_line("m", "s", tmp_path)
    soaked = {"minutes": 60.0, "board": "mps2-an386", "board_identical": True, "c_identical": True, "board_events": 9}
    rec = B.soak_record(soaked, "m", "s", tmp_path)
    assert rec["firmware_code"] == B.firmware_code() and len(rec["firmware_code"]) == 64
    line = B.last_soak_line("m", "s", tmp_path)
    assert "**yes** (9 board events)" in line and "nothing it ran has changed" in line
    line = B.last_soak_line("other", "s", tmp_path)
    assert "changed: model; unchanged: detector constants, firmware C" in line
    B.soak_record({**soaked, "c_identical": False}, "m", "s", tmp_path)
    assert "**NO**" in B.last_soak_line("m", "s", tmp_path)
