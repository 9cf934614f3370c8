"""Choose the streaming detector's constants without test data: a sweep of `StreamConfig`s over models.

Streams are made by train/streamgen.py from the official split's
**training** clips, over synthetic pink noise and over real noise
recordings of ../shared/data/noise: by default the *validation* ones
(train/reject.py's VALIDATION_NOISE: no model trains on them, and the stream
benchmark does not use them), with ``--noise-split train`` the ones training
uses. The held-out recordings (HELD_OUT_NOISE) are the stream benchmark's
own and are never read here. Noise-only audio is the same recordings with
level changes, plus synthetic pink and white noise. Every configuration of
the grid runs through the Python reference (`train.stream.reference_events`:
the device computes the same events) for every model given, so a choice
rests on several seeds' models, not on one.

A configuration is *admissible* when its mean false digits per hour on that
real noise is at most ``--max-false-per-hour``; the choice is the
admissible one with the highest mean recall (ties: fewer false digits, then
fewer repeated digits, then the grid's order). The test-split streams and
the held-out noise recordings are never read here.

``--digits val-speaker`` makes each model's digit streams from its own
validation speaker instead (metrics.json's ``val_speaker``: a speaker of the
training folds the model never fitted, as in benchmarks.run's nested LOSO
folds), so the detector is tuned on voices new to the model, as a user's
will be, still without the fold's test speaker.

``python -m benchmarks.tune_stream --model out/m0 out/m1 out/m2 --grid slide_stride=0,8 reject_margin=32,64``
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
NOISE_DIR = ROOT.parent / "shared" / "data" / "noise" / "noise"
CONDITIONS = ((None, "none"), (20, "pink"), (20, "real"), (10, "pink"), (10, "real"), (5, "real"))
"""The digit streams' conditions: SNR in dB (None: clean) and noise kind (real: the recordings of the noise split)."""

DEFAULT_GRID = {
    "slide_stride": (0, 8),
    "start_delta": (40, 20),
    "reject_margin": (0, 32, 64, 96),
    "detect_threshold": (-128, 0, 64),
    "smooth_windows": (1, 2, 3),
    "min_count": (1, 2),
}
"""The sweep when no ``--grid`` is given. Sliding runs use the defaults' window_pre (3 when the defaults are one
window per utterance) and stop_delta 10 with start_delta 20 (docs/rejection.md's second and third probes);
settings that only sliding reads are swept for sliding only."""

SLIDING_ONLY = ("detect_threshold", "smooth_windows", "min_count", "suppress_frames")

GATE_PAIRS = {40: 16, 20: 10}
"""stop_delta for a swept start_delta (the probes' gates); other starts keep the base's stop_delta or less.
Window_pre goes with the mode: the defaults' for sliding windows (3 if they do not slide), 1 for one window per
utterance."""


def parse_grid(items: list[str]) -> dict[str, tuple[int, ...]]:
    """``NAME=V1,V2,...`` items (StreamConfig field names, integer values) as a dict."""
    from train.stream import StreamConfig

    fields = {f.name for f in dataclasses.fields(StreamConfig)}
    grid: dict[str, tuple[int, ...]] = {}
    for item in items:
        name, sep, vals = item.partition("=")
        if not sep or name not in fields:
            raise ValueError(f"--grid {item!r}: expected NAME=V1,V2 with NAME one of {sorted(fields)}")
        try:
            grid[name] = tuple(int(v) for v in vals.split(","))
        except ValueError:
            raise ValueError(f"--grid {item!r}: values must be integers, e.g. {name}=0,8") from None
    return grid


def configs(grid: dict[str, tuple[int, ...]], base=None) -> list:
    """Every valid StreamConfig of the grid over ``base`` (invalid combinations are skipped; a sliding-only
    setting is held at the base's value for one-window configurations, so they are not repeated; see
    GATE_PAIRS for stop_delta and window_pre)."""
    from train.stream import DEFAULT_STREAM

    base = DEFAULT_STREAM if base is None else base
    names = list(grid)
    out, seen = [], set()
    for vals in itertools.product(*(grid[n] for n in names)):
        d = dict(zip(names, vals))
        if d.get("slide_stride", base.slide_stride):
            d.setdefault("window_pre", base.window_pre if base.slide_stride else 3)
        else:
            d.setdefault("window_pre", 1)
            for n in SLIDING_ONLY:
                d.pop(n, None)
        if "start_delta" in d and "stop_delta" not in d:  # the probes' pairs: 40/16 and 20/10
            d["stop_delta"] = GATE_PAIRS.get(d["start_delta"], min(base.stop_delta, d["start_delta"]))
        try:
            c = dataclasses.replace(base, **d)
        except ValueError:
            continue
        if c not in seen:
            seen.add(c)
            out.append(c)
    return out


