"""Prove that a device computes what the Python reference computes.

    python -m host.parity --port /dev/ttyACM0
    python -m host.parity --port emulator:mps2-an386 --limit 50 --report parity.json --plots parity/

Streams audio (FSDD's official test split by default) to the firmware over
its serial protocol (docs/protocol.md) and compares every clip with
``convert.reference.Reference`` (librosa front end + TFLite Micro
interpreter), in two modes (DESIGN.md, "Parity, defined"):

end-to-end (AUDIO + CLASSIFY)
    The device's front end and model on the clip's samples. Its int8 input
    tensor is compared with ``Reference.features(samples)`` (share of
    identical elements, largest difference in LSB); its int8 output with
    ``Reference.infer(reference features)``: top-1 agreement, exact equality,
    rmse / l2r / cosine of the dequantized outputs. As a diagnostic, the
    device's output is also compared with ``Reference.infer(device
    features)``, which separates front-end from model differences.
model-only (INFER)
    The device's model on the reference's int8 input tensor. Its output must
    equal ``Reference.infer`` of the same tensor, element for element.

Before the first clip, INFO must report the reference model's SHA-256,
protocol version 3 and (except in model-only mode) the front-end config's
SHA-256 and sample rate; otherwise the run is refused, showing both sides.

Every clip ends up in the report, as a result or an error row: a WAV that
cannot be read, a device ERROR or timeout on one clip (after bounded resends,
a RESET and a bounded number of restarts of the clip, --clip-attempts) do not
stop the run. A device that vanishes or stops answering ends it with a partial
report.

With ``--faults SPEC`` the run goes through host/faultlink.py, a proxy that
damages bytes, delays frames and restarts an emulated board mid-run
(docs/protocol.md, "Faults and recovery")::

    python -m host.parity --port emulator:posix --faults rate=1e-3,delay=0.01,resets=2 \
        --timeout 1 --retries 8 --clip-attempts 20

Exit status: 0 parity holds (every threshold met, every readable clip has a
device result); 1 a threshold failed or a clip has no device result; 2 usage
or connection error, a refused device, or a device lost mid-run (partial
report); 130 interrupted by Ctrl-C (partial report, ``"interrupted": true``).

Stdout carries only the result (one JSON object); progress, messages, the
summary table and the latency per stage (median, p90, max) go to stderr.
``--junit FILE.xml`` writes a JUnit file for CI (host/junit.py, docs/hil.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import sys
import time
import traceback
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from host import protocol as p
from host import report as R
from host.device import DeviceResult
from host.session import (  # noqa: F401  (re-exported: tests and tools use host.parity's names)
    DEFAULT_CLIP_ATTEMPTS,
    DEFAULT_MODEL_DIR,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    EMULATOR_PREFIX,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    LINK_ERRORS,
    QEMU_TIMEOUT,
    REOPEN_SECONDS,
    RESTART_ERRORS,
    ClipFailed,
    DeviceLost,
    DeviceSession,
    MeteredDevice,
    UsageError,
    WireMeter,
    check_writable,
    emulator_board,
    load_reference,
    nonneg_int,
    open_link,
    positive_float,
    positive_int,
)

ROOT = Path(__file__).resolve().parent.parent
_check_writable = check_writable

MODES = ("end-to-end", "model-only", "both")
SPLITS = ("test", "train", "all")
#: AUDIO chunk size bounds (samples) when the host adapts it to the line: it halves the chunk when
#: chunks needed more than CHUNK_SHRINK_RESENDS resends per request over a clip, and doubles it
#: (up to the device's maximum) below CHUNK_GROW_RESENDS.
MIN_CHUNK_SAMPLES = 32
CHUNK_SHRINK_RESENDS = 1.0
CHUNK_GROW_RESENDS = 0.1
#: Clips in a row whose exchange timed out (after resends and restarts, with no damaged frame
#: seen: a silent device, not a noisy line) before the run is abandoned.
CONSECUTIVE_TIMEOUT_LIMIT = 3
REPORT_SCHEMA = 1

# ---- inputs --------------------------------------------------------------------


@dataclass
class Clip:
    """One file to check; ``row`` is its line in the report."""

    index: int
    path: Path
    label: int | None
    samples: np.ndarray | None = None
    ref_features: np.ndarray | None = None  # int8 [shape=(n_frames, n_mels)]
    ref_output: np.ndarray | None = None  # int8 [shape=(n_classes,)]
    row: dict[str, Any] = field(default_factory=dict)


def select_files(data_dir: Path, split: str, limit: int | None, labels: Sequence[str] | None = None) -> list[tuple[Path, int | None]]:
    """(WAV file, label index or None) of ``data_dir`` in ``split``.

    An FSDD folder (or its recordings/): names ``{digit}_{speaker}_{index}.wav``
    belong to "test" when index is 0-4 (the official split), else to "train";
    other names have no label and no split and are always included. A folder
    per label (``DIR/<label>/*.wav``, train/data.py): its own split (lists, or
    the speaker hash; "train" includes validation), labels numbered as in
    ``labels`` (the model's). With ``limit``, that many files spread evenly over
    the sorted list (so every label is represented).
    """
    from train.data import OFFICIAL_TEST_INDICES, LAYOUT_FOLDERS, DatasetError, detect_layout, list_data, recordings_dir
    from train.labels import FSDD_DIGITS

    folder = Path(data_dir)
    fsdd_folder = detect_layout(recordings_dir(folder)) != LAYOUT_FOLDERS
    try:  # an FSDD-style folder checked with a model of other labels: its files are unlabelled clips
        listing = list_data(folder, labels=None if fsdd_folder else labels, require_labels=False)
    except DatasetError as exc:
        raise UsageError(str(exc)) from exc
    # FSDD's files are labelled for a model whose outputs start with the ten digits (`--reject` adds `noise`
    # and `other` after them), unlabelled for one of other labels
    unlabelled = fsdd_folder and labels is not None and tuple(labels)[: len(FSDD_DIGITS)] != FSDD_DIGITS
    index = {n: i for i, n in enumerate(listing.names)}
    keep = []
    for e in listing.entries:
        if listing.layout == LAYOUT_FOLDERS:
            part = "test" if e.split == "test" else "train"
        else:
            part = None if e.index is None else ("test" if e.index in OFFICIAL_TEST_INDICES else "train")
        if split == "all" or part is None or part == split:
            keep.append((e.path, None if e.label is None or unlabelled else index[e.label]))
    if not keep:
        raise UsageError(f"{listing.folder}: none of {len(listing.entries)} WAV files is in split {split!r}; try --split all")
    if limit is not None and limit < len(keep):
        idx = np.unique(np.linspace(0, len(keep) - 1, limit).round().astype(int))
        keep = [keep[i] for i in idx]
    return keep


# ---- the run ---------------------------------------------------------------------


@dataclass
class Thresholds:
    min_top1_agreement: float = 1.0
    min_exact: float = 1.0
    max_feature_lsb: int = 1
    min_feature_identical: float = 0.999


class ParityRun(DeviceSession):
    """State of one run: the device session (host/session.py), clips and counters.

    ``say`` prints one message line on stderr (through tqdm when a bar is shown).
    """

    front_end_hint = " (run --mode model-only to check the model alone)"

    def __init__(self, args: argparse.Namespace, reference: Any, say: Callable[[str], None]) -> None:
        super().__init__(args, reference, say)
        self.modes = {"end-to-end", "model-only"} if args.mode == "both" else {args.mode}
        self.needs_front_end = "end-to-end" in self.modes
        exact = reference.cfg.is_integer  # front end v2: integer on both sides, features must be equal
        max_lsb = args.max_feature_lsb if args.max_feature_lsb is not None else (0 if exact else 1)
        min_same = args.min_feature_identical if args.min_feature_identical is not None else (1.0 if exact else 0.999)
        self.thresholds = Thresholds(args.min_top1_agreement, args.min_exact, max_lsb, min_same)
        self.clips: list[Clip] = []
        self.feature_diffs = R.FeatureDiffs((reference.cfg.n_frames, reference.cfg.n_mels))
        self.interrupted = False
        self.data_notes: list[str] = []
        self.t_start = time.monotonic()
        self.t_reference = 0.0
        self.t_device = 0.0

    # -- clips -----------------------------------------------------------------
    def add_files(self, files: Sequence[tuple[Path, int | None]]) -> None:
        """Clips to check: (file, label index into the model's labels, or None for an unlabelled file)."""
        for i, (path, label) in enumerate(files):
            row = {"file": path.name, "label": label, "reference_label": None, "device_label": None, "error": None}
            self.clips.append(Clip(i, path, label, row=row))

    def prepare(self, progress: bool) -> None:
        """Read every WAV and compute the reference's features and outputs (batch inference)."""
        from tqdm import tqdm

        from train.data import WavError, read_wav

        t0 = time.monotonic()
        sr = self.ref.cfg.sr
        ready: list[Clip] = []
        for clip in tqdm(self.clips, desc="reference", unit="clip", file=sys.stderr, disable=not progress, leave=False):
            try:
                first = len(self.data_notes)
                clip.samples = read_wav(clip.path, sr, notes=self.data_notes)
                for note in self.data_notes[first:]:
                    self.say(note)
            except WavError as exc:
                self._error(clip, "input", exc)
                continue
            try:
                clip.ref_features = self.ref.features(clip.samples)
            except Exception as exc:  # a clip the reference front end cannot take
                self._error(clip, "reference", exc)
                continue
            ready.append(clip)
        if ready:
            outputs = self.ref.infer(np.stack([c.ref_features for c in ready]))
            for clip, out in zip(ready, outputs):
                clip.ref_output = np.asarray(out, np.int8)
                clip.row["reference_label"] = int(np.argmax(out))
        self.t_reference = time.monotonic() - t0

    def _error(self, clip: Clip, stage: str, exc: BaseException, attempts: int | None = None) -> None:
        err = {"stage": stage, "type": type(exc).__name__, "message": str(exc)}
        if attempts is not None:
            err["attempts"] = attempts
        if self.args.verbose and stage not in ("skipped",):
            err["traceback"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        old = clip.row.get("error")
        if old:  # a second stage failed too: keep both
            old["stage"] += "+" + stage
            old["message"] += "; " + err["message"]
        else:
            clip.row["error"] = err
        if stage != "skipped":
            self.say(f"{clip.path.name}: {stage} error: {exc}")
            if self.args.verbose and "traceback" in err:
                self.say(err["traceback"].rstrip())

    # -- streaming -----------------------------------------------------------------------
    def stream(self, progress: bool) -> None:
        """Send every prepared clip through the device and compare; fills the rows."""
        from tqdm import tqdm

        todo = [c for c in self.clips if c.ref_output is not None]
        t0 = time.monotonic()
        agree = done = errors = 0
        timeouts_in_a_row = 0
        bar = tqdm(todo, desc=f"parity {self.args.port}", unit="clip", file=sys.stderr, disable=not progress)
        try:
            for clip in bar:
                damaged, resent = self._stat_total("damaged"), self._stat_total("resent")
                recoveries = self.recoveries
                audio = (self.meter.audio_requests, self.meter.audio_resent)
                clip.row["chunk_samples"] = self.chunk
                t_clip = time.monotonic()
                try:
                    timed_out = self._run_clip(clip)
                except DeviceLost as exc:
                    self._error(clip, "device lost", exc)
                    raise
                finally:
                    clip.row["wall_seconds"] = time.monotonic() - t_clip
                    clip.row["resent"] = self._stat_total("resent") - resent
                    clip.row["recoveries"] = self.recoveries - recoveries
                # A clip that timed out on a line that delivered damaged frames is a noisy line, not a
                # silent device: only silent timeouts count toward giving up on the device.
                silent = self._stat_total("damaged") == damaged
                timeouts_in_a_row = timeouts_in_a_row + 1 if timed_out and silent else 0
                self._adapt_chunk(self.meter.audio_requests - audio[0], self.meter.audio_resent - audio[1])
                if timeouts_in_a_row >= CONSECUTIVE_TIMEOUT_LIMIT:
                    raise DeviceLost(
                        f"{timeouts_in_a_row} clips in a row timed out: the device stopped answering, "
                        f"or needs more than --timeout {self.timeout:g} s"
                    )
                row = clip.row
                if row["error"]:
                    errors += 1
                if row["device_label"] is not None:
                    done += 1
                    agree += row["device_label"] == row["reference_label"]
                bar.set_postfix_str(f"top-1 agree {agree}/{done}, errors {errors}", refresh=False)
        finally:
            bar.close()
            self.t_device = time.monotonic() - t0
            self._collect_stats()

    def _adapt_chunk(self, requests: int, resent: int) -> None:
        """Smaller AUDIO chunks on a line that damages them, back to full size when it is clean.

        A chunk of n samples is a frame of 2n + 22 bytes: at a byte error rate of 1e-3 a 512-sample
        chunk is damaged 65 % of the time, a 128-sample one 25 %. Correctness does not depend on the
        size (every chunk carries its offset).
        """
        if self.args.chunk_samples or requests < 2:
            return
        ratio = resent / requests
        if ratio > CHUNK_SHRINK_RESENDS and self.chunk > MIN_CHUNK_SAMPLES:
            self.chunk = max(MIN_CHUNK_SAMPLES, self.chunk // 2)
        elif ratio < CHUNK_GROW_RESENDS and self.chunk < self.chunk_max:
            self.chunk = min(self.chunk_max, self.chunk * 2)

    def _before_retry(self) -> None:
        """A clip that failed for good at this chunk size is tried again with half the size: on a
        line bad enough to defeat every resend of a request, smaller frames are what gets through
        (the between-clips rule of _adapt_chunk alone would spend all of the clip's tries first)."""
        if not self.args.chunk_samples and self.chunk > MIN_CHUNK_SAMPLES:
            self.chunk = max(MIN_CHUNK_SAMPLES, self.chunk // 2)

    def _part_bytes(self) -> int | None:
        """Features and model inputs whole (None) while AUDIO chunks are full size; once they are
        smaller (a line that damages them, --chunk-samples, or a receive window too small for a
        1,299-byte INFER), in FEATURES / TENSOR parts as large as a chunk's samples, so no frame that
        must arrive intact is longer than the chunks that get through."""
        return None if self.chunk >= p.MAX_AUDIO_SAMPLES else 2 * self.chunk

    def _run_clip(self, clip: Clip) -> bool:
        """Both modes on one clip; returns True when the device timed out on it."""
        assert self.dev is not None
        row = clip.row
        timed_out = False
        clip_id = clip.index + 1
        if "end-to-end" in self.modes:
            before, t0 = self.meter.snapshot(), time.monotonic()
            try:
                res, attempts = self._attempt(lambda: self.dev.classify_clip(
                    clip_id, clip.samples, True, chunk_samples=self.chunk, part_bytes=self._part_bytes(),
                    timeout=self.timeout))
            except ClipFailed as exc:
                timed_out |= isinstance(exc.cause, p.Timeout)
                self._error(clip, "end-to-end", exc.cause, attempts=exc.attempts)
            else:
                wall = time.monotonic() - t0  # the exchange only, not the host's comparison
                row["end_to_end"] = self._compare_e2e(clip, res, attempts, self.meter.since(before))
                row["end_to_end"]["wall_seconds"] = wall
        if "model-only" in self.modes:
            before, t0 = self.meter.snapshot(), time.monotonic()
            try:
                res, attempts = self._attempt(lambda: self.dev.infer(clip.ref_features, part_bytes=self._part_bytes(),
                                                                     timeout=self.timeout))
            except ClipFailed as exc:
                timed_out |= isinstance(exc.cause, p.Timeout)
                self._error(clip, "model-only", exc.cause, attempts=exc.attempts)
            else:
                wall = time.monotonic() - t0
                row["model_only"] = self._compare_outputs(clip, res, attempts, self.meter.since(before),
                                                          stages=R.COST_STAGES[1:])
                row["model_only"]["wall_seconds"] = wall
        row["attempts"] = max([m["attempts"] for m in (row.get("end_to_end"), row.get("model_only")) if m]
                              + ([row["error"]["attempts"]] if row["error"] and "attempts" in row["error"] else [])
                              + [0])
        main = row.get("end_to_end") or row.get("model_only")
        if main:
            row["device_label"] = main["device_label"]
            mo = row.get("model_only")
            row["exact"] = (mo or main)["output_exact"]
            e2e = row.get("end_to_end") or {}
            row["feature_identical_fraction"] = e2e.get("feature_identical_fraction")
            row["feature_max_lsb"] = e2e.get("feature_max_lsb")
            for k in ("rmse", "l2r", "cosine", "cost"):
                row[k] = main[k]
        return timed_out

    def _compare_outputs(self, clip: Clip, res: DeviceResult, attempts: int, wire: dict[str, int],
                         stages: Sequence[str] = R.COST_STAGES) -> dict[str, Any]:
        dev_out = np.asarray(res.output, np.int8)
        ref_out = clip.ref_output
        assert ref_out is not None
        diff = dev_out.astype(np.int16) - ref_out.astype(np.int16)
        m: dict[str, Any] = {
            "device_label": int(res.label),
            "reference_label": int(np.argmax(ref_out)),
            "top1_agree": int(res.label) == int(np.argmax(ref_out)),
            "output_exact": bool(not diff.any()),
            "output_max_lsb": int(np.abs(diff).max()),
            "device_output": dev_out.tolist(),
            "reference_output": ref_out.tolist(),
            **R.output_metrics(self.ref.dequantize(dev_out), self.ref.dequantize(ref_out)),
            "cost": {k: int(res.cost[k]) for k in stages},
            "attempts": attempts,
            "wire": wire,
        }
        if int(res.label) != int(np.argmax(dev_out)):
            m["label_inconsistent"] = True  # the device's label is not the argmax of its own output
        return m

    def _compare_e2e(self, clip: Clip, res: DeviceResult, attempts: int, wire: dict[str, int]) -> dict[str, Any]:
        assert res.features is not None and clip.ref_features is not None
        m = self._compare_outputs(clip, res, attempts, wire)
        stats, diff = R.feature_stats(res.features, clip.ref_features)
        self.feature_diffs.add(diff)
        on_device_features = self.ref.infer(res.features.reshape(clip.ref_features.shape))
        m.update(stats)
        m["feature_elements"] = int(diff.size)
        m["model_exact_on_device_features"] = bool(np.array_equal(np.asarray(on_device_features, np.int8), res.output))
        m["n_samples"] = int(res.n_samples)
        m["device_features_sha256"] = hashlib.sha256(res.features.tobytes()).hexdigest()
        m["audio_bytes"] = 2 * int(len(clip.samples))
        return m

    # -- the report ---------------------------------------------------------------------
    def finish(self) -> dict[str, Any]:
        """Mark unfinished clips, summarize, apply thresholds; returns the report."""
        reason = "interrupted before this clip finished" if self.interrupted else (
            f"not run: {self.aborted}" if self.aborted else "not run")
        for clip in self.clips:
            row = clip.row
            if not row["error"] and not row.get("end_to_end") and not row.get("model_only"):
                row["error"] = {"stage": "skipped", "type": "NotRun", "message": reason}
        rows = [c.row for c in self.clips]
        scale, zp = float(self.ref.output_scale), int(self.ref.output_zero_point)
        e2e = R.mode_summary(rows, "end_to_end", scale, zp) if "end-to-end" in self.modes else None
        mo = R.mode_summary(rows, "model_only", scale, zp) if "model-only" in self.modes else None
        main = e2e or mo or {}
        checked = sum(1 for r in rows if r.get("end_to_end") or r.get("model_only"))
        kinds = {"input": 0, "reference": 0, "device": 0, "skipped": 0}
        for r in rows:
            if r["error"]:
                stage = r["error"]["stage"]
                kinds["input" if stage == "input" else "reference" if stage == "reference"
                      else "skipped" if stage == "skipped" else "device"] += 1
        unit = self.info.cost_unit if self.info else None
        wire = self._wire_summary(rows)
        report: dict[str, Any] = {
            "schema": REPORT_SCHEMA,
            "tool": "host.parity",
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "port": self.args.port,
            "url": self.url,
            "mode": self.args.mode,
            "device": dataclasses.asdict(self.info) if self.info else None,
            "labels": list(self.ref.labels.names),
            "reference": {
                "model_dir": str(self.args.model),
                "model_sha256": self.ref.sha256,
                "frontend_sha256": self.ref.cfg.sha256(),
                "sample_rate": self.ref.cfg.sr,
                "input_scale": float(self.ref.input_scale),
                "input_zero_point": int(self.ref.input_zero_point),
                "output_scale": scale,
                "output_zero_point": zp,
            },
            "checks": self.checks,
            "data": {"dir": str(self.args.data_dir_resolved), "split": self.args.split, "limit": self.args.limit},
            "thresholds": dataclasses.asdict(self.thresholds),
            "clips": len(rows),
            "checked": checked,
            "errors": sum(1 for r in rows if r["error"]),
            "error_kinds": kinds,
            "top1_agreement": main.get("top1_agreement"),
            "output_exact_fraction": mo["output_exact_fraction"] if mo else None,
            "feature_identical_fraction": e2e["feature_identical_fraction"] if e2e else None,
            "feature_max_lsb": e2e["feature_max_lsb"] if e2e else None,
            "device_accuracy": main.get("device_accuracy"),
            "reference_accuracy": main.get("reference_accuracy"),
            "end_to_end": e2e,
            "model_only": mo,
            "cost": {"unit": unit, "end_to_end": e2e["cost"] if e2e else None, "model_only": mo["cost"] if mo else None},
            "wire": wire,
            "latency": R.latency_summary(rows, unit),
            "wall_seconds": time.monotonic() - self.t_start,
            "reference_seconds": self.t_reference,
            "device_seconds": self.t_device,
            "seconds_per_clip": self.t_device / checked if checked and self.t_device else None,
            "device_stats": {**self.device_stats, "recoveries": self.recoveries},
            "link": self.link_report(),
            "recovery": {"retries": self.args.retries, "clip_attempts": self.clip_attempts,
                         "clips_retried": sum(1 for r in rows if r.get("attempts", 0) > 1 or r.get("resent")),
                         "clips_restarted": sum(1 for r in rows if r.get("attempts", 0) > 1)},
            "faults": self.fault_link.stats() if self.fault_link is not None else None,
            "feature_differences": self.feature_diffs.to_dict() if e2e else None,
            "interrupted": self.interrupted,
            "aborted": self.aborted,
            "data_notes": self.data_notes,
        }
        failures = self._failures(report, rows)
        report["failures"] = failures
        report["parity"] = not failures and not self.interrupted and not self.aborted
        if self.interrupted:
            status = EXIT_INTERRUPTED
        elif self.aborted or checked == 0:
            status = EXIT_USAGE
        else:
            status = EXIT_FAILED if failures else EXIT_OK
        report["exit_status"] = status
        report["rows"] = rows
        return report

    def _failures(self, report: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
        out = [c["message"] for c in R.threshold_checks(report) if not c["passed"]]
        dev_err = report["error_kinds"]["device"]
        if dev_err:
            out.append(f"{dev_err} clip(s) without a device result (device errors; see the rows)")
        if report["checked"] == 0:
            out.append("no clip was checked")
        return out

    def _wire_summary(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {"total": {k: getattr(self.meter, k) for k in ("sent", "received", "payload_sent", "payload_received")}}
        for key in ("end_to_end", "model_only"):
            ws = [r[key]["wire"] for r in rows if r.get(key)]
            if not ws:
                out[key] = None
                continue
            n = len(ws)
            tot = {k: sum(w[k] for w in ws) for k in ws[0]}
            payload = tot["payload_sent"] + tot["payload_received"]
            s = {
                "clips": n,
                "sent_per_clip": tot["sent"] / n,
                "received_per_clip": tot["received"] / n,
                "payload_sent_per_clip": tot["payload_sent"] / n,
                "payload_received_per_clip": tot["payload_received"] / n,
                "overhead": (tot["sent"] + tot["received"]) / payload - 1 if payload else None,
            }
            if key == "end_to_end":
                audio = [r[key]["audio_bytes"] for r in rows if r.get(key)]
                s["audio_bytes_per_clip"] = sum(audio) / n
            out[key] = s
        return out


# ---- CLI ---------------------------------------------------------------------------


def _fraction_arg(text: str) -> float:
    v = float(text)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within 0..1, got {text}")
    return v


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m host.parity",
        description="Stream audio to a spoken-digit device and check that it computes what the Python "
                    "reference computes (front end, int8 model, top-1). Exit status: 0 parity holds, "
                    "1 a check failed, 2 usage/connection error, 130 interrupted.",
    )
    d = ap.add_argument_group("device")
    d.add_argument("--port", required=True,
                   help="serial port: a device path (/dev/ttyACM0), a pty path, socket://host:port, loop://, "
                        "or emulator[:posix|mps2-an386|netduinoplus2] to build, start and stop an emulated board")
    d.add_argument("--baud", type=positive_int, default=115200, help="baud rate (default: %(default)s)")
    d.add_argument("--timeout", type=positive_float, default=None, metavar="SECONDS",
                   help=f"seconds to wait for each response (default: {DEFAULT_TIMEOUT:g}, "
                        f"{QEMU_TIMEOUT:g} on emulated Cortex-M boards)")
    d.add_argument("--retries", type=nonneg_int, default=DEFAULT_RETRIES, metavar="N",
                   help="resends of a request (same seq) after a timeout or a damaged frame (default: %(default)s)")
    d.add_argument("--clip-attempts", type=positive_int, default=DEFAULT_CLIP_ATTEMPTS, metavar="N",
                   help="times a clip is tried in all: after a request fails for good, or the device lost the "
                        "clip (it reset), the host sends RESET and starts the clip again from sample 0; after N "
                        "tries the clip is an error row (default: %(default)s)")
    d.add_argument("--chunk-samples", type=positive_int, default=None, metavar="N",
                   help="samples per AUDIO message (default: the device's maximum, 512, halved down to "
                        f"{MIN_CHUNK_SAMPLES} while the line damages chunks and grown back when it does not)")
    d.add_argument("--faults", default=None, metavar="SPEC",
                   help="run through the fault-injecting proxy (host/faultlink.py): e.g. "
                        "'rate=1e-3,delay=0.01,resets=2,seed=1' damages 1e-3 of the bytes each way (drop, flip, "
                        "dup, insert: 2.5e-4 each), holds 1 %% of the frames up to delay_max=0.1 s and restarts "
                        "the emulated board in 2 clips. Keys: rate drop flip dup insert delay delay_max seed "
                        "(h2d./d2h. prefix for one direction), resets reset_every reset_clips reset_rate "
                        "reset_at die; see python -m host.faultlink --help. Restarts need --port emulator:BOARD")
    s = ap.add_argument_group("data")
    s.add_argument("--data-dir", default=None, metavar="DIR",
                   help="folder of WAV files (or with recordings/); labels come from FSDD-style names "
                        "{digit}_{speaker}_{index}.wav, other files are checked without a label; or a folder per "
                        "label, DIR/<label>/*.wav (default: FSDD via $FSDD_DIR or the cache)")
    s.add_argument("--split", choices=SPLITS, default="test",
                   help="files to use: test = FSDD's official takes 0-4, or a folder per label's test split "
                        "(default: %(default)s); FSDD-folder files with other names are always used")
    s.add_argument("--limit", type=positive_int, default=None, metavar="N",
                   help="check only N clips, spread evenly over the sorted files (default: all)")
    m = ap.add_argument_group("reference")
    m.add_argument("--model", default=DEFAULT_MODEL_DIR, metavar="DIR",
                   help="directory with model_int8.tflite and frontend.json (default: %(default)s)")
    c = ap.add_argument_group("checks")
    c.add_argument("--mode", choices=MODES, default="both",
                   help="end-to-end: audio in, compare features and outputs; model-only: the reference's "
                        "int8 features in, outputs must be identical (default: %(default)s)")
    c.add_argument("--min-top1-agreement", type=_fraction_arg, default=1.0, metavar="FRACTION",
                   help="least share of clips whose device top-1 equals the reference's (default: %(default)s)")
    c.add_argument("--min-exact", type=_fraction_arg, default=1.0, metavar="FRACTION",
                   help="least share of model-only clips with an identical int8 output (default: %(default)s)")
    c.add_argument("--max-feature-lsb", type=nonneg_int, default=None, metavar="LSB",
                   help="largest allowed |device - reference| of an int8 input element (default: 0 for a "
                        "front-end v2 model, whose features are integer on both sides; 1 for v1)")
    c.add_argument("--min-feature-identical", type=_fraction_arg, default=None, metavar="FRACTION",
                   help="least share of identical int8 input elements over all clips (default: 1.0 for a "
                        "front-end v2 model; 0.999 for v1)")
    o = ap.add_argument_group("output")
    o.add_argument("--report", metavar="FILE.json", default=None,
                   help="write the full report (summary and one row per clip) here (default: none)")
    o.add_argument("--plots", metavar="DIR", default=None,
                   help="write PNG plots here: confusion matrices, feature and output differences, latency "
                        "histograms per stage (default: none)")
    o.add_argument("--junit", metavar="FILE.xml", default=None,
                   help="write a JUnit XML file for CI (Jenkins, GitLab, GitHub Actions): one test case per clip "
                        "and one per global check (model hash, thresholds); written even when the run is refused "
                        "or fails to start (default: none)")
    o.add_argument("--no-progress", action="store_true", help="no progress bars")
    o.add_argument("--verbose", "-v", action="store_true", help="full tracebacks")
    return ap


def _say(msg: str) -> None:
    from tqdm import tqdm

    tqdm.write(msg, file=sys.stderr)


def _write_junit(report: dict[str, Any] | None, args: argparse.Namespace, error: str | None = None) -> None:
    if not getattr(args, "junit", None):
        return
    from host import junit

    try:
        path = junit.write_junit(args.junit, report, port=args.port, error=error)
        _say(f"junit: {path}")
    except OSError as exc:
        _say(f"warning: cannot write --junit {args.junit}: {exc}")


def _write_outputs(report: dict[str, Any], args: argparse.Namespace) -> None:
    _write_junit(report, args)
    if args.report:
        path = Path(args.report)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(report, indent=1) + "\n")
        tmp.replace(path)
        _say(f"report: {path}")
    if args.plots and report.get("checked"):
        try:
            for path in R.write_plots(report, args.plots):
                _say(f"plot: {path}")
        except Exception as exc:  # plots are a convenience: never lose the result to them
            _say(f"warning: plots failed: {exc}")
            if args.verbose:
                traceback.print_exc()


SUMMARY_KEYS = (
    "parity", "exit_status", "port", "mode", "clips", "checked", "errors", "top1_agreement",
    "output_exact_fraction", "feature_identical_fraction", "feature_max_lsb", "device_accuracy",
    "reference_accuracy", "wall_seconds", "interrupted", "aborted", "failures", "recovery", "link",
)


def _result(report: dict[str, Any] | None, status: int, args: argparse.Namespace, error: str | None = None) -> int:
    if report is not None:
        summary = {k: report.get(k) for k in SUMMARY_KEYS}
        summary["board"] = (report.get("device") or {}).get("board")
        summary["cost"] = report.get("cost")
        summary["latency"] = report.get("latency")
    else:
        summary = {"parity": False, "exit_status": status, "port": args.port}
        _write_junit(None, args, error)
    if error:
        summary["error"] = error
    summary["report"] = args.report
    print(json.dumps(summary), flush=True)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    progress = not args.no_progress
    run: ParityRun | None = None

    def conclude(extra: str | None = None) -> int:
        assert run is not None
        report = run.finish()
        print(R.format_summary(report), file=sys.stderr)
        _write_outputs(report, args)
        return _result(report, report["exit_status"], args, extra)

    try:
        for opt, value in (("--report", args.report), ("--junit", args.junit)):
            _check_writable(opt, value)
        board = emulator_board(args.port)
        if args.timeout is None:
            args.timeout = QEMU_TIMEOUT if board not in (None, "posix") else DEFAULT_TIMEOUT
        reference = load_reference(args.model)
        from train.data import DatasetError, resolve_data_dir

        try:
            args.data_dir_resolved = resolve_data_dir(args.data_dir)
        except DatasetError as exc:
            raise UsageError(str(exc)) from exc
        files = select_files(args.data_dir_resolved, args.split, args.limit, reference.labels.names)
        run = ParityRun(args, reference, _say)
        run.add_files(files)
        with ExitStack() as stack:
            url, emu, run.fault_link = open_link(stack, args, board, _say, expected_clips=len(run.clips))
            stack.callback(run.close)
            run.connect(url, emu)
            assert run.info is not None
            _say(f"{args.port}: board {run.info.board}, firmware {run.info.firmware_version}, "
                 f"model {run.info.model_sha256[:16]} (matches), {len(files)} clip(s), mode {args.mode}")
            run.prepare(progress)
            if not any(c.ref_output is not None for c in run.clips):
                run.aborted = "no clip could be read"
            else:
                try:
                    run.stream(progress)
                except DeviceLost as exc:
                    run.aborted = f"device lost: {exc}"
                    _say(f"error: {run.aborted}")
        return conclude()
    except UsageError as exc:
        _say(f"error: {exc}")
        if run is not None and run.info is not None:  # refused after INFO: the report says why
            run.aborted = str(exc)
            return conclude()
        return _result(None, EXIT_USAGE, args, str(exc))
    except KeyboardInterrupt:
        _say("interrupted")
        if run is None:
            return _result(None, EXIT_INTERRUPTED, args, "interrupted")
        run.interrupted = True
        return conclude()
    except Exception as exc:  # a bug or an unexpected failure: keep what was measured
        if args.verbose:
            traceback.print_exc()
        _say(f"error: {type(exc).__name__}: {exc}" + ("" if args.verbose else " (--verbose for the traceback)"))
        if run is not None:
            run.aborted = f"{type(exc).__name__}: {exc}"
            try:
                return conclude()
            except Exception:
                pass
        return _result(None, EXIT_USAGE, args, f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    sys.exit(main())
