"""Numbers, tables and plots for a parity run (host/parity.py).

Everything here works on plain arrays and on the report dictionary that
``python -m host.parity --report FILE.json`` writes, so a saved report can be
rendered again later::

    python -m host.report parity.json --plots parity-plots/

Metrics on dequantized outputs are the ones ST's validate-on-target prints:

- ``rmse``: root of the mean squared difference.
- ``l2r``: relative L2 error, ``||device - reference|| / ||reference||``.
- ``cosine``: cosine similarity of the two output vectors.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from pathlib import Path
from statistics import median
from typing import Any, Iterable, Sequence

import numpy as np

#: Stages of a device's cost counter, in protocol order (docs/protocol.md, CLASSIFY).
COST_STAGES = ("frontend", "lstm", "head")


# ---- metrics -------------------------------------------------------------------


def output_metrics(device: np.ndarray, reference: np.ndarray) -> dict[str, float | None]:
    """rmse, l2r and cosine of two float vectors (any shape, flattened).

    ``l2r`` is None when the reference is all zeros and the device is not
    (the ratio is undefined); 0.0 when both are zero. ``cosine`` is 1.0 when
    both vectors are zero, 0.0 when only one is.
    """
    d = np.asarray(device, np.float64).reshape(-1)
    r = np.asarray(reference, np.float64).reshape(-1)
    if d.shape != r.shape:
        raise ValueError(f"device output has {d.size} values, reference {r.size}")
    if d.size == 0:
        return {"rmse": None, "l2r": None, "cosine": None}
    diff = d - r
    err, nr, nd = float(np.linalg.norm(diff)), float(np.linalg.norm(r)), float(np.linalg.norm(d))
    rmse = float(np.sqrt(np.mean(diff * diff)))
    if nr > 0:
        l2r: float | None = err / nr
    else:
        l2r = 0.0 if err == 0 else None
    if nr > 0 and nd > 0:
        cosine = float(np.clip(np.dot(d, r) / (nd * nr), -1.0, 1.0))
    else:
        cosine = 1.0 if nr == nd == 0 else 0.0
    return {"rmse": rmse, "l2r": l2r, "cosine": cosine}


def feature_stats(device: np.ndarray, reference: np.ndarray) -> tuple[dict[str, Any], np.ndarray]:
    """Compare two int8 input tensors of the same size.

    Returns ``({"feature_identical_fraction", "feature_max_lsb",
    "feature_mismatches"}, diff)`` where ``diff`` is device minus reference
    as int16, in the reference's shape.
    """
    r = np.asarray(reference)
    d = np.asarray(device).reshape(r.shape)
    diff = d.astype(np.int16) - r.astype(np.int16)
    mism = int(np.count_nonzero(diff))
    stats = {
        "feature_identical_fraction": 1.0 - mism / diff.size if diff.size else 1.0,
        "feature_max_lsb": int(np.max(np.abs(diff))) if diff.size else 0,
        "feature_mismatches": mism,
    }
    return stats, diff


class FeatureDiffs:
    """Running totals of device-minus-reference feature differences over clips.

    Attributes:
        histogram: Counter {difference in LSB: count of elements}, zeros included.
        mismatch_map: int64 [shape=(n_frames, n_mels)], clips where that element differed.
        clips: clips added.
    """

    def __init__(self, shape: tuple[int, int]) -> None:
        self.histogram: Counter[int] = Counter()
        self.mismatch_map = np.zeros(shape, np.int64)
        self.clips = 0

    def add(self, diff: np.ndarray) -> None:
        values, counts = np.unique(diff, return_counts=True)
        for v, c in zip(values.tolist(), counts.tolist()):
            self.histogram[int(v)] += int(c)
        self.mismatch_map += (diff.reshape(self.mismatch_map.shape) != 0)
        self.clips += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "clips": self.clips,
            "histogram": {str(k): v for k, v in sorted(self.histogram.items())},
            "mismatch_map": self.mismatch_map.tolist(),
        }


def _fraction(hits: int, n: int) -> float | None:
    return hits / n if n else None


def medians(costs: Iterable[dict[str, int]], stages: Sequence[str]) -> dict[str, float | None]:
    """Median per stage, plus the median of the per-clip total."""
    rows = [c for c in costs if c]
    out: dict[str, float | None] = {}
    for s in stages:
        vals = [c[s] for c in rows if c.get(s) is not None]
        out[s] = float(median(vals)) if vals else None
    totals = [sum(c[s] for s in stages) for c in rows if all(c.get(s) is not None for s in stages)]
    out["total"] = float(median(totals)) if totals else None
    return out


def spread(values: Sequence[float]) -> dict[str, float] | None:
    """``{"median", "p90", "max"}`` of values (p90: numpy's linear interpolation), None when empty."""
    vals = np.asarray([v for v in values if v is not None], np.float64)
    if vals.size == 0:
        return None
    return {"median": float(np.median(vals)), "p90": float(np.percentile(vals, 90)), "max": float(vals.max())}


def latency_summary(rows: list[dict[str, Any]], unit: str | None) -> dict[str, Any]:
    """Latency per stage over the clips with a result: median, p90 and max.

    Per mode: the device's cost counter per stage (``frontend``, ``lstm``,
    ``head``; model-only has no front end) and their per-clip ``total``, in
    ``unit`` (the board's cost unit: ns, instructions, cycles), and the
    host's wall time for the mode's exchange (``wall_seconds``: upload,
    compute, answer, resends and restarts; not the host's comparison).
    ``clip_wall_seconds``: the host's wall time per clip, both modes and the
    comparisons included.
    """
    out: dict[str, Any] = {"unit": unit, "wall_unit": "s"}
    for key, stages in (("end_to_end", COST_STAGES), ("model_only", COST_STAGES[1:])):
        done = [r[key] for r in rows if r.get(key)]
        if not done:
            out[key] = None
            continue
        s: dict[str, Any] = {"clips": len(done)}
        for st in stages:
            s[st] = spread([m["cost"].get(st) for m in done])
        s["total"] = spread([sum(m["cost"][st] for st in stages) for m in done
                             if all(m["cost"].get(st) is not None for st in stages)])
        s["wall_seconds"] = spread([m.get("wall_seconds") for m in done])
        out[key] = s
    out["clip_wall_seconds"] = spread([r.get("wall_seconds") for r in rows if r.get("end_to_end") or r.get("model_only")])
    return out


def threshold_checks(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each global threshold of a report as ``{name, value, limit, passed, message}``.

    ``message`` says what was measured against what was required (the text
    host.parity lists under ``failures`` when ``passed`` is false).
    """
    th = report.get("thresholds") or {}
    e2e, mo = report.get("end_to_end"), report.get("model_only")
    out: list[dict[str, Any]] = []

    def add(name: str, value: Any, limit: Any, passed: bool, text: str) -> None:
        out.append({"name": name, "value": value, "limit": limit, "passed": bool(passed), "message": text})

    if e2e:
        v, t = e2e["top1_agreement"], th.get("min_top1_agreement")
        add("end_to_end.top1_agreement", v, t, v >= t, f"end-to-end top-1 agreement {v:.4f} {'<' if v < t else '>='} {t}")
        v, t = e2e["feature_identical_fraction"], th.get("min_feature_identical")
        ok = v is not None and v >= t
        add("end_to_end.feature_identical_fraction", v, t, ok,
            f"feature identical fraction {_num(v, '{:.5f}')} {'>=' if ok else '<'} {t}")
        v, t = e2e["feature_max_lsb"], th.get("max_feature_lsb")
        add("end_to_end.feature_max_lsb", v, t, v <= t, f"feature max difference {v} LSB {'>' if v > t else '<='} {t}")
    if mo:
        v, t = mo["output_exact_fraction"], th.get("min_exact")
        add("model_only.output_exact_fraction", v, t, v >= t, f"model-only exact outputs {v:.4f} {'<' if v < t else '>='} {t}")
        v, t = mo["top1_agreement"], th.get("min_top1_agreement")
        add("model_only.top1_agreement", v, t, v >= t, f"model-only top-1 agreement {v:.4f} {'<' if v < t else '>='} {t}")
    return out


def dequantize(values: Any, scale: float, zero_point: int) -> np.ndarray:
    """int8 values -> float64, ``(q - zero_point) * scale``."""
    return (np.asarray(values, np.float64) - zero_point) * scale


def mode_summary(rows: list[dict[str, Any]], key: str, output_scale: float, output_zero_point: int) -> dict[str, Any] | None:
    """Overall numbers of one mode ("end_to_end" or "model_only") from per-clip rows.

    rmse, l2r and cosine are over all clips' dequantized outputs at once.
    None when no row has a result for that mode.
    """
    done = [r[key] for r in rows if r.get(key)]
    if not done:
        return None
    labeled = [(r["label"], r[key]) for r in rows if r.get(key) and r.get("label") is not None]
    dev_out = dequantize([m["device_output"] for m in done], output_scale, output_zero_point)
    ref_out = dequantize([m["reference_output"] for m in done], output_scale, output_zero_point)
    s: dict[str, Any] = {
        "clips": len(done),
        "top1_agreement": _fraction(sum(m["top1_agree"] for m in done), len(done)),
        "output_exact_fraction": _fraction(sum(m["output_exact"] for m in done), len(done)),
        "output_max_lsb": max(m["output_max_lsb"] for m in done),
        "labeled_clips": len(labeled),
        "device_accuracy": _fraction(sum(m["device_label"] == lab for lab, m in labeled), len(labeled)),
        "reference_accuracy": _fraction(sum(m["reference_label"] == lab for lab, m in labeled), len(labeled)),
        **output_metrics(dev_out, ref_out),
    }
    if key == "end_to_end":
        n_elem = sum(m["feature_elements"] for m in done)
        s["feature_identical_fraction"] = 1.0 - sum(m["feature_mismatches"] for m in done) / n_elem if n_elem else None
        s["feature_max_lsb"] = max(m["feature_max_lsb"] for m in done)
        s["clips_with_identical_features"] = _fraction(sum(m["feature_mismatches"] == 0 for m in done), len(done))
        exact_dev = [m["model_exact_on_device_features"] for m in done if m.get("model_exact_on_device_features") is not None]
        s["model_exact_on_device_features_fraction"] = _fraction(sum(exact_dev), len(exact_dev))
        s["cost"] = medians((m["cost"] for m in done), COST_STAGES)
    else:
        s["cost"] = medians((m["cost"] for m in done), COST_STAGES[1:])
    return s


# ---- text ------------------------------------------------------------------------


def _num(v: Any, fmt: str = "{:.4f}") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return fmt.format(v)
    return str(v)


def _cost(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}"


def format_latency(report: dict[str, Any]) -> list[str]:
    """The latency table (median, p90, max per stage) of a report, as lines; [] when it has none."""
    lat = report.get("latency") or {}
    unit = lat.get("unit") or "?"
    body: list[tuple[str, dict[str, float] | None, bool]] = []
    for key, label in (("end_to_end", "end-to-end"), ("model_only", "model-only")):
        m = lat.get(key)
        if not m:
            continue
        for st in (*COST_STAGES, "total"):
            if st in m:
                body.append((f"{label} {st} ({unit})", m[st], False))
        body.append((f"{label} wall per clip (ms)", m.get("wall_seconds"), True))
    if lat.get("clip_wall_seconds") and lat.get("end_to_end") and lat.get("model_only"):
        body.append(("clip wall, both modes (ms)", lat["clip_wall_seconds"], True))
    if not body:
        return []
    w = max(len(b[0]) for b in body)
    out = [f"  latency{' ' * (w - 7)}  {'median':>14}  {'p90':>14}  {'max':>14}"]
    for name, sp, wall in body:
        if not sp:
            out.append(f"  {name:<{w}}  {'-':>14}  {'-':>14}  {'-':>14}")
            continue
        f = (lambda v: f"{v * 1e3:,.1f}") if wall else (lambda v: f"{v:,.0f}")
        out.append(f"  {name:<{w}}  {f(sp['median']):>14}  {f(sp['p90']):>14}  {f(sp['max']):>14}")
    return out


def format_summary(report: dict[str, Any]) -> str:
    """The human summary printed on stderr at the end of a run."""
    lines: list[str] = []
    dev = report.get("device") or {}
    checks = report.get("checks") or {}
    if dev:
        lines.append(
            f"device   {report.get('port')}: board {dev.get('board')}, firmware {dev.get('firmware_version')}, "
            f"protocol {dev.get('protocol_version')}"
        )
    for name in ("model_sha256", "frontend_sha256"):
        c = checks.get(name)
        if c:
            state = "match" if c["match"] else "DIFFER"
            lines.append(f"{name:<15}  device {c['device'][:16]}  reference {c['reference'][:16]}  {state}")
    err = report.get("error_kinds") or {}
    lines.append(
        f"clips    {report.get('clips', 0)} in the report, {report.get('checked', 0)} checked, "
        f"{report.get('errors', 0)} with errors"
        + (f" ({', '.join(f'{k} {v}' for k, v in sorted(err.items()) if v)})" if report.get("errors") else "")
        + f"; wall {_num(report.get('wall_seconds'), '{:.1f}')} s"
        + (f", device {_num(report.get('seconds_per_clip'), '{:.3f}')} s/clip" if report.get("seconds_per_clip") else "")
    )
    th = report.get("thresholds") or {}
    e2e = report.get("end_to_end")
    mo = report.get("model_only")
    rows: list[tuple[str, str, str]] = []
    if e2e:
        rows += [
            ("end-to-end top-1 agreement", _num(e2e["top1_agreement"]), f">= {th.get('min_top1_agreement')}"),
            ("feature identical fraction", _num(e2e["feature_identical_fraction"], "{:.5f}"), f">= {th.get('min_feature_identical')}"),
            ("feature max |difference| LSB", _num(e2e["feature_max_lsb"]), f"<= {th.get('max_feature_lsb')}"),
            ("end-to-end output exact", _num(e2e["output_exact_fraction"]), ""),
            ("model exact on device features", _num(e2e.get("model_exact_on_device_features_fraction")), ""),
            ("end-to-end rmse / l2r / cosine",
             f"{_num(e2e['rmse'], '{:.2e}')} / {_num(e2e['l2r'], '{:.2e}')} / {_num(e2e['cosine'], '{:.6f}')}", ""),
        ]
    if mo:
        rows += [
            ("model-only output exact", _num(mo["output_exact_fraction"]), f">= {th.get('min_exact')}"),
            ("model-only top-1 agreement", _num(mo["top1_agreement"]), f">= {th.get('min_top1_agreement')}"),
            ("model-only max |difference| LSB", _num(mo["output_max_lsb"]), ""),
        ]
    if report.get("device_accuracy") is not None:
        rows.append(("device accuracy", _num(report["device_accuracy"]), f"reference {_num(report.get('reference_accuracy'))}"))
    if rows:
        w = max(len(r[0]) for r in rows)
        lines.append("")
        lines += [f"  {a:<{w}}  {b:>22}  {c}".rstrip() for a, b, c in rows]
    cost = report.get("cost") or {}
    unit = cost.get("unit") or "?"
    for key, label in (("end_to_end", "end-to-end"), ("model_only", "model-only")):
        c = cost.get(key)
        if c:
            parts = "  ".join(f"{s} {_cost(c.get(s))}" for s in COST_STAGES if s in c)
            lines.append(f"  cost, median {label} ({unit}): {parts}  total {_cost(c.get('total'))}")
    lines += format_latency(report)
    wire = report.get("wire") or {}
    for key, label in (("end_to_end", "end-to-end"), ("model_only", "model-only")):
        w = wire.get(key)
        if w and w.get("clips"):
            lines.append(
                f"  wire per clip, {label}: sent {w['sent_per_clip']:,.0f} B (payload {w['payload_sent_per_clip']:,.0f}), "
                f"received {w['received_per_clip']:,.0f} B (payload {w['payload_received_per_clip']:,.0f}); "
                f"framing overhead {_num(w.get('overhead'), '{:.1%}')}"
            )
    link = report.get("link")
    if link:
        bad = link.get("frames_bad") or {}
        window = f"window {link['rx_window']:,} B" if link.get("rx_window") else "no window (flow-controlled)"

        def n(v: Any) -> str:
            return "?" if v is None else f"{v:,}"

        lines.append(
            f"  link, device side: received {n(link.get('rx_bytes'))} B, dropped {n(link.get('rx_dropped'))} B "
            f"({window}, peak {n(link.get('rx_high_water'))} B waiting); damaged requests: "
            f"crc {n(bad.get('bad_crc'))}, frame {n(bad.get('bad_frame'))}, too large {n(bad.get('too_large'))}"
            + ("" if link.get("complete") else " (partial: " + "; ".join(link.get("notes") or []) + ")")
        )
    ds = report.get("device_stats") or {}
    rec = report.get("recovery") or {}
    if ds:
        lines.append(
            f"  link, host side: requests resent {ds.get('resent', 0):,}, damaged responses {ds.get('damaged', 0):,}, "
            f"timeouts {ds.get('timeouts', 0):,}; clips retried {rec.get('clips_retried', 0)}, "
            f"restarted {rec.get('clips_restarted', 0)}"
        )
    lines.append("")
    if report.get("interrupted"):
        lines.append("INTERRUPTED: partial report")
    if report.get("aborted"):
        lines.append(f"ABORTED: {report['aborted']}")
    if report.get("parity"):
        lines.append("PARITY HOLDS")
    elif report.get("interrupted") or report.get("aborted") or not report.get("checked"):
        lines.append("PARITY NOT SHOWN (partial run)" if report.get("checked") else "PARITY NOT SHOWN")
        for f in report.get("failures") or []:
            lines.append(f"  - {f}")
    else:
        lines.append("PARITY FAILS")
        for f in report.get("failures") or []:
            lines.append(f"  - {f}")
    return "\n".join(lines)


# ---- plots ---------------------------------------------------------------------------


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _lsb_histogram(ax: Any, counts: dict[int, int], xlabel: str, ylabel: str, title: str) -> None:
    """Bar per integer difference, log counts, zero in green; x spans at least -1..1."""
    from matplotlib.ticker import MaxNLocator

    keys = sorted(counts)
    ax.bar(keys, [counts[k] for k in keys], width=0.8, color=["tab:green" if k == 0 else "tab:red" for k in keys])
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.5)
    ax.set_xlim(min(keys + [-1]) - 0.6, max(keys + [1]) + 0.6)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    total = sum(counts.values())
    ax.set_title(f"{title}: {total - counts.get(0, 0)} of {total} elements differ", fontsize=10)
    ax.grid(alpha=0.3)


def confusion(true: Sequence[int], pred: Sequence[int], n: int = 10) -> np.ndarray:
    cm = np.zeros((n, n), np.int64)
    for t, q in zip(true, pred):
        if 0 <= t < n and 0 <= q < n:
            cm[t, q] += 1
    return cm


def write_plots(report: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """PNG files from a report into ``out_dir`` (created); returns their paths.

    - ``confusion_device.png``: true label vs the device's top-1 (labeled clips).
    - ``confusion_device_vs_reference.png``: reference top-1 vs device top-1
      (off the diagonal = disagreement; every clip with a result).
    - ``feature_differences.png``: histogram of device-minus-reference LSB over
      every input element, and per (time step, mel band) the clips where that
      element differed (end-to-end only).
    - ``output_differences.png``: histogram of device-minus-reference output LSB.
    - ``latency.png``: one histogram per stage (front end, LSTM, head, total in
      the board's cost unit; wall time per clip in ms), both modes overlaid.
    """
    from train.plots import plot_confusion

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    rows = [r for r in report.get("rows", []) if r.get("device_label") is not None]
    names = report.get("labels") or [str(d) for d in range(10)]  # reports from before labels.json: FSDD digits
    n = len(names)

    labeled = [r for r in rows if r.get("label") is not None]
    if labeled:
        path = out / "confusion_device.png"
        acc = report.get("device_accuracy")
        plot_confusion(
            confusion([r["label"] for r in labeled], [r["device_label"] for r in labeled], n), path,
            title=f"device, {len(labeled)} clips, accuracy {_num(acc)}", labels=names,
        )
        written.append(path)
    if rows:
        path = out / "confusion_device_vs_reference.png"
        cm = confusion([r["reference_label"] for r in rows], [r["device_label"] for r in rows], n)
        plot_confusion(cm, path, title=f"top-1: reference (rows) vs device, {int(np.trace(cm))}/{len(rows)} agree",
                       labels=names)
        written.append(path)

    fd = report.get("feature_differences")
    if fd and fd.get("clips"):
        plt = _plt()
        hist = {int(k): v for k, v in fd["histogram"].items()}
        mmap = np.asarray(fd["mismatch_map"])
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [1, 2]})
        _lsb_histogram(a1, hist, "device - reference input (LSB)", "input elements", f"{fd['clips']} clips")
        im = a2.imshow(mmap.T, origin="lower", aspect="auto", cmap="Reds", interpolation="nearest")
        a2.set_xlabel("time step")
        a2.set_ylabel("mel band")
        a2.set_title("clips in which the element differs", fontsize=10)
        from matplotlib.ticker import MaxNLocator

        fig.colorbar(im, ax=a2, fraction=0.046, ticks=MaxNLocator(integer=True))
        fig.tight_layout()
        path = out / "feature_differences.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    diffs: dict[str, Counter[int]] = {}
    for key, label in (("end_to_end", "end-to-end"), ("model_only", "model-only")):
        c: Counter[int] = Counter()
        for r in report.get("rows", []):
            m = r.get(key)
            if m:
                c.update(int(a) - int(b) for a, b in zip(m["device_output"], m["reference_output"]))
        if c:
            diffs[label] = c
    if diffs:
        plt = _plt()
        fig, axes = plt.subplots(1, len(diffs), figsize=(5.5 * len(diffs), 3.6), squeeze=False)
        for ax, (label, c) in zip(axes[0], diffs.items()):
            _lsb_histogram(ax, dict(c), "device - reference output (LSB)", "output elements", label)
        fig.tight_layout()
        path = out / "output_differences.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    path = _latency_plot(report, out / "latency.png")
    if path:
        written.append(path)
    return written


def _latency_plot(report: dict[str, Any], path: Path) -> Path | None:
    unit = (report.get("latency") or {}).get("unit") or (report.get("cost") or {}).get("unit") or "?"
    panels = [(st, f"{st} ({unit})", 1.0) for st in (*COST_STAGES, "total")] + [("wall_seconds", "wall per clip (ms)", 1e3)]
    data: dict[str, dict[str, list[float]]] = {}
    for key, label in (("end_to_end", "end-to-end"), ("model_only", "model-only")):
        done = [r[key] for r in report.get("rows", []) if r.get(key)]
        if not done:
            continue
        stages = COST_STAGES if key == "end_to_end" else COST_STAGES[1:]
        for m in done:
            cost = m.get("cost") or {}
            vals = {st: cost.get(st) for st in stages}
            if all(v is not None for v in vals.values()):
                vals["total"] = sum(vals.values())
            vals["wall_seconds"] = m.get("wall_seconds")
            for st, v in vals.items():
                if v is not None:
                    data.setdefault(st, {}).setdefault(label, []).append(float(v))
    panels = [p for p in panels if p[0] in data]
    if not panels:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.4), squeeze=False)
    colors = {"end-to-end": "tab:blue", "model-only": "tab:orange"}
    for ax, (st, title, scale) in zip(axes[0], panels):
        every = np.concatenate([np.asarray(v, np.float64) * scale for v in data[st].values()])
        bins = np.histogram_bin_edges(every, bins=min(30, max(5, len(every) // 3)))  # shared: comparable bars
        for label, vals in data[st].items():
            v = np.asarray(vals) * scale
            ax.hist(v, bins=bins, alpha=0.6, color=colors[label], label=f"{label} (n={len(v)})")
            ax.axvline(float(np.median(v)), color=colors[label], lw=1.0, ls="--")
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("clips")
        ax.grid(alpha=0.3)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 5))
    axes[0][-1].legend(fontsize=8)  # the wall panel has every mode that ran
    fig.suptitle("latency per stage (dashed: median)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---- CLI -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m host.report",
                                 description="Print the summary of a saved parity report and (re)draw its plots.")
    ap.add_argument("report", help="JSON written by `python -m host.parity --report`")
    ap.add_argument("--plots", metavar="DIR", help="write PNG plots here")
    args = ap.parse_args(argv)
    try:
        report = json.loads(Path(args.report).read_text())
    except (OSError, ValueError) as exc:
        print(f"error: {args.report}: {exc}", file=sys.stderr)
        return 2
    print(format_summary(report), file=sys.stderr)
    if args.plots:
        for path in write_plots(report, args.plots):
            print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
