"""Benchmark: host.parity through the fault-injecting link (host/faultlink.py).

For each condition, ``python -m host.parity --faults SPEC`` streams the test
split through the proxy; every accepted result is compared with the same
board's fault-free run (label, int8 output, SHA-256 of the int8 features,
sample count, model-only output). Counted per condition:

- completed: clips with a device result in both modes and no error;
- retried: completed clips that needed a resend or a restart of the clip;
- errored: clips recorded as an error row after the bounded tries;
- wrong: accepted results that differ from the fault-free run (target 0).

Run alone: ``python -m benchmarks.faults --data-dir ../shared/data/fsdd``;
``python -m benchmarks.run --only faults`` writes benchmarks/results/faults.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / "out" / "bench"
PY = sys.executable
KINDS = ("drop", "flip", "dup", "insert")

#: Host recovery settings for every condition (posix answers in about a millisecond).
POSIX_RECOVERY = ["--retries", "8", "--clip-attempts", "30", "--timeout", "0.5"]
QEMU_RECOVERY = ["--retries", "8", "--clip-attempts", "30", "--timeout", "5"]
#: At 1e-2 a 90-byte request at the smallest chunk gets through with probability ~0.4 and its answer
#: with ~0.8: 30 resends make a request that fails for good about 1e-6 likely.
NOISY_RECOVERY = ["--retries", "30", "--clip-attempts", "30", "--timeout", "0.5"]
DELAY = "delay=0.01,delay_max=0.05"

#: (name, board, fault spec, clips or None for the whole test split, recovery args, note)
CONDITIONS: list[tuple[str, str, str, int | None, list[str], str]] = [
    ("posix-clean", "posix", "seed=1", None, POSIX_RECOVERY, "fault-free run through the proxy: the yardstick"),
    ("posix-1e-4", "posix", f"rate=1e-4,{DELAY},seed=1", None, POSIX_RECOVERY, ""),
    ("posix-1e-3", "posix", f"rate=1e-3,{DELAY},seed=1", None, POSIX_RECOVERY, ""),
    ("posix-1e-2", "posix", f"rate=1e-2,{DELAY},seed=1", None, NOISY_RECOVERY,
     "30 resends per request; chunks and parts shrink to 32 samples / 64 bytes"),
    ("posix-resets", "posix", "resets=10,seed=1", None, POSIX_RECOVERY, "10 board restarts, each in the middle of a clip"),
    ("posix-1e-3+resets", "posix", f"rate=1e-3,{DELAY},resets=5,seed=2", 100, POSIX_RECOVERY,
     "100 clips, byte errors and 5 restarts together"),
    ("mps2-an386-clean", "mps2-an386", "seed=1", 20, QEMU_RECOVERY, "QEMU yardstick"),
    ("mps2-an386-resets", "mps2-an386", "resets=3,seed=1", 20, QEMU_RECOVERY, "3 QEMU restarts in 20 clips"),
]


def _sh(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def _results(row: dict[str, Any]) -> dict[str, tuple]:
    """What the device computed for a clip, per mode that has a result (an error row may have one)."""
    out = {}
    if row.get("end_to_end"):
        m = row["end_to_end"]
        out["end_to_end"] = (m["device_label"], m["device_output"], m.get("device_features_sha256"), m.get("n_samples"))
    if row.get("model_only"):
        m = row["model_only"]
        out["model_only"] = (m["device_label"], m["device_output"])
    return out


def wrong_results(rep: dict[str, Any], yardstick: dict[str, Any]) -> list[str]:
    """``file:mode`` of every accepted result that differs from the fault-free run's."""
    base = {r["file"]: _results(r) for r in yardstick["rows"]}
    wrong = []
    for row in rep["rows"]:
        for mode, res in _results(row).items():
            if row["file"] in base and base[row["file"]].get(mode) != res:
                wrong.append(f"{row['file']}:{mode}")
    return wrong


