"""The protocol fuzzer (firmware/tests/fuzz): regressions, the oracle's teeth, a short run.

The harness (fuzz_protocol.c) runs the firmware's main loop, frame decoder and
request handler with the real front end and model, under ASan + UBSan, and
checks every response against its own model of docs/protocol.md. Here:
- every saved crash input (firmware/tests/fuzz/regressions/*.hex) replays
  cleanly through both harness builds (real components and stubs);
- a deliberately broken handler (the CLASSIFY replay cache ignoring seq) is
  caught by the oracle on the seed corpus: the checks can fail;
- `make -C firmware fuzz` for about a minute: no crash, hang, leak, sanitizer
  report or oracle failure, a substantial number of executions, coverage
  growing beyond the seeds and reaching the request handlers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FW = ROOT / "firmware"
FUZZ = FW / "build" / "fuzz"
SECONDS = int(os.environ.get("SD_FUZZ_SECONDS", "60"))

pytestmark = pytest.mark.skipif(shutil.which("clang") is None, reason="clang is not installed (make deps)")


def make(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    r = subprocess.run(["make", "-s", "-C", str(FW), *args], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"make {' '.join(args)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}"
    return r


@pytest.fixture(scope="module")
def harness() -> dict[str, Path]:
    make("fuzz-build", "fuzz-seeds")
    return {"real": FUZZ / "fuzz_protocol", "stubs": FUZZ / "fuzz_protocol_stubs", "seeds": FUZZ / "seeds"}


def test_regressions_speak_the_current_protocol_version():
    """A version bump must move the hand-written cases along (bump_version.py), or they only test BAD_VERSION."""
    import sys

    r = subprocess.run([sys.executable, str(FW / "tests" / "fuzz" / "bump_version.py"), "--check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_regressions_replay_clean(harness):
    regs = sorted((FW / "tests" / "fuzz" / "regressions").glob("*.hex"))
    assert regs, "no regression inputs"
    r = make("fuzz-regress")
    for name in ("fuzz_protocol", "fuzz_protocol_stubs"):
        assert re.search(rf"{name}: {len(regs)}/{len(regs)} regression inputs, OK", r.stderr), r.stderr[-3000:]


def test_seeds_pass_the_oracle(harness):
    seeds = sorted(harness["seeds"].glob("*.bin"))
    assert len(seeds) >= 20
    for variant in ("real", "stubs"):
        r = subprocess.run([str(harness[variant]), *map(str, seeds)], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-4000:]
        assert len(re.findall(r"^Executed ", r.stderr, re.M)) == len(seeds)


def test_oracle_catches_a_broken_replay_cache(harness, tmp_path):
    """Mutant: CLASSIFY answered from the replay cache whatever its seq. The seed
    `retries` sends a new CLASSIFY (new seq) after the replayed one: the spec
    says NO_CLIP, the mutant replays, and the harness must abort."""
    src = (FW / "src" / "sd_protocol.c").read_text()
    good = "p->replay_valid && p->replay_seq == seq &&"
    assert good in src
    (tmp_path / "sd_protocol.c").write_text(src.replace(good, "p->replay_valid &&"))
    shutil.copy(FW / "src" / "sd_le.h", tmp_path / "sd_le.h")
    objs = [str(o) for o in (FUZZ / "obj-stubs").rglob("*.o") if o.name != "sd_protocol.o"]
    flags = ["-std=c99", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    inc = [f"-I{FW / 'tests' / 'protocol'}", f"-I{FW / 'include'}", f"-I{FW / 'src'}"]
    subprocess.run(["clang", *flags, "-fsanitize=fuzzer-no-link", *inc, "-c", str(tmp_path / "sd_protocol.c"),
                    "-o", str(tmp_path / "sd_protocol.o")], check=True, timeout=120)
    mutant = tmp_path / "mutant"
    subprocess.run(["clang", "-fsanitize=fuzzer", *flags, *objs, str(tmp_path / "sd_protocol.o"), "-lm", "-o",
                    str(mutant)], check=True, timeout=120)
    r = subprocess.run([str(mutant), str(harness["seeds"] / "retries.bin")], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0
    assert "ORACLE FAILURE" in r.stderr and "expected 0xff (error 8)" in r.stderr, r.stderr[-2000:]
    # ... while the real handler passes the same input
    ok = subprocess.run([str(harness["stubs"]), str(harness["seeds"] / "retries.bin")], capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr[-2000:]


def test_short_fuzz_run(harness, tmp_path):
    summary = tmp_path / "summary.json"
    r = subprocess.run(["make", "-s", "-C", str(FW), "fuzz", f"FUZZ_SECONDS={SECONDS}",
                        f"FUZZ_CORPUS={tmp_path / 'corpus'}", f"FUZZ_SUMMARY={summary}",
                        "FUZZ_ARGS=-print_coverage=1"],
                       capture_output=True, text=True, timeout=SECONDS + 600)
    assert summary.is_file(), r.stderr[-4000:]
    s = json.loads(summary.read_text())
    assert r.returncode == 0 and s["ok"], f"fuzzer findings {s['findings']} {s['artifacts']}:\n{r.stderr[-6000:]}"
    assert s["findings"] == {} and s["artifacts"] == []
    # a substantial number of inputs (about 400/s on 2 shared cores; the floor leaves room for load)
    assert s["execs"] >= 40 * SECONDS, s
    # new coverage beyond what the seed corpus reached
    assert s["ft_final"] > s["ft_initial"] and s["cov_final"] >= s["cov_initial"], s
    assert s["corpus_final"] > s["corpus_initial"], s
    # the request handlers and the decoder were reached (libFuzzer -print_coverage)
    covered = set(re.findall(r"COVERED_FUNC: hits: \d+ edges: \d+/\d+ (\w+)", Path(s["log"]).read_text()))
    # (the sd_on_* handlers are inlined into sd_proto_handle at -O2; these are their callees)
    for fn in ("sd_app_main", "sd_frame_feed", "sd_frame_write", "sd_proto_feed", "sd_proto_handle",
               "sd_reply_error", "sd_push_samples", "sd_argmax", "sd_put_costs_scores",
               "sd_frontend_push", "sd_frontend_end", "sd_frontend_tensor", "sd_model_invoke"):
        assert fn in covered, f"{fn} not covered; covered: {sorted(covered)}"
