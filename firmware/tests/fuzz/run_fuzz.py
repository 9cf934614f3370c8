"""Runs the protocol fuzzer and summarizes the run (stdlib only).

    run_fuzz.py run --binary B --seconds N --corpus DIR --seeds DIR --dict F
                    --artifacts DIR --timeout S --rss-limit-mb M --max-len L
                    --summary build/fuzz/summary.json [--extra "-seed=1 ..."]
    run_fuzz.py regress --binary B [--binary B2] --regressions DIR --work DIR

`run` fuzzes for N seconds (libFuzzer -max_total_time), echoes libFuzzer's
log, writes it next to the summary (fuzz.log) and writes a JSON summary:
executions, exec/s, coverage (cov/ft) after loading the corpus and at the
end, corpus size, new inputs, peak RSS, slowest input and every finding
(crash, sanitizer report, oracle failure, timeout, leak, OOM; the input is
in --artifacts). Exit status 1 on any finding.

`regress` turns every regressions/*.hex (hex digits; `#` starts a comment)
into a binary input and runs each binary once over all of them (libFuzzer
runs files given as arguments once each). Exit status 1 if any input fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

ENV = {
    # abort_on_error: a sanitizer report ends the run like a crash; libFuzzer
    # then writes the input to the artifact folder.
    "ASAN_OPTIONS": "abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:abort_on_error=1",
}

FINDING_PATTERNS = {
    "sanitizer": re.compile(r"==\d+==ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)|runtime error:"),
    "oracle": re.compile(r"ORACLE FAILURE"),
    "timeout": re.compile(r"ALARM: working on the last Unit|ERROR: libFuzzer: timeout"),
    "oom": re.compile(r"ERROR: libFuzzer: out-of-memory"),
    "crash": re.compile(r"ERROR: libFuzzer: (deadly signal|fuzz target exited)"),
}


def _int(m: re.Match | None, group: int = 1) -> int | None:
    return int(m.group(group)) if m else None


def parse_log(log: str) -> dict:
    """Numbers from a libFuzzer log (-print_final_stats=1)."""
    res: dict = {}
    res["seed"] = _int(re.search(r"INFO: Seed: (\d+)", log))
    m = re.search(r"#(\d+)\s+INITED(?: exec/s: \d+)? cov: (\d+) ft: (\d+) corp: (\d+)/(\S+)", log)
    res["cov_initial"], res["ft_initial"], res["corpus_initial"] = (
        (int(m.group(2)), int(m.group(3)), int(m.group(4))) if m else (None, None, None))
    # the last status line (DONE, or the last pulse/NEW before a crash)
    status = re.findall(r"#(\d+)\s+(?:NEW|REDUCE|pulse|DONE|RELOAD)\s+cov: (\d+) ft: (\d+) corp: (\d+)/(\S+)", log)
    if status:
        last = status[-1]
        res["cov_final"], res["ft_final"], res["corpus_final"] = int(last[1]), int(last[2]), int(last[3])
        res["corpus_size"] = last[4]
    else:
        res["cov_final"], res["ft_final"] = res["cov_initial"], res["ft_initial"]
        res["corpus_final"] = res["corpus_initial"]
        res["corpus_size"] = m.group(5) if m else None
    res["execs"] = _int(re.search(r"stat::number_of_executed_units:\s+(\d+)", log))
    res["exec_per_sec"] = _int(re.search(r"stat::average_exec_per_sec:\s+(\d+)", log))
    res["new_units"] = _int(re.search(r"stat::new_units_added:\s+(\d+)", log))
    res["slowest_unit_s"] = _int(re.search(r"stat::slowest_unit_time_sec:\s+(\d+)", log))
    res["peak_rss_mb"] = _int(re.search(r"stat::peak_rss_mb:\s+(\d+)", log))
    done = re.search(r"Done (\d+) runs in (\d+) second", log)
    if res["execs"] is None and done:
        res["execs"] = int(done.group(1))
    res["done"] = done is not None
    return res


def findings(log: str) -> dict[str, int]:
    return {k: len(p.findall(log)) for k, p in FINDING_PATTERNS.items() if p.search(log)}


def cmd_run(a: argparse.Namespace) -> int:
    for d in (a.corpus, a.artifacts):
        Path(d).mkdir(parents=True, exist_ok=True)
    summary_path = Path(a.summary)
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    log_path = summary_path.with_name(("fuzz" if summary_path.stem == "summary" else summary_path.stem) + ".log")
    before = set(os.listdir(a.artifacts))
    cmd = [a.binary, a.corpus, *([a.seeds] if a.seeds else []),
           f"-max_total_time={a.seconds}", f"-timeout={a.timeout}", f"-rss_limit_mb={a.rss_limit_mb}",
           f"-max_len={a.max_len}", f"-artifact_prefix={a.artifacts.rstrip('/')}/",
           "-print_final_stats=1", "-detect_leaks=1", "-reload=0",
           *([f"-dict={a.dict}"] if a.dict else []), *shlex.split(a.extra or "")]
    print("$", " ".join(shlex.quote(c) for c in cmd), file=sys.stderr, flush=True)
    t0 = time.monotonic()
    lines: list[str] = []
    env = {**os.environ, **ENV}
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                          start_new_session=True) as proc, open(log_path, "w") as log_file:
        deadline = t0 + a.seconds + max(120, a.seconds // 2)
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace")
            lines.append(line)
            log_file.write(line)
            if not a.quiet or not line.startswith("#"):
                sys.stderr.write(line)
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                lines.append("run_fuzz.py: ERROR: libFuzzer: timeout (wall clock exceeded)\n")
                break
        rc = proc.wait()
    wall = time.monotonic() - t0
    log = "".join(lines)
    res = parse_log(log)
    found = findings(log)
    new_artifacts = sorted(set(os.listdir(a.artifacts)) - before)
    summary = {
        "command": cmd,
        "binary": a.binary,
        "seconds_requested": a.seconds,
        "wall_seconds": round(wall, 1),
        **res,
        "returncode": rc,
        "findings": found,
        "artifacts": [str(Path(a.artifacts) / f) for f in new_artifacts],
        "log": str(log_path),
    }
    summary["ok"] = rc == 0 and not found and not new_artifacts and res["done"]
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"run_fuzz.py: {'OK' if summary['ok'] else 'FAILED'}: {res['execs']} execs, {res['exec_per_sec']} exec/s, "
          f"cov {res['cov_initial']} -> {res['cov_final']}, ft {res['ft_initial']} -> {res['ft_final']}, "
          f"corpus {res['corpus_final']} ({res['corpus_size']}), findings {found or 'none'}"
          f"{', artifacts ' + ' '.join(summary['artifacts']) if new_artifacts else ''}; summary {summary_path}",
          file=sys.stderr)
    return 0 if summary["ok"] else 1


def hex_to_bytes(text: str) -> bytes:
    digits = "".join(line.split("#", 1)[0] for line in text.splitlines())
    return bytes.fromhex("".join(digits.split()))


def cmd_regress(a: argparse.Namespace) -> int:
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    inputs = []
    for f in sorted(Path(a.regressions).glob("*.hex")):
        out = work / (f.stem + ".bin")
        out.write_bytes(hex_to_bytes(f.read_text()))
        inputs.append(str(out))
    if not inputs:
        print(f"run_fuzz.py: no *.hex in {a.regressions}", file=sys.stderr)
        return 1
    status = 0
    for binary in a.binary:
        cmd = [binary, *inputs]
        r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **ENV}, timeout=600)
        ran = len(re.findall(r"^Executed .* in \d+ ms", r.stderr, re.M))
        found = findings(r.stderr)
        ok = r.returncode == 0 and ran == len(inputs) and not found
        print(f"run_fuzz.py: {binary}: {ran}/{len(inputs)} regression inputs, "
              f"{'OK' if ok else 'FAILED'} {found or ''}", file=sys.stderr)
        if not ok:
            sys.stderr.write(r.stderr[-6000:])
            status = 1
    return status


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="run_fuzz.py", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("run")
    r.add_argument("--binary", required=True)
    r.add_argument("--seconds", type=int, default=60)
    r.add_argument("--corpus", required=True)
    r.add_argument("--seeds")
    r.add_argument("--dict")
    r.add_argument("--artifacts", required=True)
    r.add_argument("--timeout", type=int, default=10)
    r.add_argument("--rss-limit-mb", type=int, default=2048)
    r.add_argument("--max-len", type=int, default=16384)
    r.add_argument("--summary", required=True)
    r.add_argument("--extra", default="")
    r.add_argument("--quiet", action="store_true", help="do not echo libFuzzer's status lines")
    g = sub.add_parser("regress")
    g.add_argument("--binary", action="append", required=True)
    g.add_argument("--regressions", required=True)
    g.add_argument("--work", required=True)
    a = p.parse_args(argv)
    return cmd_run(a) if a.mode == "run" else cmd_regress(a)


if __name__ == "__main__":
    sys.exit(main())