def summarize(rep: dict[str, Any], yardstick: dict[str, Any] | None) -> dict[str, Any]:
    """Counts of one parity report; ``wrong`` against the fault-free report of the same board."""
    rows = rep["rows"]
    done = [r for r in rows if not r["error"] and r.get("end_to_end") and r.get("model_only")]
    wrong = wrong_results(rep, yardstick) if yardstick else []
    partial = [r for r in rows if r["error"] and (r.get("end_to_end") or r.get("model_only"))]
    f = rep.get("faults") or {}
    dirs = f.get("directions") or {}
    kinds = {k: sum(d.get(k, 0) for d in dirs.values()) for k in KINDS}
    return {
        "clips": len(rows),
        "completed": len(done),
        "retried": sum(1 for r in done if r.get("attempts", 1) > 1 or r.get("resent")),
        "restarted_clips": sum(1 for r in done if r.get("attempts", 1) > 1),
        "errored": sum(1 for r in rows if r["error"] and r["error"]["stage"] not in ("skipped", "input", "reference")),
        "skipped": sum(1 for r in rows if r["error"] and r["error"]["stage"] == "skipped"),
        "wrong": len(wrong),  # accepted results (per clip and mode) that differ from the fault-free run
        "wrong_results": wrong,
        "partial_rows": len(partial),  # one mode has a result (compared too), the other an error
        "max_attempts": max((r.get("attempts", 0) for r in rows), default=0),
        # tries of a clip (1 = through the first time), over the clips that completed
        "mean_attempts": (sum(r.get("attempts", 1) for r in done) / len(done)) if done else None,
        "resends": (rep.get("device_stats") or {}).get("resent"),
        "timeouts": (rep.get("device_stats") or {}).get("timeouts"),
        "damaged_frames_seen": (rep.get("device_stats") or {}).get("damaged"),
        "byte_faults": f.get("byte_faults"),
        "faults_by_kind": kinds,
        "bytes_through": sum(d.get("bytes_in", 0) for d in dirs.values()),
        "delayed_frames": f.get("delayed_frames"),
        "board_restarts": len(f.get("restarts") or []),
        "parity": rep.get("parity"),
        "top1_agreement": rep.get("top1_agreement"),
        "output_exact_fraction": rep.get("output_exact_fraction"),
        "wall_seconds": rep.get("wall_seconds"),
        "aborted": rep.get("aborted"),
    }