class MemoInfer:
    """A model's int8 inference with its outputs remembered by window (the sweep sees the same windows again)."""

    def __init__(self, infer) -> None:
        self.infer, self.memo, self.calls = infer, {}, 0

    def __call__(self, feats: np.ndarray) -> np.ndarray:
        keys = [w.tobytes() for w in feats]
        todo = [i for i, k in enumerate(keys) if k not in self.memo]
        if todo:
            self.calls += len(todo)
            outs = np.asarray(self.infer(feats[todo]), np.int8).reshape(len(todo), -1)
            for i, o in zip(todo, outs):
                self.memo[keys[i]] = o
        return np.stack([self.memo[k] for k in keys])


def _bank(noise_split: str):
    """The NoiseBank of the recordings of ``noise_split`` ("val" or "train"), or None without the folder."""
    from train import reject as RJ
    from train import streamgen as G

    if noise_split not in ("val", "train"):
        raise ValueError(f"noise split must be val or train (the test recordings are the stream benchmark's), got "
                         f"{noise_split!r}")
    keep = [p.name for p in sorted(NOISE_DIR.glob("*.wav")) if RJ.noise_split(p.name) == noise_split] if NOISE_DIR.is_dir() else []
    return G.NoiseBank(NOISE_DIR, only=keep) if keep else None


def digit_streams(clips: list, rng: np.random.Generator, bank, streams_per_condition: int) -> list:
    """[(condition, Stream)]: ``streams_per_condition`` streams of 10 of ``clips`` per CONDITIONS entry (the real
    ones only with a ``bank``)."""
    from train import streamgen as G

    digits = []
    for snr, kind in CONDITIONS:
        if kind == "real" and bank is None:
            continue
        for _ in range(streams_per_condition):
            st = G.make_stream(clips, rng, snr_db=snr, noise=kind if snr is not None else "white", bank=bank)
            digits.append(("clean" if snr is None else f"{snr} dB {kind}", st))
    return digits


def make_audio(data_dir: str | None, seed: int, streams_per_condition: int, noise_minutes: float,
               synthetic_minutes: float, noise_split: str = "val", *, val_speaker_models: list[str] | None = None):
    """The training-split digit streams [(condition, Stream)] and noise-only streams [(kind, Stream)]; the real
    noise is the recordings of ``noise_split`` ("val": train/reject.py's VALIDATION_NOISE, or "train"). With
    ``val_speaker_models``, the digit streams are instead a dict of each model's `validation_speaker_digits`, from
    the same data and recordings; the noise streams are the same in both cases (drawn after the training-split
    digit streams)."""
    from train import data as D
    from train import streamgen as G

    bank = _bank(noise_split)
    ds = D.load_dataset(D.resolve_data_dir(data_dir))
    train, _ = D.split_indices(ds, "official")
    rng = np.random.default_rng(seed)
    digits = digit_streams([ds.clips[i] for i in train], rng, bank, streams_per_condition)
    if val_speaker_models is not None:
        digits = validation_speaker_digits(val_speaker_models, ds, bank, seed, streams_per_condition)
    noise = []
    if bank is not None and noise_minutes > 0:
        noise += [("real", G.real_noise_stream(60.0, rng, bank)) for _ in range(int(round(noise_minutes)))]
    for i in range(int(round(synthetic_minutes))):
        noise.append(("synthetic", G.noise_stream(60.0, rng, kind=("pink", "white")[i % 2],
                                                  rms=(30.0, 300.0, 3000.0)[i % 3])))
    return digits, noise, bank is not None


