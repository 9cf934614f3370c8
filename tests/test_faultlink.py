"""host/faultlink.py and the host's recovery: the real posix firmware behind the real proxy on real ptys.

Unit tests check the injector's statistics with a seeded RNG. The parity runs
stream a few FSDD test clips through the proxy and compare every accepted
result with a fault-free run of the same firmware: a fault may cost retries
or end in an error row, never in a different result.

"Byte error rate R" means R per byte and direction in all, split evenly over
the four kinds (drop, flip, dup, insert: R/4 each).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import ROOT, real_fsdd
from host import faultlink as F
from host import parity
from host import protocol as p
from host.device import Device

RELEASED = ROOT / "models" / "released"
GENERATED_GRAPH = ROOT / "firmware" / "generated" / "sd_model_graph.h"
_MISSING = [str(f.relative_to(ROOT)) for f in (GENERATED_GRAPH, RELEASED / "model_int8.tflite") if not f.exists()]
real_firmware = pytest.mark.skipif(
    bool(_MISSING) or real_fsdd() is None,
    reason=f"needs the generated model and FSDD ({', '.join(_MISSING) or 'FSDD not found'} missing)")

CLIPS = "6"  # clips per parity run (spread over the test split)
#: Recovery settings for the noisy runs: resends per request, tries per clip, response timeout (posix answers in ms).
RECOVERY = ("--retries", "8", "--clip-attempts", "30", "--timeout", "0.5")


# ---- the injector, alone -------------------------------------------------------------------


def _rates(**kw: float) -> F.Rates:
    return F.Rates(**kw)


def test_rate_zero_is_transparent() -> None:
    inj = F.Injector(_rates(), seed=1, direction="h2d", delay_max=0.1)
    data = bytes(np.random.default_rng(0).integers(0, 256, 100_000, dtype=np.uint8))
    out = b"".join(b for i in range(0, len(data), 999) for _, b in inj.apply(data[i:i + 999]))
    assert out == data
    assert inj.counts["bytes_in"] == inj.counts["bytes_out"] == len(data)
    assert all(inj.counts[k] == 0 for k in F.KINDS) and inj.counts["delayed_frames"] == 0


def test_fault_counts_match_the_rates_and_the_seed() -> None:
    rates = _rates(drop=0.01, flip=0.02, dup=0.005, insert=0.01)
    n = 400_000
    data = bytes(np.random.default_rng(1).integers(1, 256, n, dtype=np.uint8))

    def run(seed: int, step: int) -> tuple[bytes, dict[str, Any]]:
        inj = F.Injector(rates, seed=seed, direction="d2h", delay_max=0.0)
        out = b"".join(b for i in range(0, n, step) for _, b in inj.apply(data[i:i + step]))
        return out, inj.counts

    out, c = run(7, 4096)
    for kind in F.KINDS:
        expected = getattr(rates, kind) * n
        assert abs(c[kind] - expected) < 5 * np.sqrt(expected), (kind, c[kind], expected)
    assert len(out) == n - c["drop"] + c["dup"] + c["insert"] == c["bytes_out"]
    # Reproducible, and independent of how the stream is cut into reads.
    assert run(7, 37) == (out, c)
    assert run(8, 4096)[0] != out
    # Per direction: the same seed gives the other direction other faults.
    inj = F.Injector(rates, seed=7, direction="h2d", delay_max=0.0)
    assert b"".join(b for _, b in inj.apply(data)) != out


def test_flip_changes_one_bit_per_fault() -> None:
    inj = F.Injector(_rates(flip=0.01), seed=3, direction="h2d", delay_max=0.0)
    data = bytes(range(256)) * 400
    out = b"".join(b for _, b in inj.apply(data))
    a, b = np.frombuffer(data, np.uint8), np.frombuffer(out, np.uint8)
    diff = np.flatnonzero(a != b)
    assert len(out) == len(data) and len(diff) == inj.counts["flip"] > 0
    assert all(bin(int(x)).count("1") == 1 for x in (a[diff] ^ b[diff]))


def test_delay_holds_whole_frames() -> None:
    inj = F.Injector(_rates(delay=1.0), seed=5, direction="d2h", delay_max=0.2)
    frames = [p.encode_frame(p.Frame(0x81, i, bytes([i]) * 30), leading_delimiter=True) for i in range(1, 40)]
    pieces = inj.apply(b"".join(frames))
    assert inj.counts["frames"] == inj.counts["delayed_frames"] == 39
    assert b"".join(b for _, b in pieces) == b"".join(frames)  # no byte faults: only held
    assert all(0.0 <= h <= 0.2 for h, _ in pieces) and 0 < inj.counts["delay_seconds"] < 39 * 0.2
    # Each held piece starts at a frame start (after its leading delimiter).
    assert all(piece[0] != 0 for h, piece in pieces[1:])


def test_spec_parsing() -> None:
    s = F.FaultSpec.parse("rate=1e-3, d2h.flip=0.01, delay=0.02, delay_max=0.3, seed=9, resets=2, reset_clips=5/3")
    assert s.h2d == F.Rates(2.5e-4, 2.5e-4, 2.5e-4, 2.5e-4, 0.02)
    assert s.d2h == F.Rates(2.5e-4, 0.01, 2.5e-4, 2.5e-4, 0.02)
    assert (s.delay_max, s.seed, s.resets, s.reset_clips) == (0.3, 9, 2, (3, 5)) and s.restarts_board
    assert F.FaultSpec.parse("") == F.FaultSpec() and not F.FaultSpec().restarts_board
    for bad in ("flip", "flip=2", "up.flip=0.1", "h2d.seed=1", "speed=3", "resets=-1", "reset_clips=0", "rate=x"):
        with pytest.raises(F.FaultSpecError):
            F.FaultSpec.parse(bad)
    with pytest.raises(F.FaultSpecError, match="emulated board"):
        F.FaultLink(F.FaultSpec.parse("resets=1"), url="/dev/null")
    link = F.FaultLink(F.FaultSpec.parse("resets=3"), board="posix", expected_clips=300)
    assert link._reset_plan == {75, 150, 225}
    link.set_expected_clips(None)
    assert link._reset_plan == {1, 2, 3}


# ---- the real proxy in front of the real firmware ------------------------------------------------


@real_firmware
def test_proxy_is_transparent_and_counts(tmp_path) -> None:
    """Rate 0: every byte passes unchanged (1,000 random PINGs); then a noisy link with counted faults."""
    rng = np.random.default_rng(4)
    with F.FaultLink(F.FaultSpec(), board="posix") as link:
        with Device(link.host_port, timeout=2.0) as dev:
            assert dev.info().board == "posix"
            for _ in range(1000):
                blob = bytes(rng.integers(0, 256, int(rng.integers(0, p.MAX_PAYLOAD + 1)), dtype=np.uint8))
                assert dev.ping(blob) == blob
            assert dev.stats == {"damaged": 0, "stale": 0, "resent": 0, "timeouts": 0}
        st = link.stats()
    assert st["byte_faults"] == 0 and st["requests"] == {"INFO": 1, "PING": 1000}
    for d in st["directions"].values():
        assert d["bytes_in"] == d["bytes_out"] > 1000 * 10
    # 1e-2 of every byte damaged both ways: the host resends until each PING comes back intact.
    with F.FaultLink(F.FaultSpec.parse("rate=1e-2,delay=0.05,delay_max=0.02,seed=2"), board="posix", build=False) as link:
        with Device(link.host_port, timeout=0.3, retries=20) as dev:
            for i in range(100):
                blob = bytes([i]) * 20
                assert dev.ping(blob) == blob
            assert dev.stats["resent"] > 0
        st = link.stats()
    n = sum(d["bytes_in"] for d in st["directions"].values())
    assert 0.5e-2 * n < st["byte_faults"] < 2e-2 * n and st["delayed_frames"] > 0
    assert all(st["directions"][d][k] > 0 for d in F.DIRECTIONS for k in F.KINDS)


def _run(capsys, tmp_path: Path, name: str, *args: str) -> tuple[int, dict, dict]:
    report = tmp_path / f"{name}.json"
    status = parity.main(["--no-progress", "--port", "emulator:posix", "--data-dir", str(real_fsdd()),
                          "--model", str(RELEASED), "--split", "test", "--limit", CLIPS,
                          "--report", str(report), *args])
    out, err = capsys.readouterr()
    print(err, file=sys.stderr)  # shown on failure
    return status, json.loads(out.strip().splitlines()[-1]), json.loads(report.read_text())


def _results(row: dict) -> dict[str, tuple]:
    """What the device computed for a clip, per mode that has a result (an error row may have one)."""
    out = {}
    if row.get("end_to_end"):
        m = row["end_to_end"]
        out["end_to_end"] = (m["device_label"], m["device_output"], m["device_features_sha256"], m["n_samples"])
    if row.get("model_only"):
        out["model_only"] = (row["model_only"]["device_label"], row["model_only"]["device_output"])
    return out


def _wrong(rep: dict, baseline: dict) -> list[str]:
    """Accepted results (per clip and mode, error rows included) that differ from the fault-free run."""
    base = {r["file"]: _results(r) for r in baseline["rows"]}
    return [f"{row['file']}:{mode}" for row in rep["rows"] for mode, res in _results(row).items()
            if base[row["file"]][mode] != res]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> dict:
    """The fault-free run through the proxy (rate 0)."""
    tmp = tmp_path_factory.mktemp("baseline")
    report = tmp / "base.json"
    status = parity.main(["--no-progress", "--port", "emulator:posix", "--data-dir", str(real_fsdd()),
                          "--model", str(RELEASED), "--split", "test", "--limit", CLIPS, "--faults", "seed=0",
                          "--report", str(report)])
    rep = json.loads(report.read_text())
    assert status == 0 and rep["checked"] == int(CLIPS) and rep["faults"]["byte_faults"] == 0
    assert all(r["attempts"] == 1 and r["resent"] == 0 for r in rep["rows"])
    assert all(r["end_to_end"]["device_features_sha256"] for r in rep["rows"])
    return rep


@real_firmware
def test_byte_errors_1e3_every_clip_completes_exactly(capsys, tmp_path, baseline) -> None:
    status, summary, rep = _run(capsys, tmp_path, "noisy", "--faults", "rate=1e-3,delay=0.01,delay_max=0.05,seed=11",
                                *RECOVERY)
    f = rep["faults"]
    assert f["byte_faults"] > 20 and all(f["directions"][d][k] > 0 for d in F.DIRECTIONS for k in F.KINDS)
    assert status == 0, rep["failures"]
    assert rep["checked"] == int(CLIPS) and rep["errors"] == 0
    assert _wrong(rep, baseline) == []
    assert rep["recovery"]["clips_retried"] > 0 and rep["device_stats"]["resent"] > 0


@real_firmware
def test_device_restart_mid_clip_is_retried(capsys, tmp_path, baseline) -> None:
    status, summary, rep = _run(capsys, tmp_path, "restarts", "--faults", "reset_clips=2/5", *RECOVERY)
    restarts = rep["faults"]["restarts"]
    assert [(r["clip"], r["restarted"]) for r in restarts] == [(2, True), (5, True)]
    assert status == 0, rep["failures"]
    assert rep["checked"] == int(CLIPS) and rep["errors"] == 0 and _wrong(rep, baseline) == []
    attempts = [r["attempts"] for r in rep["rows"]]
    assert attempts == [1, 2, 1, 1, 2, 1], attempts  # the two clips the board lost were started again
    assert rep["device_stats"]["recoveries"] == 2


@real_firmware
def test_byte_errors_1e2_complete_in_small_parts(capsys, tmp_path, baseline) -> None:
    """1e-2 with 32-sample chunks: CLASSIFY comes without the features, which are read in 64-byte
    FEATURES parts, and INFER's tensor goes in 64-byte TENSOR parts, so every frame that must arrive
    whole is at most ~90 bytes and every clip completes (protocol 4), each result exactly the
    fault-free run's."""
    status, summary, rep = _run(capsys, tmp_path, "parts", "--faults", "rate=1e-2,seed=7", "--chunk-samples", "32",
                                "--retries", "30", "--clip-attempts", "3", "--timeout", "0.3")
    assert status == 0, rep["failures"]
    assert rep["checked"] == int(CLIPS) and rep["errors"] == 0 and _wrong(rep, baseline) == []
    assert rep["faults"]["byte_faults"] > 100 and rep["device_stats"]["resent"] > 20
    n = int(CLIPS) * 20  # 1,280 bytes in 64-byte parts per clip
    assert rep["faults"]["requests"].get("FEATURES", 0) >= n and rep["faults"]["requests"].get("TENSOR", 0) >= n


