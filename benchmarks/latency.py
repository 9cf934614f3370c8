"""Benchmark: how long after a spoken digit ends `host.listen` prints it.

Streams of test-split digits (train/streamgen.py: clean, and over pink noise
at 20 and 10 dB) are captured at real time by host/standin_mic.py's stand-in
microphone and streamed by ``python -m host.listen --mic --port
emulator:posix --check`` to the firmware built for the host. For each
recalled digit the latency from the end of its speech (its last 32 ms frame
within 30 dB of its loudest: train/streamgen.py's speech_end) to its printed
event is the sum of

- the detector's part, exact: the last sample of the window that decided
  the event minus the end of speech (the reference decides on the same
  samples as the board: ``--check``),
- the capture's part, exact: the rest of the 32 ms block that holds that
  sample (the host gets audio a block at a time), and
- the host's part, measured: from that block's arrival to the event's line
  (host.listen's ``event_latency_seconds``: the wait for a full chunk, the
  link, the board's front end and model).

The host's part depends on the machine and its load; quoted as medians.

Run alone: ``python -m benchmarks.latency [--streams 3]``;
``python -m benchmarks.run --only latency`` writes benchmarks/results/latency.{md,json}.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CONDITIONS = (None, 20.0, 10.0)  # clean, pink noise at 20 and 10 dB


def _condition(snr: float | None) -> str:
    return "clean" if snr is None else f"{snr:.0f} dB pink"


def live_stream(samples: np.ndarray, workdir: Path, board: str = "emulator:posix") -> dict:
    """``samples`` captured at real time by the stand-in microphone through host.listen --mic --check; its report."""
    from host import listen
    from host.standin_mic import StandinSounddevice

    report = workdir / "listen.json"
    saved = sys.modules.get("sounddevice")
    sys.modules["sounddevice"] = StandinSounddevice(samples, speed=1.0)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = listen.main(["--no-progress", "--model", str(ROOT / "models" / "released"), "--port", board,
                                  "--mic", "--duration", repr(len(samples) / 8000), "--check",
                                  "--report", str(report)])
    finally:
        if saved is None:
            sys.modules.pop("sounddevice", None)
        else:
            sys.modules["sounddevice"] = saved
    if status != 0 or not report.exists():
        raise RuntimeError(f"host.listen --mic on {board} failed (exit {status}): {err.getvalue()[-800:]}")
    return json.loads(report.read_text())


def bench_latency(data_args: list[str], *, streams: int = 3, seed: int = 2027) -> tuple[str, dict]:
    from benchmarks.stream import ms_summary
    from train import data as D
    from train import streamgen as G

    ds = D.load_dataset(data_args[1] if data_args else D.resolve_data_dir(None))
    _, test = D.split_indices(ds, "official")
    clips = [ds.clips[i] for i in test]
    rng = np.random.default_rng(seed)
    detector, capture, host, total, rows = [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(streams):
            snr = CONDITIONS[k % len(CONDITIONS)]
            st = G.make_stream(clips, rng, snr_db=snr, noise="pink")
            rep = live_stream(st.samples, Path(tmp))
            evs, lat = rep["events"], rep["input"]["event_latency_seconds"] or []
            bs = int(rep["input"].get("blocksize") or 256)
            if len(lat) != len(evs):
                raise RuntimeError(f"stream {k}: {len(evs)} events but {len(lat)} latencies in host.listen's report")
            sc = G.score(evs, st.truth)
            for i, j in sc["recalled_by"]:  # each recalled utterance's first right event, as score() matched it
                e = evs[j]
                block_end = -(-(e["end"] + 1) // bs) * bs  # samples captured when its block arrives
                det_s = (e["end"] - st.truth[i].spoken_end) / G.SR
                cap_s = (block_end - e["end"] - 1) / G.SR
                detector.append(det_s)
                capture.append(cap_s)
                host.append(float(lat[j]))
                total.append(det_s + cap_s + float(lat[j]))
            rows.append({"snr_db": snr, "seconds": len(st.samples) / G.SR, "identical": rep["identical"],
                         "recalled": sc["recalled"], "utterances": sc["utterances"], "events": len(evs),
                         "backlog_max_seconds": rep["input"].get("backlog_max_seconds")})
    res = {"streams": rows, "digits": len(total), "total": ms_summary(total) if total else None,
           "detector": ms_summary(detector) if detector else None,
           "capture": ms_summary(capture) if capture else None, "host": ms_summary(host) if host else None,
           "within_300_ms": sum(t <= 0.3 for t in total)}
    md = ["## Latency (host.listen on posix, live pace)", "",
          "Command: `python -m benchmarks.latency` (benchmarks/latency.py): streams of 10 test-split digits "
          "(clean, pink noise at 20 and 10 dB) captured at real time by the stand-in microphone "
          "(host/standin_mic.py) and sent by `python -m host.listen --mic --port emulator:posix --check`. From the "
          "end of a recalled digit's speech (its last 32 ms frame within 30 dB of its loudest) to its printed event:",
          "", "| part | digits | median | 90th percentile | max |", "|---|---|---|---|---|"]
    for name, key in (("detector: the deciding window's last sample after the end of speech (exact)", "detector"),
                      ("capture: the rest of that sample's 32 ms block (exact)", "capture"),
                      ("host: the block's arrival to the printed line (chunk wait, link, board)", "host"),
                      ("**total**", "total")):
        v = res[key]
        if v:
            md.append(f"| {name} | {v['digits']} | {v['median_ms']:.0f} ms | {v['p90_ms']:.0f} ms | {v['max_ms']:.0f} ms |")
    md += ["", f"{res['within_300_ms']} of {len(total)} recalled digits printed within 300 ms of the end of their "
               "speech. Streams: " + "; ".join(
                   f"{_condition(r['snr_db'])}: {r['recalled']}/{r['utterances']} recalled, events identical to the "
                   f"reference: {'yes' if r['identical'] else 'NO'}" for r in rows) + "."]
    return "\n".join(md), res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.latency", description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "fsdd"))
    p.add_argument("--streams", type=int, default=3, help="streams of 10 digits, at real time (default 3)")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    md, res = bench_latency(["--data-dir", args.data_dir], streams=args.streams)
    print(md)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