def validation_speaker_digits(models: list[str], ds, bank, seed: int, streams_per_condition: int) -> dict[str, list]:
    """Per model, digit streams (`digit_streams`, over ``bank``) of its own validation speaker in the dataset ``ds``
    (metrics.json's ``val_speaker``: a speaker of the training folds that the model never fitted, held out for its
    early stopping; `python -m train --val-speaker`): new voices without the test fold's speaker. A model trained
    without one is an error that names it."""
    out = {}
    for i, m in enumerate(models):
        try:
            sp = json.loads((Path(m) / "metrics.json").read_text()).get("val_speaker")
        except (OSError, ValueError):
            sp = None
        if not sp:
            raise ValueError(f"{m}: its metrics.json names no validation speaker; --digits val-speaker needs models "
                             "trained with --val-speaker (e.g. benchmarks.run's nested folds)")
        clips = [c for c, s in zip(ds.clips, ds.speakers) if s == sp]
        if not clips:
            raise ValueError(f"{m}: validation speaker {sp!r} has no clips in {ds.root}")
        out[m] = digit_streams(clips, np.random.default_rng([seed, i]), bank, streams_per_condition)
    return out


def evaluate(scfg, ref, infer, digits, noise) -> dict:
    """One configuration, one model: recall and errors on the digit streams, false digits on noise only."""
    from train import stream as S
    from train import streamgen as G

    def events(a):
        return S.reference_events(a, ref.cfg, infer, ref.input_scale, ref.input_zero_point, scfg, ref._mel,
                                  labels=ref.labels)[0]

    tot = {"utterances": 0, "recalled": 0, "substituted": 0, "false_detections": 0, "repeats": 0,
           "strings_correct": 0, "by_condition": {}, "latency_samples": []}
    for cond, st, a in digits:
        sc = G.score(events(a), st.truth)
        tot["latency_samples"].extend(int(v) for v in sc["latency_samples"])
        for k in ("utterances", "recalled", "substituted", "false_detections"):
            tot[k] += sc[k]
        tot["repeats"] += len(sc["digits"]) - sc["false_detections"] - sc["recalled"] - sc["substituted"]
        tot["strings_correct"] += int(sc["string_correct"])
        c = tot["by_condition"].setdefault(cond, [0, 0])
        c[0] += sc["recalled"]
        c[1] += sc["utterances"]
    fa = {"real": [0, 0.0], "synthetic": [0, 0.0]}
    for kind, st, a in noise:
        fa[kind][0] += sum(e.digit is not None for e in events(a))
        fa[kind][1] += len(st.samples) / G.SR
    tot["recall"] = tot["recalled"] / max(tot["utterances"], 1)
    for kind, (n, s) in fa.items():
        tot[f"false_{kind}"] = n
        tot[f"false_per_hour_{kind}"] = 3600.0 * n / s if s else None
    return tot


def sweep(models: list[str], cfgs: list, digits, noise, *, progress: bool = True) -> list[dict]:
    """Every configuration on every model; ``digits``: the digit streams, or a dict of them per model."""
    from convert.reference import Reference
    from train import stream as S

    rows = [{"config": c, "models": []} for c in cfgs]
    for m in models:
        ref = Reference.from_dir(m)
        infer = MemoInfer(ref.infer)
        dig = [(cond, st, S.StreamAnalysis(st.samples, ref.cfg)) for cond, st in (digits[m] if isinstance(digits, dict) else digits)]
        noi = [(kind, st, S.StreamAnalysis(st.samples, ref.cfg)) for kind, st in noise]
        t0 = time.perf_counter()
        for i, row in enumerate(rows):
            row["models"].append(evaluate(row["config"], ref, infer, dig, noi))
            if progress:
                print(f"\r{m}: {i + 1}/{len(rows)} configurations, {infer.calls} windows inferred, "
                      f"{time.perf_counter() - t0:.0f} s", end="", file=sys.stderr, flush=True)
        if progress:
            print(file=sys.stderr)
    for row in rows:
        ms = row["models"]
        row["recall"] = float(np.mean([r["recall"] for r in ms]))
        for k in ("false_per_hour_real", "false_per_hour_synthetic"):
            vals = [r[k] for r in ms if r[k] is not None]
            row[k] = float(np.mean(vals)) if vals else None
        row["repeats"] = int(sum(r["repeats"] for r in ms))
        row["by_condition"] = {c: float(np.mean([r["by_condition"][c][0] / r["by_condition"][c][1] for r in ms]))
                               for c in ms[0]["by_condition"]}
        row["substituted"] = int(sum(r["substituted"] for r in ms))
        row["latency_ms"] = latency_ms([v for r in ms for v in r["latency_samples"]])
        for r in ms:
            r["latency_ms"] = latency_ms(r.pop("latency_samples"))
    return rows


