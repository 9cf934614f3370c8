"""Benchmark: continuous recognition on seeded long streams (train/stream.py).

Streams are made by train/streamgen.py from **test-split** clips only: ten
random digits each, gaps of 0.1-1.5 s, a per-digit level drift of +-3 dB
and one +-6 dB step, white or pink background noise at several SNRs. Scored
with the MLPerf Tiny streaming rule (a detection counts if it falls between
an utterance's start and 1 s after its end; repeats count once): per-digit
recall, substitutions, false detections, digit-string accuracy; plus false
detections per hour on noise-only audio (no digits; levels 30-3000 LSB RMS,
a 6 dB step halfway). The same streams run through the device's C code
(sd_frontend.c's streaming mode + the generated model, posix build of
firmware/tests/stream/stream_main.c), and its events are compared with the
reference's, stream by stream; then the same streams go through the serial
protocol to an emulated board (``python -m host.listen --check``), and the
board's events are compared too. Cost per second of audio per stage comes
from firmware/tests/stream/stream_cost.c on the emulated M4.

Run alone: ``python -m benchmarks.stream --data-dir ../shared/data/fsdd``;
``python -m benchmarks.run --only stream`` writes benchmarks/results/stream.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from host.protocol import PROTOCOL_VERSION
from train.streamgen import SPEECH_END_DB as G_SPEECH_END_DB

ROOT = Path(__file__).resolve().parent.parent
SNRS = (None, 30, 20, 10)
NOISES = ("white", "pink")
STREAMS_PER_CONDITION = 3
NOISE_ONLY = [(kind, rms) for kind in NOISES for rms in (30, 300, 3000)]
NOISE_SECONDS = 300
NOISE_DIR = ROOT.parent / "shared" / "data" / "noise" / "noise"
REAL_SNRS = (20, 10, 5)
REAL_NOISE_STREAMS = 6
REAL_NOISE_SECONDS = 300


def build_c_stream() -> Path:
    r = subprocess.run(["make", "-s", "-C", str(ROOT / "firmware"), "BOARD=posix", "TEST_MAIN=tests/stream/stream_main.c",
                        "test-elf"], capture_output=True, text=True, timeout=900, check=True)
    return ROOT / "firmware" / r.stdout.strip().splitlines()[-1]


def parse_c_stream(text: str) -> list[tuple[list[dict], int]]:
    """The C twin's output (firmware/tests/stream/stream_main.c), per stream: its events and its frame count.

    An event line is ``E f0 f1 f2 f3 start end label outputs... window``: the four frame numbers, the samples,
    the label index (-1: none), the K outputs, then the window as hex (``-``: none); a stream ends with
    ``S frames``. Events come back as dicts: ``frames`` (tuple), ``start``, ``end``, ``label`` (None: none),
    ``outputs`` and ``window`` (int8 [16, 80] or None)."""
    out, cur = [], []
    for line in text.splitlines():
        if line.startswith("E "):
            f = line.split()
            nums = [int(v) for v in f[1:-1]]
            cur.append({"frames": tuple(nums[:4]), "start": nums[4], "end": nums[5],
                        "label": None if nums[6] < 0 else nums[6], "outputs": nums[7:],
                        "window": None if f[-1] == "-" else np.frombuffer(bytes.fromhex(f[-1]), np.int8).reshape(16, 80)})
        elif line.startswith("S "):
            out.append((cur, int(line.split()[1])))
            cur = []
    return out


def run_c_stream(binary: Path, streams: list[np.ndarray], chunk: int = 512, timeout: float = 3600) -> list[tuple[list[dict], int]]:
    """`parse_c_stream` of the C streaming mode run on each stream, cut into ``chunk``-sample pieces (0: whole)."""
    blob = b"".join(struct.pack("<II", len(s), chunk) + np.asarray(s, "<i2").tobytes() for s in streams)
    r = subprocess.run([str(binary)], input=blob, capture_output=True, timeout=timeout, check=True)
    out = parse_c_stream(r.stdout.decode())
    if len(out) != len(streams):
        raise RuntimeError(f"{binary}: {len(out)} stream results for {len(streams)} streams")
    return out


def stream_cost(board: str) -> dict | None:
    """Cost per second of audio per stage on an emulated board (firmware/tests/stream/stream_cost.c)."""
    import re

    r = subprocess.run(["make", "-s", "-C", str(ROOT / "firmware"), f"BOARD={board}",
                        "TEST_MAIN=tests/stream/stream_cost.c", "test"], capture_output=True, text=True, timeout=1200)
    out = {}
    for m in re.finditer(r"stream (\w+) seconds (\d+) windows (\d+) frontend (\d+) model (\d+) unit (\S+)",
                         r.stdout + r.stderr):
        secs, ev, fe, model = (int(m.group(i)) for i in range(2, 6))
        out[m.group(1)] = {"seconds": secs, "windows": ev, "unit": m.group(6), "frontend_per_second": fe / secs,
                           "model_per_second": model / secs, "model_per_window": model / max(ev, 1),
                           "total_per_second": (fe + model) / secs, "frames_per_second": 8000 / 256}
    if r.returncode != 0 or set(out) != {"bursts", "continuous"}:
        return None
    return out


def stream_state_bytes(board: str = "netduinoplus2") -> dict | None:
    """What the streaming mode adds to RAM on the Cortex-M4, measured: firmware/tools/stream_state_size.c compiled
    by ``board``'s compiler and CPU flags (the firmware Makefile's, `make print-CC print-ARCH_FLAGS`; without
    link-time optimization, so the object holds real symbols), its two arrays' sizes read with nm. None without
    the ARM toolchain."""
    import re
    import tempfile

    fw = ROOT / "firmware"
    with tempfile.TemporaryDirectory() as tmp:
        obj = Path(tmp) / "probe.o"
        try:
            cc, flags = subprocess.run(["make", "-s", "-C", str(fw), f"BOARD={board}", "print-CC", "print-ARCH_FLAGS"],
                                       check=True, capture_output=True, text=True).stdout.splitlines()[:2]
            subprocess.run([cc, *flags.split(), "-fno-lto", f"-I{fw / 'include'}", f"-I{fw / 'src'}",
                            f"-I{fw / 'generated'}", "-c", str(fw / "tools" / "stream_state_size.c"), "-o", str(obj)],
                           check=True, capture_output=True)
            nm = subprocess.run([cc.removesuffix("gcc") + "nm", "-S", str(obj)], check=True, capture_output=True,
                                text=True).stdout
        except (OSError, ValueError, subprocess.CalledProcessError):
            return None
    sizes = {m.group(2): int(m.group(1), 16) for m in re.finditer(r"^\S+ (\S+) \w sd_probe_(\w+)_bytes$", nm, re.M)}
    return sizes if set(sizes) == {"detector", "decider"} else None


def board_parity(board: str, streams: list[np.ndarray], workdir: Path) -> dict:
    """host.listen --check on an emulated board for each stream: are its events the reference's, exactly?"""
    from scipy.io import wavfile

    workdir.mkdir(parents=True, exist_ok=True)
    out = {"streams": 0, "identical": 0, "failed": [], "events": 0}
    for i, x in enumerate(streams):
        wav, rep = workdir / f"stream-{i}.wav", workdir / f"stream-{i}.json"
        wavfile.write(wav, 8000, np.asarray(x, np.int16))
        if rep.exists():
            rep.unlink()
        r = subprocess.run([sys.executable, "-m", "host.listen", "--port", f"emulator:{board}", "--wav", str(wav),
                            "--check", "--report", str(rep), "--no-progress"], cwd=ROOT, capture_output=True,
                           text=True, timeout=3600)
        out["streams"] += 1
        if rep.exists():
            d = json.loads(rep.read_text())
            out["events"] += len(d.get("events") or [])
            if d.get("identical") and r.returncode == 0:
                out["identical"] += 1
                continue
        out["failed"].append({"stream": i, "exit": r.returncode, "stderr_tail": (r.stderr or "").strip()[-300:]})
    return out