@real_firmware
def test_hopeless_line_terminates_with_error_rows(capsys, tmp_path, baseline) -> None:
    """1e-2 with full-size chunks and a few resends only: 1,050-byte AUDIO requests are almost never
    intact. The run still ends in bounded time, every clip a row, no result wrong."""
    t0 = time.monotonic()
    status, summary, rep = _run(capsys, tmp_path, "hopeless", "--faults", "rate=1e-2,seed=5",
                                "--retries", "2", "--clip-attempts", "3", "--timeout", "0.3")
    wall = time.monotonic() - t0
    # Bound: clips x modes x attempts x (retries + 1) x (timeout + settle), plus a RESET per attempt.
    assert wall < int(CLIPS) * 2 * 3 * (3 * 0.35 + 3 * 0.35) + 30, wall
    assert not rep["aborted"] and not rep["interrupted"] and status in (parity.EXIT_FAILED, parity.EXIT_USAGE)
    assert rep["clips"] == int(CLIPS) and _wrong(rep, baseline) == []
    errors = [r["error"] for r in rep["rows"] if r["error"]]
    assert errors and all(e["stage"] != "skipped" and e["attempts"] >= 1 for e in errors)
    assert rep["faults"]["byte_faults"] > 100


@real_firmware
def test_device_that_dies_mid_run_leaves_a_partial_report(capsys, tmp_path, baseline) -> None:
    """die=3: the board is killed in clip 3 and not restarted; the proxy's port stays, the device is silent."""
    status, summary, rep = _run(capsys, tmp_path, "dies", "--faults", "die=3", "--timeout", "0.5")
    assert status == parity.EXIT_USAGE and "device lost" in rep["aborted"]
    assert rep["checked"] == 2 and rep["clips"] == int(CLIPS) and _wrong(rep, baseline) == []
    assert rep["rows"][2]["error"]["stage"] == "device lost"
    assert all(r["error"]["stage"] == "skipped" for r in rep["rows"][3:])
    assert rep["faults"]["restarts"][0]["restarted"] is False and rep["faults"]["device_dead"]


