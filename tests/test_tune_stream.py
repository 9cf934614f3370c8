"""benchmarks/tune_stream.py: the detector sweep on training-split streams (the released int8 model)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from benchmarks import tune_stream as T
from firmware_build import RELEASED, require_generated
from train import stream as S


def test_grid_parsing_names_the_bad_item():
    assert T.parse_grid(["reject_margin=0,64", "slide_stride=8"]) == {"reject_margin": (0, 64), "slide_stride": (8,)}
    with pytest.raises(ValueError, match="reject_margn"):
        T.parse_grid(["reject_margn=1"])
    with pytest.raises(ValueError, match="integers"):
        T.parse_grid(["reject_margin=a"])


def test_configs_skip_invalid_and_repeated_combinations():
    cfgs = T.configs({"slide_stride": (0, 8), "detect_threshold": (-128, 0), "smooth_windows": (1, 2),
                      "min_count": (1, 2)})
    one = [c for c in cfgs if not c.slide_stride]
    # sliding-only settings do not multiply one-window runs; one window starts 1 frame early, sliding ones as the
    # defaults' do
    assert len(one) == 1 and one[0] == dataclasses.replace(S.DEFAULT_STREAM, slide_stride=0, window_pre=1)
    slide = [c for c in cfgs if c.slide_stride]
    assert all(c.min_count <= c.smooth_windows and c.window_pre == S.DEFAULT_STREAM.window_pre for c in slide)
    assert all(c.window_pre == 3 for c in T.configs({"slide_stride": (8,)}, base=S.StreamConfig(slide_stride=0)))
    assert len(slide) == 2 * 3  # 2 thresholds x (1,1), (2,1), (2,2)
    high = T.configs({"start_delta": (40,)})[0]
    assert (high.start_delta, high.stop_delta) == (40, 16)
    assert high.changes() == "start_delta=40 stop_delta=16" and S.DEFAULT_STREAM.changes() == "(defaults)"


def test_sweep_on_training_streams(fsdd_dir, tmp_path):
    """With one window per utterance, a larger top-1 margin can only turn digit events into rejections: recall
    and false digits fall or stay (sliding windows need not: a window rejected early lets a later one fire);
    the JSON holds every configuration, and the choice is the best admissible one."""
    require_generated()
    out = tmp_path / "sweep"
    assert T.main(["--model", str(RELEASED), "--data-dir", str(fsdd_dir), "--grid", "reject_margin=0,64,255", "slide_stride=0",
                   "--streams", "1", "--noise-minutes", "1", "--synthetic-minutes", "1", "--no-progress",
                   "--max-false-per-hour", "100000", "--out", str(out)]) == 0
    js = json.loads(out.with_suffix(".json").read_text())
    rows = js["rows"]
    assert [r["config"]["reject_margin"] for r in rows] == [0, 64, 255]
    rec = [r["recall"] for r in rows]
    fa = [r["models"][0]["false_real"] + r["models"][0]["false_synthetic"] for r in rows]
    assert rec[0] >= rec[1] >= rec[2] and fa[0] >= fa[1] >= fa[2]
    assert rec[0] > 0.3, "the released model should recall training-split digits"
    top = [r for r in rows if r["recall"] == max(rec)]  # ties: the fewest false digits on the real noise
    assert js["chosen"] in [r["config"] for r in top if (r["false_per_hour_real"] or 0) == min(t["false_per_hour_real"] or 0 for t in top)]
    assert set(rows[0]["by_condition"]) >= {"clean", "10 dB pink"}
    assert "Chosen" in out.with_suffix(".md").read_text()
    assert js["noise_split"] == "val" and "validation noise recordings" in out.with_suffix(".md").read_text()
    with pytest.raises(ValueError, match="stream benchmark"):  # the held-out recordings are never a choice's
        T.make_audio(str(fsdd_dir), 0, 1, 1.0, 0.0, noise_split="test")
    assert S.StreamConfig.from_dict(json.loads((tmp_path / "sweep-chosen.json").read_text())).to_dict() == js["chosen"]


def test_missing_model_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        T.main(["--model", str(tmp_path)])
    assert "no model_int8.tflite" in capsys.readouterr().err


def test_pareto_keeps_undominated_outcomes_once():
    def row(recall, fa, i):
        return {"recall": recall, "false_per_hour_real": fa, "false_per_hour_synthetic": 0.0, "substituted": 0,
                "repeats": 0, "config": S.StreamConfig(reject_margin=i)}

    rows = [row(0.5, 10, 0), row(0.5, 10, 1), row(0.6, 20, 2), row(0.55, 30, 3), row(0.4, 0, 4)]
    front = T.pareto(rows)
    assert [r["config"].reject_margin for r in front] == [4, 0, 2]  # 3 is beaten by 2 on both counts
    assert front[1]["same"] == 1  # margin 1 had margin 0's outcome
    assert T.choose(rows, 15)["config"].reject_margin == 0 and T.choose(rows, -1) is None
    # a latency bound (90th percentile) leaves out the slower rows
    for r, p90 in zip(rows, (400.0, 400.0, 250.0, 100.0, 300.0)):
        r["latency_ms"] = {"median_ms": p90 / 2, "p90_ms": p90, "max_ms": p90}
    assert T.choose(rows, 15, max_latency_ms=300)["config"].reject_margin == 4
    assert T.choose(rows, 25, max_latency_ms=300)["config"].reject_margin == 2
    assert T.choose(rows, 25, max_latency_ms=50) is None
    assert T.latency_ms([]) is None


@pytest.mark.skipif(not T.NOISE_DIR.is_dir(), reason="needs ../shared/data/noise (the noise recordings)")
def test_false_digits_per_recording(tmp_path):
    """--recordings: every recording is named, marked training or held out, with one count per model."""
    require_generated()
    from train.reject import HELD_OUT_NOISE

    res = T.per_recording([str(RELEASED)], seconds=2.0)
    assert set(HELD_OUT_NOISE) <= set(res["recordings"])
    assert all(r["held_out"] == (name in HELD_OUT_NOISE) and len(r["false_digits"]) == 1
               for name, r in res["recordings"].items())
    assert {r["split"] for r in res["recordings"].values()} == {"train", "val", "test"}
    md = T.recordings_md(res)
    assert "all held out" in md and "fc_rain.wav | held out" in md and "fc_water.wav | validation" in md


def test_validation_speaker_digits_are_each_models_own(fsdd_dir, tmp_path):
    """--digits val-speaker: each model's streams say only its metrics.json's validation speaker; a model
    without one is refused by name."""
    from train import data as D

    a, b = tmp_path / "a", tmp_path / "b"
    for d, sp in ((a, "theo"), (b, "jackson")):
        d.mkdir()
        (d / "metrics.json").write_text(json.dumps({"val_speaker": sp}))
    ds = D.load_dataset(fsdd_dir)
    got = T.validation_speaker_digits([str(a), str(b)], ds, T._bank("val"), 3, 1)
    by_speaker = {sp: {(int(c.digit), len(c.samples)) for c, s in zip(ds.clips, ds.speakers) if s == sp}
                  for sp in ("theo", "jackson")}
    for m, sp in ((str(a), "theo"), (str(b), "jackson")):
        conds = [c for c, _ in got[m]]
        assert conds[0] == "clean" and len(conds) == len(set(conds)) >= 3  # one stream per condition
        clean = got[m][0][1]
        assert len(clean.truth) == 10
        # each utterance is one of that speaker's clips (its digit and its length; gains drift in a stream)
        assert all((t.digit, t.end - t.start + 1) in by_speaker[sp] for t in clean.truth)
    (b / "metrics.json").write_text(json.dumps({}))
    with pytest.raises(ValueError, match="names no validation speaker"):
        T.validation_speaker_digits([str(a), str(b)], ds, T._bank("val"), 3, 1)


def test_report_without_noise_minutes_says_unmeasured():
    """With no noise played (--noise-minutes 0 --synthetic-minutes 0) the false digits per hour are unknown: the
    table shows '-' for them instead of failing on None."""
    import argparse

    r = {"recall": 0.4, "false_per_hour_real": None, "false_per_hour_synthetic": None, "substituted": 2,
         "repeats": 0, "by_condition": {"clean": 0.6}, "config": S.StreamConfig(),
         "models": [{"recall": 0.4, "false_real": 0}]}
    args = argparse.Namespace(streams=1, noise_minutes=0.0, synthetic_minutes=0.0, noise_split="val",
                              max_false_per_hour=12.0, digits="training")
    md, js = T.report([r], r, ["m"], args)
    assert "| **40.0 %** | 60 | - | - | 2 | 0 | - | 40.0 % / 0 |" in md and js["rows"][0]["false_per_hour_real"] is None
    r["latency_ms"] = T.latency_ms([800, 1600, 2400])  # samples at 8 kHz: 100, 200 and 300 ms
    md, _ = T.report([r], r, ["m"], args)
    assert "| 2 | 0 | 200 / 280 / 300 | 40.0 % / 0 |" in md
