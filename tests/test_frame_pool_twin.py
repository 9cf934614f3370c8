"""1 s windows on the device (`--frame-pool 2`): the C front end and detector against the Python reference.

With ``frame_pool`` 2 a time step is two frames (train/features.py step 3): the device keeps frame 2j's fine
values until frame 2j + 1 completes the step, and its streaming detector counts steps, with step band energies
h(2j - 1) + 2 h(2j) + h(2j + 1) and sample positions in steps of 512 (train/stream.py). Everything is integer on
both sides, so features, detections, windows and outputs must be identical.

No pooled model is trained here: the released model's int8 graph takes the same 16 x 80 input, so a copy of
firmware/generated with a pooled front end (the release's input quantization, clip_samples 8000) is built with
it, and the reference runs the same model on the same pooled features. The outputs mean nothing as digits; the
parity is what is tested.
"""

from __future__ import annotations

import dataclasses
import shutil
import struct
import subprocess

import numpy as np
import pytest

from firmware_build import GENERATED, RELEASED, build_test, require_generated
from train import features as F
from train import stream as S
from train import streamgen as G

FEATURES = 16 * 80


@pytest.fixture(scope="module")
def pooled(tmp_path_factory):
    """(frontend binary, stream binary, Reference) for the release's model behind a pooled front end."""
    import json

    from convert.firmware_gen import generate_frontend_c
    from convert.reference import Reference
    from train.labels import Labels

    require_generated()
    released = F.FrontendConfig.load(RELEASED / "frontend.json")
    cfg = dataclasses.replace(released, frame_pool=2, clip_samples=2 * released.clip_samples)
    inp = json.loads((RELEASED / "report.json").read_text())["input"]
    gen = tmp_path_factory.mktemp("gen-pooled")
    for f in GENERATED.iterdir():
        shutil.copy(f, gen / f.name)
    generate_frontend_c(cfg, inp["scale"], inp["zero_point"], gen, stamp="test: the release's model, pooled front end")
    header = (gen / "sd_frontend_config.h").read_text()
    assert "#define SD_FRAME_POOL 2u" in header and "#define SD_STEP_HOP 512u" in header
    assert "#define SD_CLIP_SAMPLES 8000u" in header
    fe = build_test("tests/frontend/frontend_main.c", extra=[f"GEN={gen}"])
    st = build_test("tests/stream/stream_main.c", extra=[f"GEN={gen}"])
    # the detection mode the release does not use (tests/test_stream.py's OTHER_STREAM), in a folder of its own
    from convert.firmware_gen import generate_stream_h
    from test_stream import OTHER_STREAM

    other = tmp_path_factory.mktemp("gen-pooled-other")
    for f in gen.iterdir():
        shutil.copy(f, other / f.name)
    generate_stream_h(OTHER_STREAM, other)
    st_other = build_test("tests/stream/stream_main.c", extra=[f"GEN={other}"])
    return fe, {"default": (st, S.DEFAULT_STREAM), "other": (st_other, OTHER_STREAM)}, \
        Reference(RELEASED / "model_int8.tflite", cfg, Labels.load(RELEASED))


def run_clips(binary, clips, chunk=0):
    blob = b"".join(struct.pack("<II", len(c), chunk) + np.asarray(c, "<i2").tobytes() for c in clips)
    out = subprocess.run([str(binary)], input=blob, capture_output=True, timeout=300, check=True).stdout
    rec = 4 + FEATURES
    assert len(out) == rec * len(clips)
    return [np.frombuffer(out, np.int8, FEATURES, k * rec + 4).reshape(16, 80) for k in range(len(clips))]


def clips_for(fsdd_dir, n=60):
    from train import data as D

    rng = np.random.default_rng(3)
    t = np.arange(9000) / 8000
    out = [np.zeros(8000, np.int16), rng.integers(-32768, 32768, 8000).astype(np.int16),
           np.clip(np.round(80000 * np.sin(2 * np.pi * 440 * t)), -32768, 32767).astype(np.int16),
           np.array([100, -200, 300], np.int16),
           np.concatenate([np.zeros(7000, np.int16), rng.integers(-9000, 9000, 2500).astype(np.int16)]),
           np.round(3000 * np.sin(2 * np.pi * 300 * t[:8700])).astype(np.int16)]  # odd frame count: last one unpaired
    if fsdd_dir is not None:
        ds = D.load_dataset(fsdd_dir)
        _, te = D.split_indices(ds, "official")
        out += [ds.clips[i].samples for i in te[:n]]
    return out