@real_firmware
def test_killed_device_pty_vanishes(capsys, tmp_path, monkeypatch, baseline) -> None:
    """No proxy: the posix program is killed mid-run, its pty disappears under pyserial."""
    from host.emulator import start_emulator

    monkeypatch.setattr(parity, "REOPEN_SECONDS", 1.0)
    emu = start_emulator("posix", build=False)
    real = parity.ParityRun._run_clip
    calls = {"n": 0}

    def run_clip(self, clip):
        calls["n"] += 1
        if calls["n"] == 3:
            emu._proc.kill()
            emu._proc.wait(5)
        return real(self, clip)

    monkeypatch.setattr(parity.ParityRun, "_run_clip", run_clip)
    report = tmp_path / "killed.json"
    try:
        t0 = time.monotonic()
        status = parity.main(["--no-progress", "--port", emu.port, "--data-dir", str(real_fsdd()),
                              "--model", str(RELEASED), "--limit", CLIPS, "--timeout", "0.5", "--report", str(report)])
        wall = time.monotonic() - t0
    finally:
        emu.stop()
    out, err = capsys.readouterr()
    summary, rep = json.loads(out), json.loads(report.read_text())
    assert status == parity.EXIT_USAGE and "device lost" in summary["aborted"], err
    assert "Traceback" not in err and wall < 60
    assert rep["checked"] == 2 and _wrong(rep, baseline) == []
    assert rep["rows"][2]["error"]["stage"] == "device lost"