def latency_ms(samples: list[int]) -> dict | None:
    """Decision latency of recalled digits (`streamgen.score`'s samples: the deciding window's last sample after
    the end of the speech) as the stream benchmark summarizes it (`benchmarks.stream.ms_summary`); None when no
    digit was recalled."""
    from benchmarks.stream import ms_summary
    from train.streamgen import SR

    return ms_summary(np.asarray(samples, np.float64) / SR) if samples else None


def choose(rows: list[dict], max_false_per_hour: float, max_latency_ms: float | None = None) -> dict | None:
    """The admissible row (at most ``max_false_per_hour`` on the real noise and, when given, a 90th-percentile
    decision latency of at most ``max_latency_ms``) with the best mean recall."""
    ok = [(i, r) for i, r in enumerate(rows) if (r["false_per_hour_real"] or 0.0) <= max_false_per_hour
          and (max_latency_ms is None or ((r.get("latency_ms") or {}).get("p90_ms") or 0.0) <= max_latency_ms)]
    if not ok:
        return None
    return max(ok, key=lambda ir: (ir[1]["recall"], -(ir[1]["false_per_hour_real"] or 0.0), -ir[1]["repeats"], -ir[0]))[1]


def _outcome(r: dict) -> tuple:
    return (r["recall"], r["false_per_hour_real"], r["false_per_hour_synthetic"], r["substituted"], r["repeats"])


def pareto(rows: list[dict]) -> list[dict]:
    """The configurations no other one beats on both mean recall and false digits per hour (real noise); of
    several with the same outcome on every stream count, the first in the grid's order (its ``same`` counts the
    others)."""
    out, firsts = [], {}
    for r in rows:
        firsts.setdefault(_outcome(r), []).append(r)
    for group in firsts.values():
        r = group[0]
        fr = r["false_per_hour_real"] or 0.0
        if not any(o["recall"] >= r["recall"] and (o["false_per_hour_real"] or 0.0) <= fr
                   and (o["recall"] > r["recall"] or (o["false_per_hour_real"] or 0.0) < fr) for o in rows):
            out.append({**r, "same": len(group) - 1})
    return sorted(out, key=lambda r: r["recall"])


def report(rows: list[dict], chosen, models: list[str], args) -> tuple[str, dict]:
    def per_hour(v):  # None: no minutes of that noise were played (--noise-minutes 0, or no recordings)
        return "-" if v is None else f"{v:.0f}"

    def line(r):
        per = ", ".join(f"{100 * m['recall']:.1f} % / {m['false_real']}" for m in r["models"])
        same = f" (+{r['same']} alike)" if r.get("same") else ""
        lat = r.get("latency_ms")
        lat_s = "-" if not lat else f"{lat['median_ms']:.0f} / {lat['p90_ms']:.0f} / {lat['max_ms']:.0f}"
        return (f"| `{r['config'].changes()}`{same} | **{100 * r['recall']:.1f} %** | "
                + " | ".join(f"{100 * v:.0f}" for v in r["by_condition"].values())
                + f" | {per_hour(r['false_per_hour_real'])} | {per_hour(r['false_per_hour_synthetic'])} | {r['substituted']} | "
                f"{r['repeats']} | {lat_s} | {per} |")

    conds = list(rows[0]["by_condition"]) if rows else []
    head = ("| changed from the defaults | mean recall | " + " | ".join(conds) + " | false digits per hour, real | "
            "synthetic | substitutions | repeats | decision latency, ms: median / p90 / max | per model |")
    rule = "|---|---|" + "---|" * len(conds) + "---|---|---|---|---|---|"

    front = pareto(rows)
    whose = ("each model's own validation speaker (a voice it never fitted)" if getattr(args, "digits", "training") ==
             "val-speaker" else "training-split clips")
    md = [f"# Stream detector sweep ({'validation-speaker' if 'validation' in whose else 'training-split'} digits, "
          "no held-out noise)", "",
          f"Command: `python -m benchmarks.tune_stream {' '.join(sys.argv[1:])}`", "",
          f"{len(rows)} configurations x {len(models)} models; {args.streams} streams of 10 digits of {whose} per "
          f"condition ({', '.join('clean' if s is None else f'{s} dB {k}' for s, k in CONDITIONS)}); "
          f"{args.noise_minutes:g} minutes of the {SPLIT_NAMES[args.noise_split]} noise recordings and "
          f"{args.synthetic_minutes:g} of "
          "synthetic noise, no digits. Per model: recall / false digits on the real noise.", "",
          "## Recall against false digits: the configurations nothing beats on both", "",
          "Recall per condition in %, mean over the models.", "", head, rule, *[line(r) for r in front], "",
          f"## Chosen (the best recall at <= {args.max_false_per_hour:g} false digits per hour on the real noise"
          + (f" and a 90th-percentile decision latency <= {args.max_latency_ms:g} ms"
             if getattr(args, "max_latency_ms", None) is not None else "") + ")", ""]
    md += [head, rule, line(chosen)] if chosen else ["None of the configurations is admissible."]
    js = {"models": models, "conditions": [[s, k] for s, k in CONDITIONS], "streams_per_condition": args.streams,
          "noise_minutes": args.noise_minutes, "synthetic_minutes": args.synthetic_minutes,
          "max_false_per_hour": args.max_false_per_hour, "noise_split": args.noise_split,
          "max_latency_ms": getattr(args, "max_latency_ms", None),
          "digits": getattr(args, "digits", "training"),
          "chosen": chosen["config"].to_dict() if chosen else None,
          "rows": [{**{k: v for k, v in r.items() if k != "config"}, "config": r["config"].to_dict()} for r in rows]}
    return "\n".join(md) + "\n", js