def test_pooled_clip_features_equal_the_reference(pooled, fsdd_dir):
    fe, _, ref = pooled
    clips = clips_for(fsdd_dir)
    dev = run_clips(fe, clips, 512)
    for i, (x, d) in enumerate(zip(clips, dev)):
        assert np.array_equal(d, ref.features(x)), f"clip {i} ({len(x)} samples): device features differ"
    # pooling changes the features: the unpooled release's differ on a real clip
    from convert.reference import Reference

    plain = Reference.from_dir(RELEASED)
    assert not np.array_equal(plain.features(clips[-1]), ref.features(clips[-1]))
    for chunk in (1, 37, 256):
        assert all(np.array_equal(a, b) for a, b in zip(run_clips(fe, clips[:8], chunk), dev[:8])), chunk


def streams_for(fsdd_dir):
    rng = np.random.default_rng(12)
    t = np.arange(8000 * 3) / 8000
    out = {"silence": np.zeros(8000 * 3, np.int16),
           "tone_bursts": np.where((t % 1.0) > 0.55, np.round(9000 * np.sin(2 * np.pi * 440 * t)), 0).astype(np.int16),
           "odd_length": np.round(2000 * np.sin(2 * np.pi * 250 * t[:8000 + 700])).astype(np.int16)}
    if fsdd_dir is not None:
        from train import data as D

        ds = D.load_dataset(fsdd_dir)
        _, te = D.split_indices(ds, "official")
        clips = [ds.clips[i] for i in te]
        for snr in (None, 20):
            out[f"digits_snr{snr}"] = G.make_stream(clips, rng, n_digits=6, snr_db=snr).samples
    return out


@pytest.mark.parametrize("mode", ["default", "other"])
def test_pooled_stream_events_equal_the_reference(pooled, fsdd_dir, mode):
    """The detector in steps, in both detection modes (one window per utterance, sliding windows): frames
    (steps), samples (x 512), labels, windows and outputs are the reference's."""
    from benchmarks.stream import run_c_stream

    _, bins, ref = pooled
    st, scfg = bins[mode]
    streams = streams_for(fsdd_dir)
    got = run_c_stream(st, list(streams.values()), 0, timeout=600)
    cfg, n, events_seen = ref.cfg, ref.cfg.n_frames, 0
    for (name, x), (events, n_steps) in zip(streams.items(), got):
        assert n_steps == len(x) // cfg.step_hop == len(x) // 512, name
        ref_events, utts = S.reference_events(x, cfg, ref.infer, ref.input_scale, ref.input_zero_point,
                                              scfg, labels=ref.labels)
        dev = [(e["frames"], e["start"], e["end"]) for e in events]
        want = [((u.first_frame, u.last_frame, u.decided_frame, u.window_start), ev.start, ev.end)
                for u, ev in zip(utts, ref_events)]
        assert dev == want, f"{name}: device detections differ from the reference"
        frames = S.stream_frames(x, cfg)
        assert [e["label"] for e in events] == [ref.labels.names.index(ev.label) if ev.label else None
                                                  for ev in ref_events], name
        for e, ev, u in zip(events, ref_events, utts):
            assert e["outputs"] == ev.outputs, name
            if getattr(u, "window", True):
                w = F.quantize_logmel(frames[u.window_start : u.window_start + n], cfg, ref.input_scale,
                                      ref.input_zero_point)
                assert np.array_equal(e["window"], w), f"{name}: the device's window differs"
            assert ev.end == (u.decided_frame if scfg.slide_stride else u.last_frame) * 512 + 511
        events_seen += len(events)
    assert events_seen >= 3, "the tone bursts and digit streams should give events"