def _faultlink_children(marker: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if marker in (d / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


@real_firmware
def test_sigint_through_the_proxy_leaves_a_partial_report_and_no_board(tmp_path) -> None:
    report = tmp_path / "sigint.json"
    board = str(tmp_path / "sd-faultlink-")  # the proxy runs the board from a copy in $TMPDIR/sd-faultlink-*/
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TMPDIR=str(tmp_path))  # the proxy's copy of the firmware lives here: find leftovers by path
    proc = subprocess.Popen(
        [sys.executable, "-m", "host.parity", "--port", "emulator:posix", "--data-dir", str(real_fsdd()),
         "--model", str(RELEASED), "--limit", "30", "--report", str(report),
         "--faults", "rate=1e-3,seed=1", *RECOVERY],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # SIGINT once the progress bar shows 3 clips done: some clips went through the faulty link, and the run
    # (30 clips) is far from its end. A wait timed on the fault-free run could outlast this whole run.
    err_chunks: list[str] = []
    reader = threading.Thread(target=lambda: err_chunks.extend(iter(lambda: proc.stderr.read(64), "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            done = [int(n) for n in re.findall(r"parity emulator:posix:[^|\r\n]*\|[^|\r\n]*\| *(\d+)/30 ",
                                               "".join(err_chunks))]
            if done and max(done) >= 3:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "".join(err_chunks)
        proc.send_signal(signal.SIGINT)
        out = proc.stdout.read()
        proc.wait(timeout=60)
        reader.join(timeout=10)
        err = "".join(err_chunks)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == parity.EXIT_INTERRUPTED, err
    summary, rep = json.loads(out), json.loads(report.read_text())
    assert summary["interrupted"] and rep["interrupted"] and rep["clips"] == 30 and rep["checked"] < 30
    assert rep["faults"]["byte_faults"] > 0
    assert _faultlink_children(board) == []  # the board was stopped


@real_firmware
def test_cli(tmp_path) -> None:
    r = subprocess.run([sys.executable, "-m", "host.faultlink", "--help"], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "reset_every" in r.stdout and "SERIAL" in r.stdout
    stats = tmp_path / "stats.json"
    proc = subprocess.Popen([sys.executable, "-m", "host.faultlink", "--port", "emulator:posix",
                             "--faults", "h2d.rate=0", "--duration", "5", "--stats", str(stats)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("SERIAL "), proc.stderr.read() if proc.stderr else ""
        with Device(line.split()[1], timeout=2.0) as dev:
            assert dev.ping(b"through the proxy") == b"through the proxy"
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert json.loads(out)["requests"] == {"PING": 1} == json.loads(stats.read_text())["requests"]


# ---- STREAM (host.listen) through the fault-injecting link ------------------------------------


@pytest.fixture(scope="module")
def listen_wav(tmp_path_factory) -> Path:
    """A 4-digit stream of FSDD test-split clips at 20 dB SNR (train/streamgen.py)."""
    from conftest import write_wav
    from train import data as D
    from train import streamgen as G

    ds = D.load_dataset(real_fsdd())
    _, test = D.split_indices(ds, "official")
    clips = [ds.clips[i] for i in test[::37]]
    st = G.make_stream(clips, np.random.default_rng(3), n_digits=4, snr_db=20.0)
    return write_wav(tmp_path_factory.mktemp("listen_faults") / "stream.wav", st.samples)


def _listen(capsys, tmp_path: Path, wav: Path, *args: str) -> dict:
    from host import listen

    report = tmp_path / "listen.json"
    status = listen.main(["--no-progress", "--port", "emulator:posix", "--model", str(RELEASED), "--wav", str(wav),
                          "--check", "--report", str(report), *args])
    out, err = capsys.readouterr()
    print(err, file=sys.stderr)  # shown on failure
    rep = json.loads(report.read_text())
    assert rep["exit_status"] == status
    return rep


@real_firmware
@pytest.mark.parametrize("spec", ["rate=1e-3,delay=0.01,delay_max=0.05,seed=4", "reset_clips=1/2,seed=1"])
def test_stream_through_faults_gives_the_reference_events(capsys, tmp_path, listen_wav, spec) -> None:
    """Byte errors (resent chunks answered from the device's kept state, never applied twice) and board
    restarts mid-stream (the stream is sent again from sample 0): the events are still exactly the
    reference's, none lost or doubled."""
    rep = _listen(capsys, tmp_path, listen_wav, "--faults", spec, "--retries", "8", "--attempts", "5",
                  "--timeout", "0.5")
    assert rep["exit_status"] == 0 and rep["identical"] is True, rep["failures"]
    assert rep["events"] == rep["reference_events"] and len(rep["events"]) >= 3
    if spec.startswith("rate"):
        assert rep["faults"]["byte_faults"] > 10 and rep["device_stats"]["resent"] > 0
    else:
        # the board restarts in the first stream and in its second attempt: the third gets through
        assert [r["restarted"] for r in rep["faults"]["restarts"]] == [True, True] and rep["attempts"] == 3



@real_firmware
def test_stream_mulaw_through_byte_errors(capsys, tmp_path, listen_wav) -> None:
    """mu-law chunks through a damaged line: the device's events equal the reference's on the
    decoded samples."""
    rep = _listen(capsys, tmp_path, listen_wav, "--mulaw", "--faults", "rate=1e-3,seed=6", "--retries", "8",
                  "--attempts", "5", "--timeout", "0.5")
    assert rep["exit_status"] == 0 and rep["identical"] is True, rep["failures"]
    assert rep["encoding"] == "mulaw" and rep["faults"]["byte_faults"] > 5