SPLIT_NAMES = {"train": "training", "val": "validation", "test": "held out"}
"""train/reject.py's noise splits as the reports name them."""

RECORDING_LEVELS = (30.0, 300.0, 3000.0)
"""LSB RMS levels at which `per_recording` plays each noise recording."""


def per_recording(models: list[str], scfg=None, seconds: float = 60.0) -> dict:
    """False digits per noise recording: each recording of ../shared/data/noise/noise (training and held-out
    alike, marked) looped for ``seconds`` at each of `RECORDING_LEVELS`, through each model with ``scfg``."""
    from convert.reference import Reference
    from train import reject as RJ
    from train import stream as S
    from train import streamgen as G

    scfg = scfg or S.DEFAULT_STREAM
    bank = G.NoiseBank(NOISE_DIR)  # every usable recording, at unit RMS
    out: dict = {"levels": list(RECORDING_LEVELS), "seconds": seconds, "models": models, "recordings": {}}
    refs = [Reference.from_dir(m) for m in models]
    n = int(seconds * G.SR)
    for name, x in zip(bank.files, bank.audio):
        y = np.tile(x, int(np.ceil(n / len(x))))[:n]
        counts = []
        for ref in refs:
            k = 0
            for lvl in RECORDING_LEVELS:
                st = np.clip(np.round(y * lvl), -32768, 32767).astype(np.int16)
                evs, _ = S.reference_events(st, ref.cfg, ref.infer, ref.input_scale, ref.input_zero_point, scfg,
                                            ref._mel, labels=ref.labels)
                k += sum(e.digit is not None for e in evs)
            counts.append(k)
        out["recordings"][name] = {"held_out": name in RJ.HELD_OUT_NOISE, "split": RJ.noise_split(name),
                                   "false_digits": counts}
    return out


