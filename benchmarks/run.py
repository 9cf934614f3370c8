"""python -m benchmarks.run: full-dataset benchmarks -> BENCHMARKS.md (+ out/bench/*.json).

Every number in BENCHMARKS.md is measured by this script on the machine it
runs on, next to the command that produced it. Sections can be chosen with
--only (train, loso, nested, ablation, convert, frontend, firmware, parity,
load, stream, latency, words, fuzz, faults).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.fuzz import bench_fuzz

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results"  # per-section markdown + JSON, committed with BENCHMARKS.md
SCRATCH = ROOT / "out" / "bench"  # parity reports and plots
PY = sys.executable
SECTIONS = ("train", "loso", "nested", "ablation", "convert", "frontend", "firmware", "parity", "load", "stream", "latency",
            "words", "fuzz", "faults")
BOARDS = ("posix", "mps2-an386", "nucleo-f446re", "netduinoplus2")


def sh(cmd: list[str], *, timeout: float = 3600, check: bool = True) -> subprocess.CompletedProcess:
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return r


def pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.2f} %"


# -- sections ---------------------------------------------------------------------------
def bench_train(data_args: list[str], seeds=(0, 1, 2, 3, 4)) -> tuple[str, dict]:
    rows, accs, secs = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for s in seeds:
            cmd = [PY, "-m", "train", *data_args, "--seed", str(s), "--out", f"{tmp}/s{s}", "--no-progress"]
            t = time.perf_counter()
            res = json.loads(sh(cmd).stdout)
            secs.append(time.perf_counter() - t)
            accs.append(res["test_accuracy"])
            rows.append(f"| {s} | {pct(res['test_accuracy'])} | {res['test_errors']} | {res['epochs']} | {res['seconds']:.1f} |")
    released = json.loads(sh([PY, "-m", "train.evaluate", "--model", "models/released", *data_args, "--no-progress"]).stdout)
    mean, std = float(np.mean(accs)), float(np.std(accs))
    md = [
        "## Training (float, official split: 2,700 train / 300 test)",
        "",
        f"Command, per seed: `python -m train {' '.join(data_args)} --seed S --out DIR`",
        "",
        "| seed | test accuracy | errors | epochs | seconds (training run) |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"- Mean over {len(seeds)} seeds: **{pct(mean)} +- {100 * std:.2f}** (target >= 98.8 %).",
        f"- Released model (`models/released`, {_released_recipe()}), `python -m train.evaluate --model models/released`: "
        f"**{pct(released['accuracy'])}**, {len(released['errors'])} errors (target >= 99.0 %).",
        f"- Wall time per run (whole command, incl. TensorFlow start-up): median {statistics.median(secs):.1f} s "
        f"(target <= 120 s).",
    ]
    return "\n".join(md), {"seeds": dict(zip(seeds, accs)), "mean": mean, "std": std, "released": released["accuracy"],
                           "median_seconds": statistics.median(secs)}


def _release_record() -> dict | None:
    """models/released/release.json (train/release.py's record of how the release was made), or None."""
    rec = ROOT / "models" / "released" / "release.json"
    return json.loads(rec.read_text()) if rec.is_file() else None


def _released_recipe() -> str:
    """How models/released was made, in a few words."""
    r = _release_record()
    if r is None:
        return "`python -m train`'s defaults, seed 0"
    return f"train/release.py's recipe, seed {r['chosen_seed']} of {', '.join(str(s['seed']) for s in r['seeds'])}"


LOSO_SPLIT_NOTE = ("Each fold trains on five speakers and tests on all 500 clips of the sixth; the normalization "
                   "statistics, early stopping, augmentation, int8 calibration and QAT use the five training speakers only.")


LOSO_ONLY: list[str] | None = None
"""--loso-speakers: measure only these folds (a partial table says so)."""


def _all_speakers(data_args: list[str]) -> list[str]:
    return sorted(json.loads((Path(data_args[1]) / "speakers.json").read_text()).keys()) if data_args else []


def _speakers(data_args: list[str]) -> list[str]:
    return [sp for sp in _all_speakers(data_args) if LOSO_ONLY is None or sp in LOSO_ONLY]


def _partial_note(data_args: list[str]) -> list[str]:
    done, every = _speakers(data_args), _all_speakers(data_args)
    if len(done) == len(every):
        return []
    return ["", f"**Partial: {len(done)} of {len(every)} folds measured** (missing: {', '.join(sorted(set(every) - set(done)))}); "
                "the mean and worst are over the measured folds only, not the six."]


def fold_key(speaker: str, train_args: tuple[str, ...], int8: bool) -> dict:
    """What a fold's result depends on: its speaker, training arguments, int8 path and the recipe's code
    (train/release.py's `recipe_code`: a change to any of RECIPE_FILES retrains the folds, unless
    train/release.py's NEUTRAL_CHANGES records it as behaviour-neutral)."""
    from train.release import recipe_code

    return {"speaker": speaker, "train_args": list(train_args), "int8": int8, "code": recipe_code()}


def loso_fold(data_args: list[str], speaker: str, out: str, train_args: tuple[str, ...] = (), *, int8: bool = True) -> dict:
    """One leave-one-speaker-out fold: train (float) and, if int8, the release's quantization path.

    The fold's model stays in ``out`` with a ``fold.json`` of its results; a later run with the same
    training arguments and the same code reuses it (a fold takes minutes; an interrupted bench resumes)."""
    split = f"loso:{speaker}"
    key = fold_key(speaker, train_args, int8)
    done = Path(out) / "fold.json"
    if done.is_file():
        from train.release import same_run

        prev = json.loads(done.read_text())
        if same_run(prev.get("key"), key):
            return prev["result"]
    t = time.perf_counter()
    res = json.loads(sh([PY, "-m", "train", *data_args, "--split", split, "--out", out, "--no-progress", *train_args]).stdout)
    fold = {"float": res["test_accuracy"], "float_errors": res["test_errors"], "train_seconds": res["seconds"],
            "fold_seconds": time.perf_counter() - t}
    if int8:
        sh([PY, "-m", "convert.quantize", "--model", out, "--split", split, "--c-out", "", "--no-arena", *data_args, "--no-progress"])
        rep = json.loads((Path(out) / "report.json").read_text())
        fold.update(int8=rep["int8_accuracy"], int8_errors=rep["int8_errors"], released=rep["released"],
                    ptq=rep["ptq_accuracy"], qat=rep["qat_accuracy"])
    done.write_text(json.dumps({"key": key, "result": fold}, indent=2) + "\n")
    return fold


def _summary(accs: dict) -> dict:
    vals = list(accs.values())
    worst = min(accs, key=accs.get) if accs else None
    return {"speakers": accs, "mean": float(np.mean(vals)) if vals else None, "worst": worst,
            "worst_accuracy": accs[worst] if worst else None}


def bench_loso(data_args: list[str]) -> tuple[str, dict]:
    rows, folds = [], {}
    for sp in _speakers(data_args):
        f = folds[sp] = loso_fold(data_args, sp, str(SCRATCH / "loso" / sp))
        rows.append(f"| {sp} | {pct(f['float'])} | {pct(f['ptq'])} | {pct(f['qat'])} | **{pct(f['int8'])}** ({f['released']}) "
                    f"| {f['int8_errors']} / 500 | {f['train_seconds']:.0f} |")
    res = {"float": _summary({k: v["float"] for k, v in folds.items()}),
           "int8": _summary({k: v["int8"] for k, v in folds.items()}), "folds": folds}
    fl, i8 = res["float"], res["int8"]
    md = ["## Leave-one-speaker-out (float and int8, seed 0)", "",
          f"Commands, per speaker: `python -m train {' '.join(data_args)} --split loso:SPEAKER --out DIR`, then "
          f"`python -m convert.quantize --model DIR --split loso:SPEAKER --c-out '' --no-arena {' '.join(data_args)}` "
          "(the release's path: PTQ and QAT, the more accurate one kept, both in the TFLite Micro interpreter, "
          "fed by the device's integer front end).", "", LOSO_SPLIT_NOTE, "",
          "| held-out speaker | float | PTQ int8 | QAT int8 | int8 (kept) | int8 errors | train s |",
          "|---|---|---|---|---|---|---|", *rows, "",
          f"- float: mean **{pct(fl['mean'])}**, worst {fl['worst']} {pct(fl['worst_accuracy'])}.",
          f"- int8: mean **{pct(i8['mean'])}**, worst {i8['worst']} {pct(i8['worst_accuracy'])} "
          "(targets: mean >= 90 %, no speaker below 80 %).",
          "- Before this round (global per-band standardization, no augmentation): float mean 55.50 %, worst nicolas 21.40 %.",
          *_partial_note(data_args)]
    return "\n".join(md), res


NESTED_SEEDS = (0, 1, 2)
"""Seeds of the nested-validation LOSO section (issue 21: a recipe decision rests on at least three)."""

def _nested_recipes():
    from train.release import BASE_RECIPE_ARGS, RECIPE_ARGS

    return (("digits only (`python -m train`'s defaults; the release before 2026-12-07)", ()),
            ("`noise` class with tonal noise kinds, real rooms (the release recipe of 2026-12-07)", BASE_RECIPE_ARGS),
            ("+ piper's neural voice, 20 utterances of each digit (lever, issue 21; the release recipe since "
             "2026-12-07, train/release.py)", RECIPE_ARGS),
            ("+ 1 s windows: frames averaged in pairs, 16 steps over 32 frames (lever on the piper recipe, issue 21)",
             (*RECIPE_ARGS, "--frame-pool", "2")))


def _against(recipes, r: int) -> int:
    """The recipe a nested recipe is judged against: the one whose arguments are the longest proper prefix of its
    own (a lever is a recipe's arguments and more), so the first recipe (the defaults, no arguments) for any other."""
    args = tuple(recipes[r][1])
    best = 0
    for i, (_, a) in enumerate(recipes):
        a = tuple(a)
        if i != r and len(a) < len(args) and args[:len(a)] == a and len(a) > len(tuple(recipes[best][1])):
            best = i
    return best


NESTED_RECIPES = _nested_recipes()
"""Recipes the nested section measures: the baseline first, then each recipe or lever against it (issue 21). The
`--real-rooms` lever alone was not measured over three seeds; the release recipe includes it."""


def _nested_dir(recipe: int, seed: int, speaker: str) -> Path:
    return SCRATCH / "nested" / ("" if recipe == 0 else f"r{recipe}") / f"s{seed}" / speaker


def release_folds() -> Path | None:
    """The nested section's fold models of the release's recipe, for the seed models/released was chosen from
    (the stream section's held-out-speaker streams run them); None when the release has no release.json."""
    from train.release import RECIPE_ARGS

    rec = _release_record()
    if rec is None:
        return None
    r = next(i for i, (_, args) in enumerate(NESTED_RECIPES) if tuple(args) == tuple(RECIPE_ARGS))
    return _nested_dir(r, rec["chosen_seed"], "-").parent


def bench_nested(data_args: list[str], seeds=NESTED_SEEDS, recipes=NESTED_RECIPES) -> tuple[str, dict]:
    """LOSO under nested speaker validation: in each fold, one of the training speakers (rotated by the seed,
    `--val-speaker auto`) validates early stopping and QAT; int8 per held-out speaker over the seeds, for the
    baseline (the first recipe) and each recipe or lever. One wins when its mean beats the recipe it is judged
    against (`_against`) in every seed (paired: same seed, same validation speakers) and by more than the seeds'
    spread."""
    speakers = _speakers(data_args)
    res: dict = {"seeds": list(seeds), "recipes": {}}
    md = ["## Leave-one-speaker-out under nested speaker validation (int8, issue 21)", "",
          f"Commands, per recipe ARGS, seed S and speaker: `python -m train {' '.join(data_args)} --split loso:SPEAKER "
          "--val-speaker auto --seed S --out DIR ARGS`, then `python -m convert.quantize --model DIR --split loso:SPEAKER "
          "--c-out '' --no-arena` (QAT validates on the same held-out training speaker). `--val-speaker auto` takes the "
          "sorted training speakers' names[S mod 5]: the validation speaker of each run is in brackets. No choice here "
          "saw the held-out speaker.", "", LOSO_SPLIT_NOTE]
    summary_rows = []
    for r, (name, extra) in enumerate(recipes):
        folds: dict = {sp: {} for sp in speakers}
        for seed in seeds:
            for sp in speakers:
                out = _nested_dir(r, seed, sp)
                f = loso_fold(data_args, sp, str(out), ("--val-speaker", "auto", "--seed", str(seed), *extra))
                f["val_speaker"] = json.loads((out / "metrics.json").read_text()).get("val_speaker")
                folds[sp][seed] = f
        rows, means = [], {}
        for sp in speakers:
            i8 = [folds[sp][s]["int8"] for s in seeds]
            means[sp] = float(np.mean(i8))
            rows.append(f"| {sp} | " + " | ".join(f"{pct(folds[sp][s]['int8'])} ({folds[sp][s]['val_speaker']})" for s in seeds)
                        + f" | **{pct(means[sp])}** | {100 * float(np.std(i8, ddof=1)) if len(i8) > 1 else 0:.2f} |")
        per_seed = [float(np.mean([folds[sp][s]["int8"] for sp in speakers])) for s in seeds]
        summ = _summary(means)
        res["recipes"][name] = {"args": list(extra), "folds": folds, "means": means, "seed_means": per_seed, **summ}
        md += ["", f"### {name}" + (f" (`{' '.join(extra)}`)" if extra else ""), "",
               "| held-out speaker | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | sd (points) |",
               "|---|" + "---|" * (len(seeds) + 2), *rows, "",
               f"- Mean over speakers: **{pct(summ['mean'])}** (per seed: {', '.join(pct(v) for v in per_seed)}), "
               f"worst {summ['worst']} {pct(summ['worst_accuracy'])} (targets: mean >= 88 %, no speaker below 80 %)."]
        vs = _against(recipes, r)
        base = res["recipes"][recipes[vs][0]]["seed_means"]
        diff = [a - b for a, b in zip(per_seed, base)]
        sd = 100 * float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else 0.0
        wins = r > 0 and all(d > 0 for d in diff) and 100 * float(np.mean(diff)) > sd
        res["recipes"][name].update(diff_vs_release=diff, against=recipes[vs][0], seed_sd=sd, wins=wins)
        summary_rows.append(f"| {r}: {name} | `{' '.join(extra) or '(defaults)'}` | **{pct(summ['mean'])}** | {sd:.2f} | "
                            + ("" if r == 0 else ", ".join(f"{100 * d:+.2f}" for d in diff) + f" (against {vs})")
                            + f" | {summ['worst']} "
                            f"{pct(summ['worst_accuracy'])} | {'yes' if wins else ('-' if r == 0 else 'no')} |")
    md += ["", "### Recipes side by side", "",
           "A recipe wins when it beats the one it is judged against in every seed (paired: same seed, same validation "
           "speaker) and its mean gain exceeds the seeds' sd: a lever (another recipe's arguments and more) "
           "against the longest recipe it extends, any other recipe against the first (the baseline).", "",
           "| recipe | ARGS | mean over speakers and seeds | sd of the seed means (points) | gain per seed (points) "
           "| worst speaker | wins |", "|---|---|---|---|---|---|---|", *summary_rows, *_partial_note(data_args)]
    return "\n".join(md), res


# Each row: what it changes against train's defaults (the digits-only recipe).
ABLATION = (
    ("no per-clip normalization, no augmentation (the old recipe)", ("--clip-norm", "none", "--augment", "0")),
    ("per-clip band-mean normalization, no augmentation", ("--augment", "0")),
    ("+ augmentation without speed", ("--no-speed",)),
    ("+ augmentation without noise", ("--no-noise",)),
    ("+ augmentation without SpecAugment masks", ("--no-masks",)),
    ("digits-only recipe (band-mean + speed, shift, gain, noise, masks; 3 copies)", ()),
)


def bench_ablation(data_args: list[str]) -> tuple[str, dict]:
    rows, res = [], {}
    speakers = _speakers(data_args)
    for i, (name, extra) in enumerate(ABLATION):
        accs = {sp: loso_fold(data_args, sp, str(SCRATCH / "ablation" / str(i) / sp), extra, int8=False)["float"] for sp in speakers}
        s = res[name] = {"args": list(extra), **_summary(accs)}
        rows.append(f"| {name} | `{' '.join(extra) or '(defaults)'}` | " + " | ".join(pct(accs[sp]) for sp in speakers)
                        + f" | **{pct(s['mean'])}** | {pct(s['worst_accuracy'])} |")
    md = ["## What each part adds (leave-one-speaker-out ablation, float, seed 0)", "",
          f"Command, per row and speaker: `python -m train {' '.join(data_args)} --split loso:SPEAKER --out DIR ARGS`.",
          "", LOSO_SPLIT_NOTE, "",
          "| recipe | ARGS | " + " | ".join(speakers) + " | mean | worst |", "|---|---|" + "---|" * (len(speakers) + 2), *rows,
          *_partial_note(data_args)]
    return "\n".join(md), res


def bench_convert(data_args: list[str]) -> tuple[str, dict]:
    released = json.loads((ROOT / "models/released/report.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        sh([PY, "-m", "convert.quantize", "--model", "models/released", "--out", tmp, "--c-out", f"{tmp}/gen", *data_args, "--no-progress"])
        secs = time.perf_counter() - t
        rep = json.loads((Path(tmp) / "report.json").read_text())
    g = rep["granularity"]
    lt = rep["litert_vs_tflm"]
    md = [
        "## Quantization (int8, TFLite Micro interpreter, 300 test clips)", "",
        f"Command: `python -m convert.quantize --model models/released {' '.join(data_args)}` ({secs:.0f} s)", "",
        "| model | accuracy | errors |", "|---|---|---|",
        f"| float (Keras) | {pct(rep['float_accuracy'])} | {round((1 - rep['float_accuracy']) * rep['test_clips'])} |",
        f"| PTQ int8 | {pct(rep['ptq_accuracy'])} | {round((1 - rep['ptq_accuracy']) * rep['test_clips'])} |",
        f"| QAT int8 | {pct(rep['qat_accuracy'])} | {'n/a' if rep['qat_accuracy'] is None else round((1 - rep['qat_accuracy']) * rep['test_clips'])} |",
        f"| **released ({rep['released']})** | **{pct(rep['int8_accuracy'])}** | {rep['int8_errors']} |", "",
        f"- int8 - float: {100 * (rep['int8_accuracy'] - rep['float_accuracy']):+.2f} points (target: within 0.34 and >= 99.0 %).",
        f"- Weights {rep['weight_bytes']:,} bytes (target <= 130 KB = 133,120); .tflite {rep['tflite_bytes']:,} bytes; "
        f"{rep['op_count']} ops: " + ", ".join(f"{k} {v}" for k, v in sorted(rep["ops"].items(), key=lambda kv: -kv[1])) + ".",
        "", "| dense weights | accuracy | .tflite bytes | weight bytes | TFLM arena bytes |", "|---|---|---|---|---|",
        *[f"| {k} | {pct(v['accuracy'])} | {v['tflite_bytes']:,} | {v['weight_bytes']:,} | "
          f"{v['tflm_arena_bytes'] if v['tflm_arena_bytes'] is None else format(v['tflm_arena_bytes'], ',')} |" for k, v in g.items()],
        "", f"- Chosen: {rep['dense_quantization']} ({rep['dense_quantization_why']}).",
        f"- TFLite Micro arena of the released model: **{rep['tflm_arena_bytes']:,} bytes** (smallest that runs, 256-byte steps).",
        f"- tf.lite reference kernels vs TFLite Micro on the same int8 inputs: {lt['differing_elements']} of {lt['elements']} "
        f"output elements differ (max {lt['max_lsb']} LSB), {lt['top1_disagreements']} top-1 disagreements.",
        f"- Determinism: this run's SHA-256 `{rep['sha256'][:16]}...` "
        f"{'equals' if rep['sha256'] == released['sha256'] else 'DIFFERS FROM'} the released model's.",
    ]
    return "\n".join(md), rep


def bench_frontend(data_args: list[str]) -> tuple[str, dict]:
    r = sh([PY, "-m", "pytest", "-q", "-s", "tests/test_frontend.py", "tests/test_intfront.py"], check=False)
    m = re.search(r"feature parity on (\d+) clips: ([0-9.]+)% identical, max (\d+) LSB", r.stdout)
    ok = r.returncode == 0
    md = ["## Feature parity (C front end vs the Python reference, host build)", "",
          "Command: `pytest -s tests/test_frontend.py tests/test_intfront.py` (C `sd_frontend.c` + `sd_rfft_q15.c` vs "
          "`convert.reference.Reference.features`, front end v2: integer on both sides)", "",
          f"- Test split: {m.group(2) if m else '?'} % of int8 elements identical, max {m.group(3) if m else '?'} LSB "
          f"({m.group(1) if m else '?'} clips; target 100 %, 0 LSB).",
          f"- Silence, full-scale noise, clipped and DC-offset audio, 5-sample and 2.3 s clips, chunk sizes 1-512; "
          f"the worst-case bit widths of every intermediate (docs/frontend.md): {'pass' if ok else 'FAIL'} "
          "(identical features, no value outside its C type).",
          "- The emulated boards' features are compared in the parity section (every clip's int8 input tensor)."]
    return "\n".join(md), {"identical_percent": float(m.group(2)) if m else None, "max_lsb": int(m.group(3)) if m else None, "pass": ok}


def _size(board: str) -> dict:
    elf = ROOT / "firmware" / "build" / board / ("sd_firmware" + ("" if board == "posix" else ".elf"))
    tool = "size" if board == "posix" else "arm-none-eabi-size"
    out = sh([tool, "-A", str(elf)]).stdout
    sec = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\.\S+)\s+(\d+)", out, re.M)}
    flash = sum(v for k, v in sec.items() if k in (".isr_vector", ".vectors", ".text", ".rodata", ".ARM.exidx", ".data", ".init_array", ".fini_array"))
    ram = {k: v for k, v in sec.items() if k in (".data", ".bss", ".stack", ".heap")}
    return {"flash": flash, "ram": ram, "sections": sec}


def _stack_peak() -> int | None:
    """Peak stack on the M4 for one clip through front end, model and protocol (firmware/tests/stack)."""
    r = sh(["make", "-s", "-C", "firmware", "BOARD=mps2-an386", "TEST_MAIN=tests/stack/stack_main.c", "test"], check=False, timeout=1200)
    m = re.search(r"stack bytes (\d+)", r.stdout + r.stderr)
    return int(m.group(1)) if m else None


def _op_profile() -> dict | None:
    """Instructions of one inference per op kind on the emulated M4 (firmware/tests/profile)."""
    r = sh(["make", "-s", "-C", "firmware", "BOARD=mps2-an386", "TEST_MAIN=tests/profile/profile_main.c", "test"],
           check=False, timeout=1200)
    out = r.stdout + r.stderr
    ops = {m.group(1): {"count": int(m.group(2)), "instructions": int(m.group(3))}
           for m in re.finditer(r"^op (\S+) count (\d+) cost (\d+)", out, re.M)}
    fc = re.search(r"fc 128x128 (\d+)", out)
    fe = re.search(r"frontend clip (\d+) frame (\d+) rfft (\d+)", out)
    if r.returncode != 0 or not ops:
        return None
    macs = re.search(r"#define SD_MODEL_MACS (\d+)", (ROOT / "firmware" / "generated" / "sd_model_graph.h").read_text())
    return {"ops": ops, "total": sum(v["instructions"] for v in ops.values()),
            "fc_128x128": int(fc.group(1)) if fc else None, "model_macs": int(macs.group(1)) if macs else None,
            "frontend_frame": int(fe.group(2)) if fe else None, "frontend_rfft": int(fe.group(3)) if fe else None,
            "frontend_clip": int(fe.group(1)) if fe else None}


def bench_firmware() -> tuple[str, dict]:
    rows, res = [], {}
    prof = _op_profile()
    stack = _stack_peak()
    for b in BOARDS:
        sh(["make", "-s", "-C", "firmware", f"BOARD={b}"], timeout=1200)
        s = _size(b)
        res[b] = s
        data_bss = s["ram"].get(".data", 0) + s["ram"].get(".bss", 0)
        if b == "posix":
            total = "n/a (host)"
        else:
            total = f"{data_bss + stack:,}" if stack else "stack not measured"
            s["ram_total"] = data_bss + stack if stack else None
        rows.append(f"| {b} | {s['flash']:,} | {data_bss:,} | {total} |")
    md = ["## Firmware size", "",
          "Command: `make -C firmware BOARD=B` then `arm-none-eabi-size -A` (host: `size -A`); peak stack from "
          "`make -C firmware BOARD=mps2-an386 TEST_MAIN=tests/stack/stack_main.c test` (one clip through the protocol, "
          f"front end and model on a painted stack): **{stack if stack else '?'} bytes**.", "",
          "| board | flash bytes (text + rodata + data) | data + bss | RAM total (data + bss + peak stack) |", "|---|---|---|---|", *rows,
          "", "Targets: flash <= 150 KB for mps2-an386; RAM (data + bss + stack, audio buffering included) <= 16 KB = 16,384 bytes."]
    res["stack_peak"] = stack
    res["op_profile"] = prof
    if prof:
        fc = prof.get("fc_128x128")
        clip = "see the parity section"
        try:  # the parity section's measurement on mps2-an386 (make bench runs it after this one)
            e2e = json.loads((OUT / "parity.json").read_text())["mps2-an386"]["cost"]["end_to_end"]
            clip = f"{e2e['total']:,.0f} (parity section, mps2-an386)"
        except (OSError, KeyError, TypeError, ValueError):
            pass
        md += ["", "### Before and after the DSP kernels (issue 13)", "",
               "Before: the plain-C kernels, as measured in BENCHMARKS.md of 2026-11-30 (the figures issue 13 quotes). "
               "After: this run's profile; the whole clip's median is in the parity section's cost table.", "",
               "| | before (plain C) | after |", "|---|---|---|",
               f"| model (LSTM + head), instructions | 3,940,000 | {prof['total']:,} |",
               f"| one 128 x 128 FULLY_CONNECTED, per multiply-accumulate | 2.07 | {fc / 16384:.2f} |" if fc
               else "| one 128 x 128 FULLY_CONNECTED, per multiply-accumulate | 2.07 | not measured |",
               f"| whole 0.5 s clip, median over the 300 test clips | 4,640,000 | {clip} |",
               f"| front end, per frame | 44,000 | {prof['frontend_frame']:,} |" if prof.get("frontend_frame")
               else "| front end, per frame | 44,000 | not measured |", "",
               "RAM against instructions: running the four gate FULLY_CONNECTEDs of an LSTM step that share an input in "
               "one call keeps their four outputs live at once, which costs 304 bytes more activation arena (5,328 -> "
               "5,632) and saves 82 K instructions per inference (2,038,800 -> 1,956,960); it is the default, and every "
               "board stays under 16 KB. `python -m convert.codegen --fc-share 1` generates the one-op-per-call graph "
               "instead."]
        flash = res.get("mps2-an386", {}).get("flash")
        md += ["", "### Front end v2, integer (issue 19)", "",
               "Before: front end v1 (float: CMSIS-DSP `arm_rfft_fast_f32`, float mel, `logf`), as measured in "
               "BENCHMARKS.md of 2026-12-06. After: this run (`tests/profile/profile_main.c`: one frame of the noise "
               "clip through steps 1-7 and the fine int16 mapping; the transform alone on a packed frame).", "",
               "| | v1 (float) | v2 (integer, noise suppression included) |", "|---|---|---|",
               f"| one frame, instructions | 40,160 | {prof['frontend_frame']:,} |" if prof.get("frontend_frame")
               else "| one frame, instructions | 40,160 | not measured |",
               f"| FFT + power spectrum | 25,700 | {prof['frontend_rfft']:,} |" if prof.get("frontend_rfft")
               else "| FFT + power spectrum | 25,700 | not measured |",
               f"| mps2-an386 flash, bytes | 153,540 | {flash:,} |" if flash else "| mps2-an386 flash | 153,540 | not measured |",
               "", "Target: <= 30 K instructions per frame, noise stages included."]
        md += ["", "### Model cost per op kind (emulated Cortex-M4)", "",
               "Command: `make -C firmware BOARD=mps2-an386 TEST_MAIN=tests/profile/profile_main.c test` (one inference "
               "on a fixed pseudo-random input, `-icount shift=0`, instructions; each op's figure includes one counter "
               "read).", "", "| op | count | instructions | per op | share |", "|---|---|---|---|---|"]
        for name, v in sorted(prof["ops"].items(), key=lambda kv: -kv[1]["instructions"]):
            md.append(f"| {name} | {v['count']} | {v['instructions']:,} | {v['instructions'] / v['count']:,.0f} | "
                      f"{v['instructions'] / prof['total']:.1%} |")
        md.append(f"| total | | {prof['total']:,} | | |")
        fc_all = prof["ops"].get("FULLY_CONNECTED")
        if fc_all and prof.get("model_macs"):
            md += ["", f"FULLY_CONNECTED over the whole model: {fc_all['instructions']:,} instructions for "
                       f"{prof['model_macs']:,} multiply-accumulates (SD_MODEL_MACS): "
                       f"{fc_all['instructions'] / prof['model_macs']:.2f} per multiply-accumulate, requantization included."]
        if prof.get("fc_128x128"):
            md += ["", f"One 128 x 128 FULLY_CONNECTED (16,384 multiply-accumulates): {prof['fc_128x128']:,} instructions "
                       f"({prof['fc_128x128'] / 16384:.2f} per multiply-accumulate, requantization included)."]
    return "\n".join(md), res


def bench_parity(data_args: list[str], boards=("posix", "mps2-an386", "netduinoplus2"), limit: int | None = None) -> tuple[str, dict]:
    rows, cost_rows, res = [], [], {}
    for b in boards:
        report = SCRATCH / f"parity-{b}.json"
        cmd = [PY, "-m", "host.parity", "--port", f"emulator:{b}", *data_args, "--split", "test", "--mode", "both",
               "--report", str(report), "--plots", str(SCRATCH / f"plots-{b}"), "--no-progress"]
        if limit:
            cmd += ["--limit", str(limit)]
        t = time.perf_counter()
        r = sh(cmd, check=False, timeout=7200)
        wall = time.perf_counter() - t
        if not report.exists():
            rows.append(f"| {b} | FAILED (exit {r.returncode}) | | | | | | |")
            continue
        rep = json.loads(report.read_text())
        res[b] = {k: rep.get(k) for k in ("clips", "errors", "top1_agreement", "output_exact_fraction", "feature_identical_fraction",
                                          "feature_max_lsb", "device_accuracy", "reference_accuracy", "cost", "wall_seconds", "wire")}
        res[b]["exit"] = r.returncode
        wire = (rep.get("wire") or {}).get("end_to_end", {})
        rows.append(f"| {b} | {rep.get('clips')} | {rep.get('errors')} | {pct(rep.get('top1_agreement'))} | {pct(rep.get('output_exact_fraction'))} | "
                    f"{100 * (rep.get('feature_identical_fraction') or 0):.4f} % / {rep.get('feature_max_lsb')} | "
                    f"{pct(rep.get('device_accuracy'))} vs {pct(rep.get('reference_accuracy'))} | {rep.get('wall_seconds', wall):.0f} s ({rep.get('reference_seconds', 0):.1f} s reference, {rep.get('device_seconds', 0):.1f} s device) | "
                    f"{wire.get('sent_per_clip', 0):,.0f} B sent for {wire.get('payload_sent_per_clip', 0):,.0f} B payload: "
                    f"{100 * wire.get('overhead', float('nan')):.2f} % |")
        cost = rep.get("cost") or {}
        e2e = cost.get("end_to_end", {})
        cost_rows.append(f"| {b} | {cost.get('unit', '?')} | " + " | ".join(f"{e2e.get(k, float('nan')):,.0f}" for k in ("frontend", "lstm", "head", "total")) + " |")
    md = ["## End-to-end parity (host.parity against each board, 300 test clips)", "",
          f"Command: `python -m host.parity --port emulator:BOARD {' '.join(data_args)} --split test --mode both --report FILE`", "",
          "| board | clips | errors | top-1 agreement | model-only outputs exact | features identical / max LSB | accuracy device vs reference | wall time | bytes on the wire per clip (end-to-end) |",
          "|---|---|---|---|---|---|---|---|---|", *rows, "",
          "Wall time is the tool's own (after building and starting the board); the reference and device columns split it: "
          "whichever is larger bounds the run.", "",
          "### Cost per clip (median)", "", "| board | unit | front end | LSTM | dense head | total |", "|---|---|---|---|---|---|", *cost_rows,
          "", "mps2-an386 counts instructions (SysTick under `-icount shift=0`, 40 instructions per tick), not M4 cycles; posix counts host nanoseconds."]
    return "\n".join(md), res


def bench_words(boards=("posix", "mps2-an386")) -> tuple[str, dict]:
    """docs/your-own-words.md's worked example, whole: flite words -> train -> convert -> parity (issue 22)."""
    rows, res = [], {}
    with tempfile.TemporaryDirectory(prefix="sd-words-") as tmp:
        data, model = f"{tmp}/words", f"{tmp}/models/words"
        gen = json.loads(sh([PY, "-m", "train.words", "--out", data, "--no-progress"]).stdout)
        t = time.perf_counter()
        tr = json.loads(sh([PY, "-m", "train", "--data-dir", data, "--out", model, "--no-progress"]).stdout)
        t_train = time.perf_counter() - t
        t = time.perf_counter()
        sh([PY, "-m", "convert.quantize", "--model", model, "--data-dir", data, "--no-progress"])
        t_convert = time.perf_counter() - t
        q = json.loads(Path(model, "report.json").read_text())
        res.update(words=gen["words"], clips=gen["clips"], speakers=gen["speakers"], test_clips=q["test_clips"],
                   float_accuracy=tr["test_accuracy"], int8_accuracy=q["int8_accuracy"], released=q["released"],
                   train_seconds=round(t_train), convert_seconds=round(t_convert), boards={})
        for b in boards:
            report = Path(tmp) / f"parity-{b}.json"
            r = sh([PY, "-m", "host.parity", "--port", f"emulator:{b}", "--model", model, "--data-dir", data, "--split", "test",
                    "--report", str(report), "--no-progress"], check=False, timeout=7200)
            if not report.exists():
                rows.append(f"| {b} | FAILED (exit {r.returncode}) | | | | |")
                continue
            rep = json.loads(report.read_text())
            e2e = (rep.get("cost") or {}).get("end_to_end", {})
            res["boards"][b] = {k: rep.get(k) for k in ("parity", "clips", "errors", "feature_identical_fraction", "feature_max_lsb",
                                                         "output_exact_fraction", "top1_agreement", "device_accuracy")}
            res["boards"][b]["cost"] = rep.get("cost")
            rows.append(f"| {b} | {rep.get('clips')} | {100 * (rep.get('feature_identical_fraction') or 0):.4f} % / "
                        f"{rep.get('feature_max_lsb')} | {pct(rep.get('output_exact_fraction'))} | {pct(rep.get('device_accuracy'))} | "
                        f"{e2e.get('total', float('nan')):,.0f} {(rep.get('cost') or {}).get('unit', '')} |")
    md = ["## Your own words (docs/your-own-words.md, issue 22)", "",
          f"{len(res['words'])} words ({', '.join(res['words'])}) said by flite's voices as {res['speakers']} speakers (a voice at a "
          f"drawn pitch and rate), {res['clips']} clips; the test split is speaker profile 0 of every voice ({res['test_clips']} clips): "
          "the same synthetic voices at unseen pitches and rates, not new people.", "",
          "Commands: `python -m train.words --out words/`, `python -m train --data-dir words/ --out models/words`, "
          "`python -m convert.quantize --model models/words --data-dir words/`, `python -m host.parity --port emulator:BOARD "
          "--model models/words --data-dir words/ --split test`.", "",
          f"| float test accuracy | int8 test accuracy (TFLite Micro, {res['released'].upper()} released) | training | conversion |",
          "|---|---|---|---|",
          f"| {pct(res['float_accuracy'])} | {pct(res['int8_accuracy'])} (target >= 95 %) | {res['train_seconds']} s | {res['convert_seconds']} s |", "",
          "| board | clips | features identical / max LSB | outputs exact | device accuracy | cost per clip (median) |",
          "|---|---|---|---|---|---|", *rows, "",
          "The boards run the firmware built from the model's own generated sources (`--model` picks them, "
          "`make -C firmware GEN=models/words/firmware`)."]
    return "\n".join(md), res


LOAD_PROCESSES = 2


def bench_load(data_args: list[str], boards=("netduinoplus2", "mps2-an386"), busy: int = LOAD_PROCESSES) -> tuple[str, dict]:
    """host.parity end-to-end on the emulated boards while `busy` processes spin on the CPU (issue 14, part 3)."""
    rows, res = [], {}
    spinners = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(busy)]
    try:
        for b in boards:
            report = SCRATCH / f"load-{b}.json"
            cmd = [PY, "-m", "host.parity", "--port", f"emulator:{b}", *data_args, "--split", "test", "--mode", "end-to-end",
                   "--report", str(report), "--no-progress"]
            if report.exists():
                report.unlink()
            r = sh(cmd, check=False, timeout=7200)
            if not report.exists():
                why = " ".join((r.stderr or "").strip().splitlines()[-2:])[:300].replace("|", "/")
                res[b] = {"exit": r.returncode, "stderr_tail": why}
                rows.append(f"| {b} | FAILED (exit {r.returncode}: {why}) | | | | | | | |")
                continue
            rep = json.loads(report.read_text())
            link = rep.get("link") or {}
            rec = rep.get("recovery") or {}
            stats = rep.get("device_stats") or {}
            res[b] = {"exit": r.returncode, "clips": rep.get("clips"), "errors": rep.get("errors"), "link": link,
                      "recovery": rec, "device_stats": stats, "wall_seconds": rep.get("wall_seconds")}
            bad = link.get("frames_bad") or {}
            rows.append(f"| {b} | {rep.get('clips')} | {rep.get('errors')} | {rec.get('clips_retried')} | {stats.get('resent')} | "
                        f"{link.get('rx_dropped')} | {sum(v or 0 for v in bad.values())} | {link.get('rx_high_water')} of "
                        f"{link.get('rx_window') or 'no limit (the UART holds bytes back)'} | {r.returncode} |")
    finally:
        for sp in spinners:
            sp.kill()
            sp.wait()
    md = [f"## The serial link under load ({busy} busy processes beside the run)", "",
          f"Command: `python -m host.parity --port emulator:BOARD {' '.join(data_args)} --split test --mode end-to-end "
          f"--report FILE` while {busy} `sh -c 'while :; do :; done'` processes run (this machine has 2 cores). "
          "Counters from the device's STATS (protocol version 2) and the host's report.", "",
          "| board | clips | error rows | clips retried | requests resent | bytes dropped by the board | damaged frames | "
          "most bytes waiting in the receive ring | exit |", "|---|---|---|---|---|---|---|---|---|", *rows, "",
          "Target: 300/300 clips, zero resends, on both boards. Before protocol version 2 (receive-window flow control, "
          "STM32 receive ring 2 KB): 5 error rows and 87 retried clips on netduinoplus2 under the same load."]
    return "\n".join(md), res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "fsdd"), help="FSDD folder")
    p.add_argument("--only", nargs="*", choices=SECTIONS, default=list(SECTIONS), help="sections to run")
    p.add_argument("--parity-limit", type=int, default=None, help="clips per board in the parity section (default: all 300)")
    p.add_argument("--loso-speakers", nargs="*", default=None, metavar="SPEAKER",
                   help="leave-one-speaker-out folds to measure (default: all six; a partial table says so)")
    p.add_argument("--soak-minutes", type=float, default=None, metavar="M",
                   help="the stream section's soak through the emulated board (default: an hour; 0: none, and the "
                        "section reports the last soak's record and what changed since)")
    p.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = p.parse_args(argv)
    global LOSO_ONLY
    LOSO_ONLY = args.loso_speakers
    data_args = ["--data-dir", args.data_dir] if args.data_dir else []
    OUT.mkdir(parents=True, exist_ok=True)
    SCRATCH.mkdir(parents=True, exist_ok=True)
    parts, results = [], {}
    for name in SECTIONS:
        if name not in args.only:
            continue
        t = time.perf_counter()
        fn = {"train": lambda: bench_train(data_args), "loso": lambda: bench_loso(data_args),
              "nested": lambda: bench_nested(data_args), "ablation": lambda: bench_ablation(data_args),
              "convert": lambda: bench_convert(data_args), "frontend": lambda: bench_frontend(data_args),
              "firmware": bench_firmware, "parity": lambda: bench_parity(data_args, limit=args.parity_limit),
              "fuzz": bench_fuzz, "load": lambda: bench_load(data_args), "words": bench_words,
              "stream": lambda: __import__("benchmarks.stream", fromlist=["bench_stream"]).bench_stream(
                  data_args, folds_dir=release_folds(),
                  **({} if args.soak_minutes is None else {"soak_minutes": args.soak_minutes})),
              "latency": lambda: __import__("benchmarks.latency", fromlist=["bench_latency"]).bench_latency(
                  data_args, streams=6),
              "faults": lambda: __import__("benchmarks.faults", fromlist=["bench_faults"]).bench_faults(data_args)}[name]
        try:
            md, res = fn()
        except Exception as exc:  # one failing section must not lose the others
            md, res = f"## {name}\n\nFAILED: {exc}", {"error": str(exc)}
        (OUT / f"{name}.md").write_text(md + f"\n\n_(section took {time.perf_counter() - t:.0f} s, measured {time.strftime('%Y-%m-%d')})_\n")
        results[name] = res
        (OUT / f"{name}.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    # BENCHMARKS.md holds every section measured so far (a run with --only refreshes its own)
    for name in SECTIONS:
        if (OUT / f"{name}.md").exists():
            parts.append((OUT / f"{name}.md").read_text().rstrip())
    head = ["# Benchmarks", "",
            f"Written by `make bench` (`python -m benchmarks.run`) on {time.strftime('%Y-%m-%d')}, "
            f"{platform.machine()}, {platform.python_version()}, 2 cores. Medians and ratios; these machines are shared and noisy, "
            "so timings are indicative while instruction counts under QEMU are exact.", ""]
    Path(args.out).write_text("\n".join(head) + "\n" + "\n\n".join(parts) + "\n")
    print(json.dumps({k: ("error" in v) if isinstance(v, dict) else False for k, v in results.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