SOAK_MINUTES = 60.0
SOAK_DIR = ROOT / "out" / "bench" / "soak"


def firmware_code() -> str:
    """SHA-256 of the firmware's hand-written C (firmware/src and firmware/include; not the generated model)."""
    import hashlib

    fw = ROOT / "firmware"
    h = hashlib.sha256()
    for f in sorted([*(fw / "src").rglob("*.[ch]"), *(fw / "include").rglob("*.h")]):
        h.update(f.relative_to(fw).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def soak_record(soaked: dict, model_sha256: str, scfg_sha256: str, workdir: Path = SOAK_DIR) -> dict:
    """Keep what a soak measured and on what (model, detector constants, firmware C, commit, date) in
    workdir/record.json, so a later section run without the soak can say how far its result still applies."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    rec = {**soaked, "model_sha256": model_sha256, "stream_config_sha256": scfg_sha256,
           "firmware_code": firmware_code(), "commit": commit or None, "date": time.strftime("%Y-%m-%d")}
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "record.json").write_text(json.dumps(rec, indent=2) + "\n")
    return rec


def last_soak_line(model_sha256: str, scfg_sha256: str, workdir: Path = SOAK_DIR) -> str:
    """The markdown for a section run without the soak: the last soak's record, and whether the model, the
    detector's constants and the firmware's C are still the ones it ran."""
    try:
        rec = json.loads((workdir / "record.json").read_text())
    except (OSError, ValueError):
        return (f"Soak: not run (`--soak-minutes 0`), and no earlier soak is recorded in "
                f"{workdir.relative_to(ROOT) if workdir.is_relative_to(ROOT) else workdir}.")
    same = {"model": rec.get("model_sha256") == model_sha256, "detector constants": rec.get("stream_config_sha256") ==
            scfg_sha256, "firmware C": rec.get("firmware_code") == firmware_code()}
    verdict = "yes" if rec.get("board_identical") and rec.get("c_identical") else "NO"
    changed = [k for k, v in same.items() if not v]
    return (f"Soak: not run at this measurement (`--soak-minutes 0`). The last one ({rec.get('date')}, commit "
            f"{rec.get('commit')}, {rec.get('minutes', 0):.1f} min on emulated {rec.get('board')}): board and C twin "
            f"identical to the reference: **{verdict}** ({rec.get('board_events')} board events). Since then: "
            + ("nothing it ran has changed." if not changed else
               f"changed: {', '.join(changed)}; unchanged: {', '.join(k for k, v in same.items() if v) or 'nothing'}."))


def soak_stream(clips: list, minutes: float, rng: np.random.Generator):
    """One long stream: 10-digit segments one after another, each with its own noise (none, white or pink at
    30, 20 or 10 dB), level drift and step, until ``minutes`` of audio; (samples, truth)."""
    from train import streamgen as G

    parts, truth, pos = [], [], 0
    while pos < minutes * 60 * G.SR:
        snr = [None, 30, 20, 10][int(rng.integers(0, 4))]
        st = G.make_stream(clips, rng, snr_db=snr, noise=["white", "pink"][int(rng.integers(0, 2))],
                           step_db=float(rng.uniform(-12, 12)))
        truth += [t.shifted(pos) for t in st.truth]
        parts.append(st.samples)
        pos += len(st.samples)
    return np.concatenate(parts), truth


def soak(ref, clips: list, minutes: float, seed: int, board: str, workdir: Path, binary: Path) -> dict:
    """The front end's state over one long stream: the C twin's and the board's events (STREAM, mu-law chunks)
    against the reference's. Mu-law halves the bytes through QEMU's slow UART; the reference runs on exactly
    the samples the board decodes (host.listen --check), so the comparison stays exact."""
    from scipy.io import wavfile

    from train import mulaw
    from train import stream as S
    from train import streamgen as G

    x, truth = soak_stream(clips, minutes, np.random.default_rng(seed))
    x = mulaw.decode(mulaw.encode(x))  # what the board will hear: the C twin and the reference use it too
    scfg = S.DEFAULT_STREAM
    t0 = time.perf_counter()
    evs, _ = S.reference_events(x, ref.cfg, ref.infer, ref.input_scale, ref.input_zero_point, scfg, labels=ref.labels)
    ref_s = time.perf_counter() - t0
    dev = run_c_stream(binary, [x])[0][0]
    c_same = [json.dumps(e.to_dict(), sort_keys=True) for e in evs] == [
        json.dumps(_c_event(d, ref.labels), sort_keys=True) for d in dev]
    workdir.mkdir(parents=True, exist_ok=True)
    wav, rep = workdir / "soak.wav", workdir / "soak.json"
    wavfile.write(wav, 8000, x.astype(np.int16))
    if rep.exists():
        rep.unlink()
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "host.listen", "--port", f"emulator:{board}", "--wav", str(wav), "--mulaw",
                        "--check", "--report", str(rep), "--no-progress"], cwd=ROOT, capture_output=True, text=True,
                       timeout=4 * 3600)
    board_s = time.perf_counter() - t0
    d = json.loads(rep.read_text()) if rep.exists() else {}
    sc = G.score(evs, truth)
    return {"minutes": len(x) / G.SR / 60, "frames": len(x) // ref.cfg.hop_length, "utterances": len(truth),
            "recalled": sc["recalled"], "events_reference": len(evs), "events_c": len(dev), "c_identical": c_same,
            "board": board, "board_events": len(d.get("events") or []),
            "board_identical": bool(d.get("identical")) and r.returncode == 0, "board_exit": r.returncode,
            "board_seconds": board_s, "reference_seconds": ref_s,
            "stderr_tail": "" if r.returncode == 0 else (r.stderr or "").strip()[-400:]}


HELD_OUT_CONDITIONS = ((None, "none"), (10, "pink"), (10, "real"))


def fold_recipe(fold: Path) -> list[str] | None:
    """The training arguments a benchmark fold was made with (its fold.json, benchmarks/run.py), if it says."""
    try:
        return list(json.loads((fold / "fold.json").read_text())["key"]["train_args"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def fold_mismatch(fold: Path, recipe) -> str | None:
    """Why a benchmark fold is not a fold of ``recipe`` (`python -m train` arguments, e.g. train/release.py's
    RECIPE_ARGS) as the code stands, or None when it is: its fold.json must name the recipe's arguments (after the
    nested section's --val-speaker and --seed) and the current hash of the recipe's code (train/release.py's
    `recipe_code`), or an earlier one its NEUTRAL_CHANGES record as behaviour-neutral."""
    from train.release import same_recipe_code

    try:
        key = json.loads((fold / "fold.json").read_text())["key"]
        args = list(key["train_args"])
    except (OSError, ValueError, KeyError, TypeError):
        return "no fold.json says how it was trained"
    rest, i = [], 0
    while i < len(args):
        if args[i] in ("--val-speaker", "--seed") and i + 1 < len(args):
            i += 2
            continue
        rest.append(args[i])
        i += 1
    if rest != list(recipe):
        return f"trained with {' '.join(rest) or '(defaults)'}, not the recipe {' '.join(recipe) or '(defaults)'}"
    if not same_recipe_code(key.get("code")):
        return "trained by older code (the recipe's files changed since: train/release.py's RECIPE_FILES)"
    return None


def skipped_lines(skipped: dict[str, str]) -> list[str]:
    """The held-out-speaker section's skipped folds as markdown items, one per reason (folds skipped for the same
    reason share a line, speakers in order)."""
    by_why: dict[str, list[str]] = {}
    for sp, why in skipped.items():
        by_why.setdefault(why, []).append(sp)
    return [f"- Skipped {', '.join(sorted(sps))}: {why}." for why, sps in by_why.items()]


def held_out_speakers(ds, bank, seed: int, folds_dir: Path, labels, streams_per_condition: int = 2,
                      scfg=None, recipe=None) -> dict | None:
    """Recall on streams of each LOSO fold's held-out speaker, run through that fold's own int8 model
    (the reference: the front end + TFLite Micro; the device computes the same). Needs the LOSO benchmark's fold
    models (``folds_dir``/SPEAKER/model_int8.tflite, by default out/bench/loso); None when there are none.

    A fold whose labels are not ``labels`` (the benchmarked model's) is a different recipe: it is skipped and
    named under ``"skipped"``; so is one that is not a fold of ``recipe`` (`fold_mismatch`), when given. Each fold's
    training arguments (fold.json) are reported with its recall."""
    from convert.reference import Reference
    from train import stream as S
    from train import streamgen as G

    out, skipped = {}, {}
    for fold in sorted(p for p in Path(folds_dir).glob("*") if (p / "model_int8.tflite").is_file()):
        sp = fold.name
        ref = Reference.from_dir(fold)
        if list(ref.labels.names) != list(labels.names):
            skipped[sp] = f"labels {list(ref.labels.names)} are not the model's {list(labels.names)}"
            continue
        why = fold_mismatch(fold, recipe) if recipe is not None else None
        if why:
            skipped[sp] = why
            continue
        clips = [c for c in ds.clips if c.speaker == sp]
        rng = np.random.default_rng(seed)
        res = {}
        for snr, kind in HELD_OUT_CONDITIONS:
            if kind == "real" and bank is None:
                continue
            got = [0, 0]
            for _ in range(streams_per_condition):
                st = G.make_stream(clips, rng, snr_db=snr, noise=kind if snr is not None else "white", bank=bank)
                evs, _ = S.reference_events(st.samples, ref.cfg, ref.infer, ref.input_scale, ref.input_zero_point,
                                            scfg or S.DEFAULT_STREAM, labels=ref.labels)
                sc = G.score(evs, st.truth)
                got[0] += sc["recalled"]
                got[1] += sc["utterances"]
            res["clean" if snr is None else f"{snr} dB {kind}"] = got
        out[sp] = {"recall": res, "train_args": fold_recipe(fold)}
    if not out and not skipped:
        return None
    try:
        where = str(Path(folds_dir).resolve().relative_to(ROOT))
    except ValueError:
        where = str(folds_dir)
    return {"folds_dir": where, "speakers": out, "skipped": skipped}


def _c_event(d: dict, labels=None) -> dict:
    """A C twin event (parse_c_stream) as train.stream.Event.to_dict."""
    from train.stream import Event

    return Event.of_class(d["label"], d["start"], d["end"], d["outputs"], labels).to_dict()


def ms_summary(seconds) -> dict:
    """Count, median, 90th percentile, max and min (ms) of latencies given in seconds (at least one)."""
    ms = np.asarray(seconds, np.float64) * 1000.0
    return {"digits": len(ms), "median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)),
            "max_ms": float(ms.max()), "min_ms": float(ms.min())}


def latency_summary(samples_by: dict[str, list[int]], sr: int = 8000) -> dict:
    """`ms_summary` of the decision latency (samples, `streamgen.score`) per group and over all."""
    out = {}
    for name, v in list(samples_by.items()) + [("all", [x for v in samples_by.values() for x in v])]:
        if v:
            out[name] = ms_summary(np.asarray(v, np.float64) / sr)
    return out


def latency_line(lat: dict) -> str:
    if "all" not in lat:
        return "Decision latency: no digit recalled."
    a = lat["all"]
    parts = [f"{k} {v['median_ms']:.0f} ms median" for k, v in lat.items() if k != "all"]
    return (f"Decision latency, from the end of a recalled digit's speech (its last 32 ms frame within "
            f"{G_SPEECH_END_DB:.0f} dB of its loudest) to the last sample of the window that decided it: **median "
            f"{a['median_ms']:.0f} ms, 90th percentile {a['p90_ms']:.0f} ms, max {a['max_ms']:.0f} ms** "
            f"({a['digits']} digits; {', '.join(parts)}; negative: decided before the speech ended). The host adds the "
            "wait for a chunk (up to 64 ms), the link and the board's compute (docs/streaming.md, Latency).")


def bench_stream(data_args: list[str], *, streams_per_condition: int = STREAMS_PER_CONDITION,
                 noise_seconds: float = NOISE_SECONDS, seed: int = 2026,
                 boards: tuple[str, ...] = ("mps2-an386",), soak_minutes: float = SOAK_MINUTES,
                 model_dir: Path | None = None, device: bool = True, folds_dir: Path | None = None,
                 scfg=None) -> tuple[str, dict]:
    """``model_dir``: an int8 model folder other than the release (reference only: its C is not the firmware's);
    ``device``: False skips the C twin, the boards and the soak (the reference's recall and false digits only);
    ``folds_dir``: the leave-one-speaker-out fold models of the model's recipe (default out/bench/loso);
    ``scfg``: a detector other than the release's (train.stream.DEFAULT_STREAM; reference only)."""
    from convert.reference import Reference
    from train import data as D
    from train import reject as RJ
    from train import stream as S
    from train import streamgen as G

    ref = Reference.from_dir(model_dir or ROOT / "models" / "released")
    released = model_dir is None or Path(model_dir).resolve() == (ROOT / "models" / "released").resolve()
    if not released:
        device = False  # the firmware's generated C is the release's
    if scfg is not None and scfg != S.DEFAULT_STREAM:
        device = False  # the firmware's generated stream constants are the release's
    scfg = scfg or S.DEFAULT_STREAM
    ds = D.load_dataset(data_args[1] if data_args else D.resolve_data_dir(None))
    _, test = D.split_indices(ds, "official")
    clips = [ds.clips[i] for i in test]
    rng = np.random.default_rng(seed)
    conds = [(snr, kind) for snr in SNRS for kind in (NOISES if snr is not None else ("none",))]
    streams = [(snr, kind, G.make_stream(clips, rng, snr_db=snr, noise=kind if snr is not None else "white"))
               for snr, kind in conds for _ in range(streams_per_condition)]
    noise = [(kind, rms, G.noise_stream(noise_seconds, rng, kind=kind, rms=rms)) for kind, rms in NOISE_ONLY]
    # real background noise (../shared/data/noise): digits over it, and noise alone with level changes; drawn
    # after the synthetic streams, so those stay what they were
    # only the recordings no model trains on (train/reject.py keeps them out of the noise class and augmentation)
    bank = G.NoiseBank(NOISE_DIR, only=RJ.HELD_OUT_NOISE) if NOISE_DIR.is_dir() else None
    if bank is not None:
        streams += [(snr, "real", G.make_stream(clips, rng, snr_db=snr, noise="real", bank=bank))
                    for snr in REAL_SNRS for _ in range(streams_per_condition)]
        noise += [("real", "20-60 s levels", G.real_noise_stream(REAL_NOISE_SECONDS, rng, bank))
                  for _ in range(REAL_NOISE_STREAMS)]
    t0 = time.perf_counter()
    ref_events = [S.reference_events(st.samples, ref.cfg, ref.infer, ref.input_scale, ref.input_zero_point, scfg,
                                     ref._mel, labels=ref.labels)[0] for *_, st in streams + noise]
    ref_seconds = time.perf_counter() - t0
    if device:
        binary = build_c_stream()
        dev_events = [evs for evs, _ in run_c_stream(binary, [st.samples for *_, st in streams + noise])]
        identical = [[json.dumps(e.to_dict(), sort_keys=True) for e in r] ==
                     [json.dumps(_c_event(d, ref.labels), sort_keys=True) for d in dv]
                     for r, dv in zip(ref_events, dev_events)]
        costs = {b: stream_cost(b) for b in ("mps2-an386", "netduinoplus2")}
        # through the serial protocol (STREAM messages) on the emulated boards: every digit stream, and the first
        # minute of each noise-only one
        on_boards = {b: board_parity(b, [st.samples for *_, st in streams] + [st.samples[: 60 * G.SR] for *_, st in noise],
                                     ROOT / "out" / "bench" / f"stream-{b}") for b in boards}
        soaked = (soak(ref, clips, soak_minutes, seed + 1, boards[0], SOAK_DIR, binary)
                  if soak_minutes > 0 else None)
        if soaked:
            soak_record(soaked, ref.sha256, scfg.sha256())
    else:
        dev_events, identical, costs, on_boards, soaked = [], [], {}, {}, None
    if released:
        from train.release import RECIPE_ARGS
    held_dir = folds_dir or ROOT / "out" / "bench" / "loso"
    held = held_out_speakers(ds, bank, seed + 2, held_dir, ref.labels, scfg=scfg,
                             recipe=RECIPE_ARGS if released else None)
    per_cond, per_digit = {}, {d: [0, 0] for d in range(10)}
    tot = {"utterances": 0, "recalled": 0, "substituted": 0, "missed": 0, "false_detections": 0, "rejected": 0,
           "strings": 0, "strings_correct": 0, "seconds": 0.0}
    stream_rows, latency = [], {}
    for (snr, kind, st), evs in zip(streams, ref_events):
        sc = G.score(evs, st.truth)
        latency.setdefault("clean" if snr is None else "noisy", []).extend(sc["latency_samples"])
        key = f"{'clean' if snr is None else f'{snr} dB'} {kind if snr is not None else ''}".strip()
        c = per_cond.setdefault(key, {"utterances": 0, "recalled": 0, "substituted": 0, "false_detections": 0,
                                      "strings": 0, "strings_correct": 0})
        for k in ("utterances", "recalled", "substituted", "false_detections"):
            c[k] += sc[k]
            tot[k] += sc[k]
        tot["missed"] += sc["missed"]
        tot["rejected"] += sc["rejected"]
        c["strings"] += 1
        c["strings_correct"] += int(sc["string_correct"])
        tot["strings"] += 1
        tot["strings_correct"] += int(sc["string_correct"])
        tot["seconds"] += len(st.samples) / G.SR
        for d, (h, n) in sc["per_digit"].items():
            per_digit[d][0] += h
            per_digit[d][1] += n
        stream_rows.append({"snr_db": snr, "noise": kind, "truth": sc["truth_digits"], "digits": sc["digits"],
                            **{k: sc[k] for k in ("recalled", "substituted", "missed", "false_detections", "rejected")}})
    noise_rows, fa_total, noise_total_s = [], 0, 0.0
    fa_by = {"synthetic": [0, 0.0, 0], "real": [0, 0.0, 0]}  # false digits, seconds, rejected
    for (kind, rms, st), evs in zip(noise, ref_events[len(streams):]):
        fa = sum(e.digit is not None for e in evs)
        rej = sum(e.digit is None for e in evs)
        fa_total += fa
        noise_total_s += len(st.samples) / G.SR
        b = fa_by["real" if kind == "real" else "synthetic"]
        b[0] += fa
        b[1] += len(st.samples) / G.SR
        b[2] += rej
        noise_rows.append({"noise": kind, "rms": rms, "seconds": len(st.samples) / G.SR, "false_detections": fa,
                           "rejected": rej})
    fa_per_hour = fa_total / (noise_total_s / 3600)
    fa_split = {k: {"false_detections": v[0], "seconds": v[1], "rejected": v[2],
                    "per_hour": v[0] / (v[1] / 3600) if v[1] else None} for k, v in fa_by.items()}
    recall = tot["recalled"] / max(tot["utterances"], 1)
    lat = latency_summary(latency)
    res = {"stream_config": scfg.to_dict(), "stream_config_sha256": scfg.sha256(), "model_sha256": ref.sha256,
           "streams": len(streams), "audio_seconds": tot["seconds"], "recall": recall, **tot,
           "string_accuracy": tot["strings_correct"] / max(tot["strings"], 1),
           "per_condition": per_cond, "per_digit": {str(d): v for d, v in per_digit.items()},
           "noise_only": noise_rows, "noise_seconds": noise_total_s, "false_detections_per_hour": fa_per_hour,
           "false_detections_by_noise": fa_split, "real_noise_files": bank.files if bank else None,
           "real_noise_seconds": bank.seconds if bank else None,
           "event_parity": {"streams": len(identical), "identical": int(sum(identical)),
                            "events_reference": int(sum(len(r) for r in ref_events)),
                            "events_device": int(sum(len(d) for d in dev_events))},
           "reference_seconds": ref_seconds, "per_stream": stream_rows, "cost": costs, "board_parity": on_boards,
           "soak": soaked, "held_out_speakers": held, "decision_latency": lat}
    md = ["## Continuous recognition (streams of test-split digits)", "",
          "Command: `python -m benchmarks.stream --data-dir ../shared/data/fsdd` (train/stream.py's reference with the "
          f"{'released ' if model_dir is None else ''}int8 model in TFLite Micro; stream config sha256 "
          f"`{scfg.sha256()[:12]}`, "
          + ("defaults of `train.stream.StreamConfig`, chosen on training-split streams)." if scfg == S.DEFAULT_STREAM
             else f"changed from the defaults: `{scfg.changes()}`)."), "",
          f"{len(streams)} streams of 10 digits ({tot['seconds'] / 60:.1f} min of audio) made of test-split clips: "
          "gaps of 0.1-1.5 s, level drift +-3 dB per digit and one +-6 dB step, background noise at each SNR "
          "(speech RMS over noise RMS). Scored with the MLPerf Tiny streaming rule: a detection counts if it falls "
          "between an utterance's start and 1 s after its end; repeats count once.", "",
          "| condition | digits recalled | substitutions | false detections | digit strings correct |",
          "|---|---|---|---|---|"]
    for key, c in per_cond.items():
        md.append(f"| {key} | {c['recalled']} / {c['utterances']} ({c['recalled'] / max(c['utterances'], 1):.1%}) | "
                  f"{c['substituted']} | {c['false_detections']} | {c['strings_correct']} / {c['strings']} |")
    md += [f"| **all** | **{tot['recalled']} / {tot['utterances']} ({recall:.1%})** | {tot['substituted']} | "
           f"{tot['false_detections']} | {tot['strings_correct']} / {tot['strings']} |", "",
           "Per digit (recalled / spoken): " + ", ".join(f"{d}: {h}/{n}" for d, (h, n) in per_digit.items()), "",
           latency_line(lat), "",
           f"Noise only, synthetic ({fa_split['synthetic']['seconds'] / 60:.0f} min: white and pink at 30, 300 and "
           f"3,000 LSB RMS, each with a 6 dB step halfway): **{fa_split['synthetic']['false_detections']} false digits, "
           f"{fa_split['synthetic']['per_hour']:.1f} per hour** ({fa_split['synthetic']['rejected']} more utterances "
           "rejected by the top-1 margin).", ""]
    if bank is not None:
        md += [f"Noise only, real ({fa_split['real']['seconds'] / 60:.0f} min made of the {len(bank.files)} recordings of "
               f"../shared/data/noise/noise that no model trains on ({', '.join(bank.files)}; train/reject.py's "
               f"HELD_OUT_NOISE), {bank.seconds / 60:.1f} min in all, drawn in random 2-10 s stretches; the "
               "level jumps among 30, 100, 300, 1,000 and 3,000 LSB RMS every 20-60 s): "
               f"**{fa_split['real']['false_detections']} false digits, {fa_split['real']['per_hour']:.1f} per hour** "
               f"({fa_split['real']['rejected']} more rejected). The real-noise digit streams are the `real` rows above "
               "(same recordings, random stretches).", ""]
    else:
        md += [f"Real noise: not measured ({NOISE_DIR} is missing).", ""]
    if device:
        md += [
            f"Event parity, the device's C code (posix build of the streaming mode + generated model) against the "
            f"reference: **{sum(identical)} / {len(identical)} streams with identical event lists** "
            f"({res['event_parity']['events_device']} device events, {res['event_parity']['events_reference']} "
            "reference events: label, first and last sample, int8 outputs)."]
    else:
        md += [f"Reference only (model {model_dir}): no C twin, board or cost figures."]
    for b, bp in on_boards.items():
        md += ["", f"Through the serial protocol on emulated {b} (`python -m host.listen --port emulator:{b} --wav FILE "
                   f"--check --report FILE`, STREAM messages, protocol version {PROTOCOL_VERSION}): "
                   f"**{bp['identical']} / {bp['streams']} "
                   f"streams with events identical to the reference** ({bp['events']} events; the digit streams and the "
                   "first minute of each noise-only stream)."
               + (f" Failed: {json.dumps(bp['failed'])[:600]}" if bp["failed"] else "")]
    if device and not soaked:
        md += ["", last_soak_line(ref.sha256, scfg.sha256())]
    if soaked:
        md += ["", f"Soak: one stream of {soaked['minutes']:.1f} min ({soaked['frames']:,} frames; 10-digit segments "
                   "one after another, each clean or with white or pink noise at 30, 20 or 10 dB and a level step of up "
                   "to +-12 dB; the front end's noise state is carried through all of it), sent as mu-law STREAM chunks "
                   f"to emulated {soaked['board']} (`host.listen --mulaw --check`): "
                   f"**board events identical to the reference: {'yes' if soaked['board_identical'] else 'NO'}** "
                   f"({soaked['board_events']} board events, {soaked['events_reference']} reference events, "
                   f"{soaked['board_seconds'] / 60:.0f} min through QEMU); the C twin (posix): "
                   f"{'identical' if soaked['c_identical'] else 'DIFFERENT'} ({soaked['events_c']} events). "
                   f"Digits recalled: {soaked['recalled']} / {soaked['utterances']}."
               + (f" Board run: exit {soaked['board_exit']}, {soaked['stderr_tail']}" if soaked["stderr_tail"] else "")]
    if held is None:
        md += ["", f"Held-out speakers: not measured (no fold models in {held_dir}; `python -m benchmarks.run --only "
                   "nested` trains the release recipe's)."]
    elif not held["speakers"]:
        md += ["", f"Held-out speakers: not measured (no fold model in {held['folds_dir']} is one of this model's "
                   "recipe; `python -m benchmarks.run --only nested` trains them):"]
        md += skipped_lines(held["skipped"])
    else:
        conds = list(next(iter(held["speakers"].values()))["recall"].keys())
        recipes = {" ".join(v["train_args"]) if v["train_args"] is not None else "(not recorded)"
                   for v in held["speakers"].values()}
        md += ["", "Held-out speakers: streams of each leave-one-speaker-out fold's own speaker (all 500 of their clips "
                   f"are unseen by that fold's model), run through that fold's int8 model ({held['folds_dir']}; "
                   f"training arguments: {'; '.join(f'`{r}`' for r in sorted(recipes))}), 2 streams of 10 digits "
                   "per condition; digits recalled:", "",
               "| held-out speaker | " + " | ".join(conds) + " |", "|---|" + "---|" * len(conds)]
        tot_h = {c: [0, 0] for c in conds}
        for sp, v in held["speakers"].items():
            r = v["recall"]
            md.append(f"| {sp} | " + " | ".join(f"{r[c][0]} / {r[c][1]}" for c in conds) + " |")
            for c in conds:
                tot_h[c][0] += r[c][0]
                tot_h[c][1] += r[c][1]
        md.append("| **all** | " + " | ".join(f"**{v[0]} / {v[1]} ({v[0] / max(v[1], 1):.1%})**" for v in tot_h.values())
                  + " |")
        md += skipped_lines(held["skipped"])
    if not device:
        return "\n".join(md), res
    md += ["", "Cost per second of audio on the emulated M4 (`make -C firmware BOARD=B TEST_MAIN=tests/stream/stream_cost.c "
           "test`: two 10 s streams, `-icount shift=0`, instructions): *bursts*, five 0.4 s tone bursts over quiet "
           "noise; *continuous*, the tones 7/8 of the time with 125 ms pauses (talking without a break: the sliding "
           "windows' worst case). Silence or steady noise costs the front end alone (the gate stays shut).", "",
           "| board | stream | front end + detector per second | model windows per second | model per second | "
           "total per second |", "|---|---|---|---|---|---|"]
    for b, c in costs.items():
        if c is None:
            md.append(f"| {b} | not measured (build or run failed) | | | | |")
            continue
        for name, v in c.items():
            per_frame = v["frontend_per_second"] / v["frames_per_second"]
            md.append(f"| {b} | {name} | {v['frontend_per_second'] / 1e6:.2f} M ({per_frame:,.0f} per frame) | "
                      f"{v['windows'] / v['seconds']:.1f} | {v['model_per_second'] / 1e6:.2f} M | "
                      f"**{v['total_per_second'] / 1e6:.2f} M** |")
    state = stream_state_bytes()
    res["state_bytes"] = state
    size = (f"its state is {state['detector'] + state['decider']} bytes on the M4 ({state['detector']} for the detector's "
            f"fields of sd_frontend_t, {state['decider']} for one sd_stream_decider_t; measured by compiling "
            "firmware/tools/stream_state_size.c), counted in the RAM figures." if state else
            "its state's size was not measured (no arm-none-eabi-gcc).")
    md += ["", "The streaming mode needs no buffer beyond the clip mode's (the ring of 16 frames and one saved window): "
           + size]
    return "\n".join(md), res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.stream", description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "fsdd"))
    p.add_argument("--streams", type=int, default=STREAMS_PER_CONDITION, help="streams per condition")
    p.add_argument("--noise-seconds", type=float, default=NOISE_SECONDS, help="seconds per noise-only stream")
    p.add_argument("--soak-minutes", type=float, default=SOAK_MINUTES,
                   help="minutes of the soak stream through STREAM on the emulated board (0: none; an hour takes "
                        "about 20-40 min)")
    p.add_argument("--model", default=None, help="an int8 model folder other than models/released (reference only)")
    p.add_argument("--no-device", action="store_true", help="reference only: no C twin, boards, soak or cost")
    p.add_argument("--stream-config", default=None, metavar="JSON",
                   help="detector constants other than the release's (a StreamConfig as JSON, e.g. benchmarks.tune_stream's "
                        "choice); reference only")
    p.add_argument("--folds", default=None, metavar="DIR",
                   help="leave-one-speaker-out fold models of the model's recipe, DIR/SPEAKER (default out/bench/loso)")
    p.add_argument("--json", default=None, help="write the results here too")
    a = p.parse_args(argv)
    scfg = None
    if a.stream_config:
        from train.stream import StreamConfig

        try:
            scfg = StreamConfig.from_dict(json.loads(Path(a.stream_config).read_text()))
        except (OSError, ValueError, TypeError) as e:
            p.error(f"--stream-config {a.stream_config}: {e}")
    md, res = bench_stream(["--data-dir", a.data_dir], streams_per_condition=a.streams, noise_seconds=a.noise_seconds,
                           soak_minutes=a.soak_minutes, model_dir=Path(a.model) if a.model else None,
                           device=not a.no_device, folds_dir=Path(a.folds) if a.folds else None, scfg=scfg)
    print(md)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2) + "\n")
    ok = res["event_parity"]["identical"] == res["event_parity"]["streams"] and all(
        bp["identical"] == bp["streams"] for bp in res["board_parity"].values()) and (
        res["soak"] is None or (res["soak"]["board_identical"] and res["soak"]["c_identical"]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