def bench_faults(data_args: list[str], conditions=CONDITIONS, reuse: bool = False) -> tuple[str, dict]:
    """Run every condition (``reuse``: only re-read the reports a previous run left in out/bench)."""
    SCRATCH.mkdir(parents=True, exist_ok=True)
    qemu = shutil.which("qemu-system-arm") is not None and shutil.which("arm-none-eabi-gcc") is not None
    results: dict[str, Any] = {}
    reports: dict[str, dict[str, Any]] = {}
    rows, commands = [], []
    for name, board, spec, clips, recovery, note in conditions:
        if board != "posix" and not qemu:
            results[name] = {"skipped": "qemu-system-arm or arm-none-eabi-gcc not installed"}
            continue
        report = SCRATCH / f"faults-{name}.json"
        if not reuse:
            report.unlink(missing_ok=True)
        cmd = [PY, "-m", "host.parity", "--port", f"emulator:{board}", *data_args, "--split", "test",
               "--mode", "both", "--faults", spec, *recovery, "--report", str(report), "--no-progress"]
        if clips:
            cmd += ["--limit", str(clips)]
        shown = ["python", *cmd[1:]]
        shown[shown.index("--report") + 1] = f"out/bench/faults-{name}.json"
        commands.append(f"- {name}: `{' '.join(shown)}`")
        t = time.perf_counter()
        if reuse and report.exists():
            r = subprocess.CompletedProcess(cmd, json.loads(report.read_text()).get("exit_status", 0), "", "")
        else:
            r = _sh(cmd, timeout=4 * 3600)
        wall = time.perf_counter() - t
        if not report.exists():
            results[name] = {"error": f"exit {r.returncode}: {r.stderr[-1500:]}"}
            rows.append(f"| {name} | `{spec}` | FAILED (exit {r.returncode}) | | | | | | | | |")
            continue
        rep = json.loads(report.read_text())
        reports[name] = rep
        yard = reports.get(f"{board}-clean")
        s = summarize(rep, yard)
        s.update({"board": board, "spec": spec, "exit": r.returncode, "command_seconds": round(wall, 1),
                  "recovery": recovery, "note": note, "yardstick": f"{board}-clean" if yard else None})
        results[name] = s
        k = s["faults_by_kind"]
        rows.append(
            f"| {name} | `{spec}` | {s['clips']} | **{s['completed']}** | {s['retried']} ({s['restarted_clips']} restarted) | "
            f"**{s['errored']}** | **{s['wrong'] if yard and name != f'{board}-clean' else '(yardstick)'}** | "
            f"{s['byte_faults']:,} ({k['drop']:,} / {k['flip']:,} / {k['dup']:,} / {k['insert']:,}) in {s['bytes_through']:,} B; "
            f"{s['delayed_frames']} delayed; {s['board_restarts']} restarts | {s['resends']:,} / {s['timeouts']} | "
            f"{s['mean_attempts'] or 0:.2f} / {s['max_attempts']} | {s['wall_seconds']:.0f} s |")
    total_wrong = sum(v.get("wrong", 0) for v in results.values() if isinstance(v, dict))
    e3 = results.get("posix-1e-3") or {}
    e2 = results.get("posix-1e-2") or {}
    md = [
        "## Faults and recovery (host.parity through host/faultlink.py)",
        "",
        "Each condition streams the FSDD test split through the fault-injecting proxy (`--faults`, "
        "docs/protocol.md \"Faults and recovery\"). A byte error rate R means: every byte, in each direction, "
        "is dropped, flipped (one random bit), duplicated or preceded by an inserted random byte with "
        "probability R/4 each (R in all); with `delay=0.01` 1 % of the frames are also held back up to 50 ms. "
        "Restarts kill the board (posix program or QEMU) as the second request of a clip arrives and start it "
        "again; the host's port stays open. Host settings: up to 8 resends per request (30 at 1e-2), 30 tries "
        "per clip; response timeout 0.5 s on posix, 5 s on QEMU.",
        "",
        "**wrong** compares every accepted result with the same board's fault-free run (label, int8 outputs, "
        "SHA-256 of the int8 features, sample count), per mode, including the one mode of a clip whose other mode "
        "failed. retried = completed clips that needed a resend or a "
        "restart; errored = clips given up after the bounded tries (an error row with its attempts).",
        "",
        "| condition | faults | clips | completed | retried | errored | wrong | faults injected: bytes (drop / flip / dup / insert); frames; restarts | resends / timeouts | tries of a clip: mean / most | wall |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"- Wrong results over all conditions: **{total_wrong}** (target 0).",
        f"- At 1e-3: {e3.get('completed', '?')} of {e3.get('clips', '?')} clips completed "
        f"(target: all), {e3.get('errored', '?')} errored, {e3.get('mean_attempts') or 0:.2f} tries per clip on "
        "average (target < 2).",
        f"- At 1e-2: {e2.get('completed', '?')} of {e2.get('clips', '?')} clips completed (target: 95 %), "
        f"{e2.get('errored', '?')} errored.",
        "- What changed with protocol 4: a resent CLASSIFY is answered from the replay cache without the "
        "features, and the host now reads them with FEATURES from the tensor the device still holds, instead "
        "of streaming the clip again; on a line that damages chunks, host.parity asks CLASSIFY without "
        "features, reads them in parts and writes INFER's tensor in TENSOR parts, all as small as its AUDIO "
        "chunks, which halve down to 32 samples (also between the tries of one clip). Before (protocol 3), a "
        "1,334-byte CLASSIFY answer and a 1,290-byte INFER request had to arrive whole: 0 of 20 clips "
        "completed at 1e-2.",
        "",
        "Commands:",
        "",
        *commands,
    ]
    return "\n".join(md), results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.faults", description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "fsdd"))
    ap.add_argument("--only", nargs="*", default=None, help="condition names (default: all)")
    ap.add_argument("--reuse", action="store_true",
                    help="do not run anything: summarize the reports in out/bench/faults-*.json again and write "
                         "benchmarks/results/faults.{md,json} (then `python -m benchmarks.run --only` rebuilds "
                         "BENCHMARKS.md)")
    args = ap.parse_args(argv)
    conds = [c for c in CONDITIONS if args.only is None or c[0] in args.only or c[0].endswith("-clean")]
    md, res = bench_faults(["--data-dir", args.data_dir], conds, reuse=args.reuse)
    if args.reuse:
        out = ROOT / "benchmarks" / "results"
        old = (out / "faults.md").read_text() if (out / "faults.md").exists() else ""
        footer = old.rstrip().splitlines()[-1] if old.rstrip().endswith(")_") else ""
        (out / "faults.md").write_text(md + (f"\n\n{footer}\n" if footer else "\n"))
        (out / "faults.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    print(md)
    print(json.dumps({k: {kk: v.get(kk) for kk in ("completed", "errored", "wrong")} for k, v in res.items()}),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