def recordings_md(res: dict) -> str:
    lines = ["| recording | split | " + " | ".join(res["models"]) + " |", "|---|---|" + "---|" * len(res["models"])]
    tot = {k: [0] * len(res["models"]) for k in SPLIT_NAMES}
    for name, r in res["recordings"].items():
        lines.append(f"| {name} | {SPLIT_NAMES[r['split']]} | " + " | ".join(str(v) for v in r["false_digits"]) + " |")
        tot[r["split"]] = [a + b for a, b in zip(tot[r["split"]], r["false_digits"])]
    lines += [f"| **all {SPLIT_NAMES[k]}** | | " + " | ".join(f"**{v}**" for v in tot[k]) + " |" for k in SPLIT_NAMES]
    return (f"False digits per recording, looped {res['seconds']:g} s at each of "
            f"{', '.join(f'{v:g}' for v in res['levels'])} LSB RMS:\n\n" + "\n".join(lines) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.tune_stream",
                                description="Sweep the streaming detector's constants on training-split streams.")
    p.add_argument("--model", nargs="+", required=True, metavar="DIR", help="int8 model folders (one per seed)")
    shared = ROOT.parent / "shared" / "data" / "fsdd"
    p.add_argument("--data-dir", default=str(shared) if shared.is_dir() else None,
                   help="FSDD folder (default: ../shared/data/fsdd, else the verified download)")
    p.add_argument("--grid", nargs="*", default=None, metavar="NAME=V1,V2",
                   help="StreamConfig fields to sweep (default: the built-in grid, see DEFAULT_GRID)")
    p.add_argument("--streams", type=int, default=5, help="streams of 10 digits per condition (default 5)")
    p.add_argument("--noise-minutes", type=float, default=10.0, help="minutes of real noise recordings (default 10)")
    p.add_argument("--noise-split", choices=("val", "train"), default="val",
                   help="which real recordings: the validation ones no model trains on (default) or the training ones")
    p.add_argument("--synthetic-minutes", type=float, default=3.0, help="minutes of synthetic noise (default 3)")
    p.add_argument("--max-false-per-hour", type=float, default=12.0,
                   help="false digits per hour on the real noise a choice may have (default 12)")
    p.add_argument("--max-latency-ms", type=float, default=None,
                   help="90th-percentile decision latency (ms after the end of the speech) a choice may have "
                        "(default: no bound)")
    p.add_argument("--seed", type=int, default=7, help="the streams' seed (default 7)")
    p.add_argument("--out", default=None, metavar="PREFIX", help="write PREFIX.md and PREFIX.json")
    p.add_argument("--recordings", action="store_true",
                   help="instead of the sweep: false digits per noise recording (each looped a minute at 30, 300 and "
                        "3,000 LSB RMS), with the release's detector or --stream-config")
    p.add_argument("--stream-config", default=None, metavar="JSON", help="with --recordings: the detector (a StreamConfig)")
    p.add_argument("--digits", choices=("training", "val-speaker"), default="training",
                   help="whose digits the streams say: the official split's training clips (voices every model "
                        "trained on), or per model its own validation speaker (metrics.json's val_speaker: a voice that "
                        "model never fitted; for the nested folds of benchmarks.run)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    for m in args.model:
        if not (Path(m) / "model_int8.tflite").is_file():
            p.error(f"{m}: no model_int8.tflite; convert it first (python -m convert.quantize --model {m})")
    if args.recordings:
        from train.stream import StreamConfig

        try:
            scfg = StreamConfig.from_dict(json.loads(Path(args.stream_config).read_text())) if args.stream_config else None
            res = per_recording(args.model, scfg)
        except (OSError, ValueError, TypeError) as e:
            p.error(str(e))
        md = recordings_md(res)
        if args.out:
            Path(args.out + ".md").write_text(md)
            Path(args.out + ".json").write_text(json.dumps(res, indent=1) + "\n")
        print(md)
        return 0
    try:
        grid = parse_grid(args.grid) if args.grid else DEFAULT_GRID
    except ValueError as e:
        p.error(str(e))
    cfgs = configs(grid)
    try:
        digits, noise, real = make_audio(args.data_dir, args.seed, args.streams, args.noise_minutes,
                                         args.synthetic_minutes, args.noise_split,
                                         val_speaker_models=args.model if args.digits == "val-speaker" else None)
    except ValueError as e:
        p.error(str(e))
    if not real:
        print(f"note: {NOISE_DIR} is missing; no real-noise conditions", file=sys.stderr)
    rows = sweep(args.model, cfgs, digits, noise, progress=not args.no_progress)
    chosen = choose(rows, args.max_false_per_hour, args.max_latency_ms)
    md, js = report(rows, chosen, args.model, args)
    if args.out:
        Path(args.out + ".md").write_text(md)
        Path(args.out + ".json").write_text(json.dumps(js, indent=1) + "\n")
        if chosen:  # a StreamConfig file for `benchmarks.stream --stream-config`
            Path(args.out + "-chosen.json").write_text(chosen["config"].to_json())
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
