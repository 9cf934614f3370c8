"""host.parity: the parity run, its report, exit codes and fault handling.

Most tests talk to a fake device in this process: a TCP server (reached as
socket://) that speaks the protocol with host/protocol.py's codec and answers
with a Reference of its own, so it is "in parity" by construction; options
make it answer wrong, not at all, with another model hash, or vanish. The
model is a tiny int8 network (Flatten -> Dense(10) -> Softmax) converted here
with TensorFlow, with the released front-end config, so these tests need
neither the firmware nor a released int8 model.

The tests marked "real firmware" run the posix build and QEMU boards against
models/released and skip (saying why) until the generated model and
firmware/generated/ exist.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from conftest import ROOT, real_fsdd, synth_clip, write_wav
from host import parity
from host import protocol as p
from host import report as R

RELEASED = ROOT / "models" / "released"
GENERATED_GRAPH = ROOT / "firmware" / "generated" / "sd_model_graph.h"


# ---- a tiny model and a few clips ---------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny int8 .tflite (batch 1, (16, 80) -> 10) next to the released frontend.json."""
    import convert  # noqa: F401  (Keras 2 before TensorFlow)
    import tensorflow as tf
    import tf_keras as keras

    out = tmp_path_factory.mktemp("model")
    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 80), batch_size=1)
    x = keras.layers.Dense(10)(keras.layers.Flatten()(inp))
    model = keras.Model(inp, keras.layers.Softmax()(x))
    rng = np.random.default_rng(0)

    def rep():
        for _ in range(16):
            yield [rng.standard_normal((1, 16, 80)).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    (out / "model_int8.tflite").write_bytes(conv.convert())
    shutil.copy(RELEASED / "frontend.json", out / "frontend.json")
    return out


@pytest.fixture(scope="module")
def fake_ref(model_dir: Path):
    from convert.reference import Reference

    return Reference.from_dir(model_dir)


@pytest.fixture(scope="module")
def clips_dir(tmp_path_factory) -> Path:
    """10 test-split clips (indices 0-4), 2 train-split clips, FSDD-style names."""
    root = tmp_path_factory.mktemp("clips")
    for d in range(10):
        write_wav(root / f"{d}_alice_{d % 5}.wav", synth_clip(d, 0, d % 5))
    write_wav(root / "3_bob_7.wav", synth_clip(3, 1, 7))
    write_wav(root / "8_bob_30.wav", synth_clip(8, 1, 30))
    return root


# ---- the fake device ---------------------------------------------------------------------

Fault = Callable[[int, np.ndarray], np.ndarray]


class FakeDevice:
    """Speaks the current protocol version over TCP, computing with ``ref``.

    Args:
        model_sha / frontend_sha / labels_sha: what INFO reports (default: the reference's).
        feature_fault(clip_id, features) / output_fault(n, output): alter results
            (n counts INFER requests from 1; output faults apply to CLASSIFY too
            when ``fault_classify``).
        error_clips: CLASSIFY of these clip ids answers ERROR MODEL.
        silent: never answer. silent_after: stop answering after that many requests.
        vanish_after_classify: after that many CLASSIFY responses, close the
            connection and stop listening.
        drop_audio_once: lose the response to the first AUDIO (the host resends).
        sequence_error_once: answer the 3rd AUDIO with ERROR SEQUENCE once.
        classify_delay: seconds to sleep before each CLASSIFY response.
        rx_window: the receive window STATS reports (0 = no limit); a request
            longer than it on the wire is counted as dropped bytes and not answered.
    """

    def __init__(self, ref, lock: threading.Lock, **opts: Any) -> None:
        self.ref, self.lock = ref, lock
        self.model_sha = opts.pop("model_sha", ref.sha256)
        self.frontend_sha = opts.pop("frontend_sha", ref.cfg.sha256())
        self.frontend_version = opts.pop("frontend_version", ref.cfg.version)  # INFO byte 1 (0 before v2 meant v1)
        self.labels_sha = opts.pop("labels_sha", ref.labels.sha256())
        self.feature_fault: Fault | None = opts.pop("feature_fault", None)
        self.output_fault: Fault | None = opts.pop("output_fault", None)
        self.error_clips = set(opts.pop("error_clips", ()))
        self.silent = opts.pop("silent", False)
        self.silent_after = opts.pop("silent_after", None)
        self.vanish_after_classify = opts.pop("vanish_after_classify", None)
        self.drop_audio_once = opts.pop("drop_audio_once", False)
        self.sequence_error_once = opts.pop("sequence_error_once", False)
        self.classify_delay = opts.pop("classify_delay", 0.0)
        self.rx_window = opts.pop("rx_window", 0)
        assert not opts, opts
        self.rx_bytes = self.rx_dropped = self.frames_ok = 0
        self.longest_request = 0
        self.counts: dict[str, int] = {t.name: 0 for t in p.MsgType}
        self.requests = 0
        self.audio_seen = 0
        self.clip: tuple[int, list[np.ndarray], int] | None = None  # id, chunks, received
        self.classified: int | None = None  # clip id whose tensor FEATURES may read
        self.tensor = bytearray(p.INPUT_SIZE)  # the held input tensor (CLASSIFY's, or TENSOR's)
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self.srv.getsockname()[1]}"
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self) -> None:
        self._stop = True
        self.srv.close()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            with conn:
                dec = p.FrameDecoder()
                while not self._stop:
                    try:
                        data = conn.recv(4096)
                    except OSError:
                        break
                    if not data:
                        break
                    self.rx_bytes += len(data)
                    for ev in dec.feed(data):
                        if not isinstance(ev, p.Frame):
                            continue
                        self.frames_ok += 1
                        wire = p.wire_size(len(ev.payload))
                        self.longest_request = max(self.longest_request, wire)
                        if self.rx_window and wire > self.rx_window:  # a real ring would overflow
                            self.rx_dropped += wire - self.rx_window
                            continue
                        out = self._answer(ev)
                        if out:
                            try:
                                conn.sendall(b"\x00" + out)
                            except OSError:
                                break
                        if self._stop:  # vanished
                            break

    def _frame(self, req: p.Frame, payload: bytes) -> bytes:
        return p.encode_frame(p.Frame(req.type | p.RESPONSE_BIT, req.seq, payload))

    def _error(self, req: p.Frame, code: p.ErrorCode, text: str) -> bytes:
        return p.encode_frame(p.Frame(p.MsgType.ERROR, req.seq, bytes([code, req.type]) + text.encode()))

    def _answer(self, req: p.Frame) -> bytes:
        self.requests += 1
        try:
            name = p.MsgType(req.type).name
        except ValueError:
            return self._error(req, p.ErrorCode.UNKNOWN_TYPE, "unknown")
        self.counts[name] += 1
        if self.silent or (self.silent_after is not None and self.requests > self.silent_after):
            return b""
        if req.type == p.MsgType.PING:
            return self._frame(req, req.payload)
        if req.type == p.MsgType.INFO:
            strings = b"".join(bytes([len(s)]) + s for s in (b"0.1.0", b"fake", b"ticks"))
            from train.stream import DEFAULT_STREAM

            payload = struct.pack("<BBHHHHI32s32s32s32s", p.PROTOCOL_VERSION, self.frontend_version, p.MAX_PAYLOAD,
                                  p.MAX_AUDIO_SAMPLES,
                                  p.INPUT_SIZE, len(self.ref.labels), 8000, bytes.fromhex(self.model_sha),
                                  bytes.fromhex(self.frontend_sha), bytes.fromhex(DEFAULT_STREAM.sha256()),
                                  bytes.fromhex(self.labels_sha))
            return self._frame(req, payload + strings)
        if req.type == p.MsgType.RESET:
            self.clip = self.classified = None
            return self._frame(req, b"")
        if req.type == p.MsgType.FEATURES:  # a part of the last classified clip's tensor
            clip_id, off, n = struct.unpack("<IHH", req.payload)
            if self.classified != clip_id:
                return self._error(req, p.ErrorCode.NO_CLIP, "not the classified clip")
            return self._frame(req, req.payload + self.tensor[off : off + n])
        if req.type == p.MsgType.TENSOR:
            off, n = struct.unpack_from("<HH", req.payload)
            self.tensor[off : off + n] = req.payload[4:]
            self.clip = self.classified = None
            return self._frame(req, req.payload[:4])
        if req.type == p.MsgType.STATS:
            return self._frame(req, struct.pack("<IIIIIIHH", self.rx_bytes, self.rx_dropped, self.frames_ok,
                                                0, 0, 0, self.rx_window, min(self.rx_window, 0xFFFF)))
        if req.type == p.MsgType.AUDIO:
            return self._audio(req)
        if req.type == p.MsgType.CLASSIFY:
            return self._classify(req)
        if req.type == p.MsgType.INFER:
            x = np.frombuffer(req.payload or bytes(self.tensor), np.int8).reshape(16, 80)
            with self.lock:
                out = np.asarray(self.ref.infer(x), np.int8)
            if self.output_fault:
                out = self.output_fault(self.counts["INFER"], out.copy())
            payload = struct.pack("<BBQQQI", int(np.argmax(out)), 0, 0, 5000, 50, zlib.crc32(x.tobytes())) + out.tobytes()
            return self._frame(req, payload)
        return self._error(req, p.ErrorCode.UNKNOWN_TYPE, "unknown")

    def _audio(self, req: p.Frame) -> bytes:
        clip_id, offset, flags, _, n = struct.unpack_from("<IIBBH", req.payload)
        samples = np.frombuffer(req.payload[12:], "<i2")
        self.audio_seen += 1
        if self.drop_audio_once and self.audio_seen == 1:
            return b""
        if self.sequence_error_once and self.audio_seen == 3:
            self.sequence_error_once = False
            return self._error(req, p.ErrorCode.SEQUENCE, "out of order")
        if flags & p.AUDIO_BEGIN:
            self.clip, self.classified = (clip_id, [samples], n), None
        elif self.clip is None:
            return self._error(req, p.ErrorCode.NO_CLIP, "no open clip")
        elif self.clip[0] != clip_id:
            return self._error(req, p.ErrorCode.CLIP_MISMATCH, "clip id")
        elif offset == self.clip[2]:
            self.clip = (clip_id, self.clip[1] + [samples], self.clip[2] + n)
        elif not (n and offset + n == self.clip[2]):
            return self._error(req, p.ErrorCode.SEQUENCE, "out of order")
        return self._frame(req, struct.pack("<II", clip_id, self.clip[2]))

    def _classify(self, req: p.Frame) -> bytes:
        clip_id, flags, _ = struct.unpack("<IBB", req.payload)
        if self.clip is None or self.clip[0] != clip_id:
            return self._error(req, p.ErrorCode.NO_CLIP, "no open clip")
        x = np.concatenate(self.clip[1]).astype(np.int16)
        self.clip = None
        if clip_id in self.error_clips:
            return self._error(req, p.ErrorCode.MODEL, "model failed")
        with self.lock:
            feats = np.asarray(self.ref.features(x), np.int8)
            if self.feature_fault:
                feats = self.feature_fault(clip_id, feats.copy())
            out = np.asarray(self.ref.infer(feats), np.int8)
        if self.classify_delay:
            time.sleep(self.classify_delay)
        want = flags & p.CLASSIFY_WANT_FEATURES
        self.tensor, self.classified = bytearray(feats.tobytes()), clip_id
        payload = struct.pack("<IBBIQQQI", clip_id, int(np.argmax(out)), p.RESULT_FEATURES if want else 0,
                              len(x), 3 * len(x), 5000, 50, zlib.crc32(feats.tobytes())) + out.tobytes()
        answer = self._frame(req, payload + (feats.tobytes() if want else b""))
        if self.vanish_after_classify is not None and self.counts["CLASSIFY"] >= self.vanish_after_classify:
            self._stop = True
            self.srv.close()
        return answer


@pytest.fixture
def fake(fake_ref):
    lock = threading.Lock()
    devices: list[FakeDevice] = []

    def start(**opts: Any) -> FakeDevice:
        dev = FakeDevice(fake_ref, lock, **opts)
        devices.append(dev)
        return dev

    yield start
    for dev in devices:
        dev.close()


def run_parity(capsys, *args: str) -> tuple[int, dict, str]:
    """main() in this process; returns (status, stdout JSON, stderr)."""
    status = parity.main(["--no-progress", *args])
    out, err = capsys.readouterr()
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, f"stdout must hold one JSON line, got:\n{out}"
    return status, json.loads(lines[0]), err


# ---- pure functions ---------------------------------------------------------------------------


def test_output_metrics() -> None:
    r = np.array([0.0, 0.5, 0.5])
    m = R.output_metrics(r, r)
    assert m == {"rmse": 0.0, "l2r": 0.0, "cosine": pytest.approx(1.0)}
    d = np.array([0.0, 0.5, 0.6])
    m = R.output_metrics(d, r)
    assert m["rmse"] == pytest.approx(np.sqrt(0.01 / 3))
    assert m["l2r"] == pytest.approx(0.1 / np.sqrt(0.5))
    assert m["cosine"] == pytest.approx(0.55 / (np.sqrt(0.61) * np.sqrt(0.5)))
    assert R.output_metrics(np.zeros(3), np.zeros(3)) == {"rmse": 0.0, "l2r": 0.0, "cosine": 1.0}
    assert R.output_metrics(np.ones(3), np.zeros(3))["l2r"] is None


def test_feature_stats_and_diffs() -> None:
    ref = np.zeros((16, 80), np.int8)
    dev = ref.copy()
    dev[2, 5], dev[3, 7] = 1, -3
    stats, diff = R.feature_stats(dev.reshape(-1), ref)
    assert stats == {"feature_identical_fraction": 1 - 2 / 1280, "feature_max_lsb": 3, "feature_mismatches": 2}
    acc = R.FeatureDiffs((16, 80))
    acc.add(diff)
    acc.add(diff)
    d = acc.to_dict()
    assert d["histogram"] == {"-3": 2, "0": 2 * 1278, "1": 2} and d["mismatch_map"][2][5] == 2


def test_select_files_split_and_limit(tmp_path: Path) -> None:
    for name in ["0_a_0.wav", "0_a_5.wav", "1_a_4.wav", "2_b_10.wav", "mine.wav", "notes.txt"]:
        (tmp_path / name).write_bytes(b"x")
    names = lambda split, limit=None: [q.name for q, _ in parity.select_files(tmp_path, split, limit)]  # noqa: E731
    assert names("test") == ["0_a_0.wav", "1_a_4.wav", "mine.wav"]
    assert names("train") == ["0_a_5.wav", "2_b_10.wav", "mine.wav"]
    assert len(names("all")) == 5 and names("all", 2) == ["0_a_0.wav", "mine.wav"]
    with pytest.raises(parity.UsageError, match="not a directory"):
        parity.select_files(tmp_path / "nothing", "test", None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(parity.UsageError, match="no .wav files"):
        parity.select_files(tmp_path / "empty", "test", None)
    # labels: the FSDD digit, None for another name; with a model of other labels every file is unlabelled
    assert [lab for _, lab in parity.select_files(tmp_path, "test", None)] == [0, 1, None]
    assert [lab for _, lab in parity.select_files(tmp_path, "test", None, ("yes", "no"))] == [None, None, None]
    with_reject = tuple("0123456789") + ("noise", "other")  # the release's labels: the digits keep their indices
    assert [lab for _, lab in parity.select_files(tmp_path, "test", None, with_reject)] == [0, 1, None]
    # a folder per label: its own test split, labels numbered in the model's order
    words = tmp_path / "words"
    for w in ("yes", "no"):
        for spk in ("ann", "bob"):
            (words / w).mkdir(parents=True, exist_ok=True)
            (words / w / f"{spk}_nohash_0.wav").write_bytes(b"x")
    (words / "testing_list.txt").write_text("yes/ann_nohash_0.wav\nno/ann_nohash_0.wav\n")
    got = [(q.parent.name, q.name, lab) for q, lab in parity.select_files(words, "test", None, ("yes", "no"))]
    assert got == [("yes", "ann_nohash_0.wav", 0), ("no", "ann_nohash_0.wav", 1)]
    assert len(parity.select_files(words, "train", None, ("yes", "no"))) == 2


def test_emulator_port_names() -> None:
    assert parity.emulator_board("emulator") == "posix"
    assert parity.emulator_board("emulator:mps2-an386") == "mps2-an386"
    assert parity.emulator_board("/dev/ttyACM0") is None
    with pytest.raises(parity.UsageError, match="emulator:posix"):
        parity.emulator_board("emulator:zx81")


def test_counting_port_counts_both_ways() -> None:
    meter = parity.WireMeter()
    with parity.MeteredDevice("loop://", meter=meter, timeout=0.2) as dev:
        with pytest.raises(p.Timeout):  # loop:// hears its own request, never a response
            dev.info()
    # 0x00 frame 0x00, then a spare 0x00 (docs/protocol.md, "Faults and recovery")
    assert meter.sent == meter.received == len(p.encode_frame(p.Frame(p.MsgType.INFO, 0), leading_delimiter=True)) + 1
    assert meter.payload_sent == meter.payload_received == 0  # no completed request


def test_usage_errors_from_argparse(capsys) -> None:
    for argv in ([], ["--port", "loop://", "--limit", "0"], ["--port", "loop://", "--min-exact", "1.5"],
                 ["--port", "loop://", "--mode", "fast"]):
        with pytest.raises(SystemExit) as e:
            parity.main(argv)
        assert e.value.code == 2
    assert capsys.readouterr().out == ""


# ---- runs against the fake device -------------------------------------------------------------------


def parse_junit(path: Path) -> dict[str, Any]:
    """Reads a JUnit file back, checking the structure Jenkins and GitLab expect.

    With xml.etree: <testsuites> -> <testsuite name tests failures errors skipped time> ->
    <testcase classname name time> with at most one of <failure message>, <error message>,
    <skipped>, counts that add up. With junitparser (the `test` extra) too, when installed.
    Returns {"totals": {...}, "cases": {"<suite>/<name>": (kind, message, system-out)}}.
    """
    import xml.etree.ElementTree as ET

    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    cases: dict[str, tuple[str, str | None, str | None]] = {}
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in root.findall("testsuite"):
        n = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        assert suite.get("name") and float(suite.get("time")) >= 0
        for tc in suite.findall("testcase"):
            assert tc.get("classname") == suite.get("name") and tc.get("name") and float(tc.get("time")) >= 0
            results = [c for c in tc if c.tag in ("failure", "error", "skipped")]
            assert len(results) <= 1, ET.tostring(tc)
            kind = results[0].tag if results else "passed"
            msg = results[0].get("message") if results else None
            if kind in ("failure", "error"):
                assert msg and results[0].get("type")
            n["tests"] += 1
            n[{"passed": "tests", "failure": "failures", "error": "errors", "skipped": "skipped"}[kind]] += kind != "passed"
            out = tc.find("system-out")
            key = f"{suite.get('name').rsplit('.', 1)[-1]}/{tc.get('name')}"
            assert key not in cases, key
            cases[key] = (kind, msg, out.text if out is not None else None)
        assert {k: int(suite.get(k)) for k in n} == n
        for k in totals:
            totals[k] += n[k]
    assert {k: int(root.get(k)) for k in totals} == totals
    try:
        import junitparser
    except ImportError:
        pass
    else:
        xml = junitparser.JUnitXml.fromfile(str(path))
        assert (xml.tests, xml.failures, xml.errors, xml.skipped) == tuple(totals.values())
        got = {}
        for suite in xml:
            for case in suite:
                kinds = [type(r).__name__.lower() for r in case.result]
                got[f"{suite.name.rsplit('.', 1)[-1]}/{case.name}"] = kinds[0] if kinds else "passed"
        assert got == {k: v[0] for k, v in cases.items()}
    return {"totals": totals, "cases": cases}


def test_parity_holds_report_and_plots(capsys, fake, model_dir, clips_dir, tmp_path) -> None:
    dev = fake()
    report_path, plots, junit = tmp_path / "r" / "parity.json", tmp_path / "plots", tmp_path / "j" / "parity.xml"
    status, summary, err = run_parity(
        capsys, "--port", dev.url, "--model", str(model_dir), "--data-dir", str(clips_dir),
        "--report", str(report_path), "--plots", str(plots), "--junit", str(junit))
    assert status == 0, err
    assert summary["parity"] is True and summary["exit_status"] == 0 and summary["board"] == "fake"
    assert "PARITY HOLDS" in err and "top-1 agreement" in err
    rep = json.loads(report_path.read_text())
    for key in ("clips", "errors", "top1_agreement", "output_exact_fraction", "feature_identical_fraction",
                "feature_max_lsb", "device_accuracy", "reference_accuracy", "cost", "device", "wall_seconds",
                "wire", "rows", "checks", "interrupted"):
        assert key in rep, key
    assert rep["clips"] == rep["checked"] == 10 and rep["errors"] == 0  # test split only
    assert rep["top1_agreement"] == rep["output_exact_fraction"] == rep["feature_identical_fraction"] == 1.0
    assert rep["feature_max_lsb"] == 0 and rep["device_accuracy"] == rep["reference_accuracy"]
    assert rep["end_to_end"]["model_exact_on_device_features_fraction"] == 1.0
    assert rep["cost"]["unit"] == "ticks" and rep["cost"]["end_to_end"]["lstm"] == 5000
    assert rep["cost"]["model_only"] == {"lstm": 5000.0, "head": 50.0, "total": 5050.0}
    assert all(c["match"] for c in rep["checks"].values())
    assert rep["device"]["model_sha256"] == rep["reference"]["model_sha256"]
    w = rep["wire"]["end_to_end"]
    assert w["clips"] == 10 and w["sent_per_clip"] > w["payload_sent_per_clip"] > w["audio_bytes_per_clip"]
    assert w["received_per_clip"] > w["payload_received_per_clip"] >= 44 + 1280
    assert 0 < w["overhead"] < 0.1
    assert rep["wire"]["model_only"]["payload_sent_per_clip"] == 1280
    row = rep["rows"][0]
    assert row["file"] == "0_alice_0.wav" and row["label"] == 0 and row["exact"] is True
    assert row["device_label"] == row["reference_label"] and row["error"] is None
    assert row["end_to_end"]["cost"] == {"frontend": 3 * row["end_to_end"]["n_samples"], "lstm": 5000, "head": 50}
    assert {"rmse", "l2r", "cosine", "feature_identical_fraction", "feature_max_lsb"} <= set(row)
    assert sorted(q.name for q in plots.iterdir()) == [
        "confusion_device.png", "confusion_device_vs_reference.png", "feature_differences.png", "latency.png",
        "output_differences.png"]

    # Latency per stage: median, p90, max of the device's counter (the fake: frontend 3 ticks per
    # sample, lstm 5000, head 50) and of the host's wall time per clip.
    lat = rep["latency"]
    assert lat["unit"] == "ticks" and lat["wall_unit"] == "s" and summary["latency"] == lat
    e = lat["end_to_end"]
    assert e["clips"] == 10 and e["lstm"] == {"median": 5000.0, "p90": 5000.0, "max": 5000.0}
    fe = sorted(3 * r["end_to_end"]["n_samples"] for r in rep["rows"])
    assert e["frontend"]["max"] == fe[-1] and e["frontend"]["median"] == (fe[4] + fe[5]) / 2
    assert e["frontend"]["p90"] == pytest.approx(fe[8] + 0.1 * (fe[9] - fe[8]))
    assert e["total"]["max"] == fe[-1] + 5050
    assert lat["model_only"]["total"] == {"median": 5050.0, "p90": 5050.0, "max": 5050.0}
    assert "frontend" not in lat["model_only"]
    walls = [r["wall_seconds"] for r in rep["rows"]]
    assert lat["clip_wall_seconds"]["max"] == max(walls) > 0
    assert all(r["wall_seconds"] >= r["end_to_end"]["wall_seconds"] + r["model_only"]["wall_seconds"] for r in rep["rows"])
    assert 0 < e["wall_seconds"]["median"] <= e["wall_seconds"]["p90"] <= e["wall_seconds"]["max"]
    assert "latency" in err and "end-to-end lstm (ticks)" in err and "model-only wall per clip (ms)" in err

    # JUnit: 10 clip cases and the global checks, all passing.
    j = parse_junit(junit)
    assert j["totals"] == {"tests": 10 + 12, "failures": 0, "errors": 0, "skipped": 0}
    clip_cases = sorted(k for k in j["cases"] if k.startswith("clips/"))
    assert clip_cases == sorted(f"clips/{r['file']}" for r in rep["rows"])
    assert {k for k in j["cases"] if k.startswith("checks/")} == {
        "checks/model_sha256", "checks/frontend_sha256", "checks/protocol_version", "checks/sample_rate",
        "checks/tensor_sizes", "checks/threshold end_to_end.top1_agreement",
        "checks/threshold end_to_end.feature_identical_fraction", "checks/threshold end_to_end.feature_max_lsb",
        "checks/threshold model_only.output_exact_fraction", "checks/threshold model_only.top1_agreement",
        "checks/device_results", "checks/run"}
    assert "ticks" in j["cases"]["clips/0_alice_0.wav"][2]
    assert dev.counts["INFO"] == 1 and dev.counts["CLASSIFY"] == dev.counts["INFER"] == 10

    # The saved report renders again.
    assert R.main([str(report_path), "--plots", str(tmp_path / "again")]) == 0
    assert "PARITY HOLDS" in capsys.readouterr().err


def test_bad_and_unlabeled_wavs_are_rows(capsys, fake, model_dir, clips_dir, tmp_path) -> None:
    data = tmp_path / "data"
    shutil.copytree(clips_dir, data)
    (data / "5_carol_0.wav").write_bytes(b"RIFF\x00\x00garbage")
    (data / "6_carol_1.wav").write_bytes(b"")
    write_wav(data / "my recording.wav", synth_clip(4, 2, 0))
    dev = fake()
    report = tmp_path / "r.json"
    status, summary, err = run_parity(capsys, "--port", dev.url, "--model", str(model_dir), "--data-dir", str(data),
                                      "--mode", "end-to-end", "--report", str(report))
    assert status == 0, err  # unreadable input is reported, not a parity failure
    rep = json.loads(report.read_text())
    rows = {r["file"]: r for r in rep["rows"]}
    assert rep["clips"] == 13 and rep["checked"] == 11 and rep["error_kinds"]["input"] == 2
    assert rows["5_carol_0.wav"]["error"]["stage"] == "input" and "5_carol_0.wav" in rows["5_carol_0.wav"]["error"]["message"]
    assert "empty" in rows["6_carol_1.wav"]["error"]["message"]
    assert rows["my recording.wav"]["label"] is None and rows["my recording.wav"]["device_label"] is not None
    assert rep["model_only"] is None and rep["output_exact_fraction"] is None and dev.counts["INFER"] == 0


def test_feature_and_output_mismatches_fail(capsys, fake, model_dir, clips_dir, tmp_path) -> None:
    def features(clip_id: int, x: np.ndarray) -> np.ndarray:
        if clip_id == 3:
            x[4, 10] = np.clip(int(x[4, 10]) + (2 if x[4, 10] < 100 else -2), -128, 127)
        return x

    def outputs(n: int, y: np.ndarray) -> np.ndarray:
        if n == 5:
            y[0] = y[0] + 1 if y[0] < 127 else y[0] - 1
        return y

    dev = fake(feature_fault=features, output_fault=outputs)
    report, junit = tmp_path / "r.json", tmp_path / "parity.xml"
    args = ["--port", dev.url, "--model", str(model_dir), "--data-dir", str(clips_dir), "--report", str(report)]
    status, summary, err = run_parity(capsys, *args, "--junit", str(junit))
    assert status == 1 and summary["parity"] is False
    assert summary["feature_max_lsb"] == 2 and summary["output_exact_fraction"] == 0.9
    assert any("feature max difference 2 LSB" in f for f in summary["failures"])
    assert any("model-only exact outputs 0.9000" in f for f in summary["failures"])
    assert "PARITY FAILS" in err
    rep = json.loads(report.read_text())
    assert rep["rows"][2]["feature_max_lsb"] == 2 and rep["rows"][2]["end_to_end"]["feature_mismatches"] == 1
    assert rep["rows"][4]["exact"] is False and rep["rows"][4]["model_only"]["output_max_lsb"] == 1
    assert rep["feature_differences"]["histogram"]["2"] + rep["feature_differences"]["histogram"].get("-2", 0) == 1
    # The device model is still exact on its own features: the difference is the front end's.
    assert rep["end_to_end"]["model_exact_on_device_features_fraction"] == 1.0

    # JUnit: the two clips fail, saying what differed; so do the three thresholds they break (a front-end v2
    # model: features must be identical, 0 LSB and 100 %).
    j = parse_junit(junit)
    assert j["totals"] == {"tests": 10 + 12, "failures": 5, "errors": 0, "skipped": 0}
    failed = {k: v[1] for k, v in j["cases"].items() if v[0] == "failure"}
    assert set(failed) == {"clips/2_alice_2.wav", "clips/4_alice_4.wav", "checks/threshold end_to_end.feature_max_lsb",
                           "checks/threshold end_to_end.feature_identical_fraction",
                           "checks/threshold model_only.output_exact_fraction"}
    assert failed["clips/2_alice_2.wav"].startswith("features: 1 of 1280 int8 elements differ, max 2 LSB (> 0 allowed)")
    assert failed["clips/4_alice_4.wav"].startswith("model-only outputs: 1 of 10 differ, max 1 LSB (device [")
    assert failed["checks/threshold model_only.output_exact_fraction"] == "model-only exact outputs 0.9000 < 1.0"
    assert j["cases"]["checks/run"][0] == "passed" and "exit status 1" in j["cases"]["checks/run"][2]

    # Thresholds are settable; a clip's case fails only on what no threshold tolerates.
    status, summary, err = run_parity(capsys, *args, "--max-feature-lsb", "2", "--min-feature-identical", "0.99",
                                      "--min-exact", "0.9", "--min-top1-agreement", "0.8", "--junit", str(junit))
    assert status == 0, summary["failures"]
    j = parse_junit(junit)
    assert j["totals"]["failures"] == j["totals"]["errors"] == 0
    # (the fake's output fault hit the first run's 5th INFER only; the feature fault is still there)
    assert "features: 1 of 1280 int8 elements differ, max 2 LSB (within --max-feature-lsb)" in j["cases"]["clips/2_alice_2.wav"][2]


def test_model_hash_mismatch_refuses(capsys, fake, model_dir, clips_dir, tmp_path) -> None:
    dev = fake(model_sha="ab" * 32)
    report, junit = tmp_path / "r.json", tmp_path / "parity.xml"
    status, summary, err = run_parity(capsys, "--port", dev.url, "--model", str(model_dir),
                                      "--data-dir", str(clips_dir), "--report", str(report), "--junit", str(junit))
    assert status == 2 and summary["parity"] is False
    assert "ab" * 32 in err and dev.ref.sha256 in err and "refusing" in err
    assert dev.counts["AUDIO"] == dev.counts["INFER"] == 0
    rep = json.loads(report.read_text())
    assert rep["checks"]["model_sha256"]["match"] is False and "refusing" in rep["aborted"]
    assert all(r["error"]["stage"] == "skipped" for r in rep["rows"])
    j = parse_junit(junit)
    assert j["totals"] == {"tests": 10 + 7, "failures": 1, "errors": 1, "skipped": 10}  # no threshold without results
    kind, msg, _ = j["cases"]["checks/model_sha256"]
    assert kind == "failure" and msg == f"model_sha256 differs: device {'ab' * 32}, reference {dev.ref.sha256}"
    kind, msg, _ = j["cases"]["checks/run"]
    assert kind == "error" and "aborted: refusing to run" in msg


def test_label_list_mismatch_refuses(capsys, fake, model_dir, clips_dir) -> None:
    """A device whose firmware was built with another label list (INFO's labels hash) is refused,
    with both lists named: its outputs would be read under the wrong names."""
    from train.labels import Labels

    other = Labels(tuple("0123456789")[:-1] + ("nine",))
    dev = fake(labels_sha=other.sha256())
    status, summary, err = run_parity(capsys, "--port", dev.url, "--model", str(model_dir), "--data-dir", str(clips_dir))
    assert status == 2 and "label lists differ" in err
    assert other.sha256() in err and dev.ref.labels.sha256() in err and "0, 1, 2" in err
    assert dev.counts["AUDIO"] == dev.counts["INFER"] == 0


def test_frontend_mismatch_refuses_end_to_end_only(capsys, fake, model_dir, clips_dir) -> None:
    dev = fake(frontend_sha="cd" * 32)
    status, summary, err = run_parity(capsys, "--port", dev.url, "--model", str(model_dir), "--data-dir", str(clips_dir))
    assert status == 2 and "front-end config SHA-256 differs" in err and "--mode model-only" in err
    status, summary, err = run_parity(capsys, "--port", dev.url, "--model", str(model_dir), "--data-dir", str(clips_dir),
                                      "--mode", "model-only", "--limit", "3")
    assert status == 0 and "warning: front-end config SHA-256 differs" in err
    assert summary["feature_identical_fraction"] is None and summary["output_exact_fraction"] == 1.0


def test_front_end_versions_are_named_when_they_differ(capsys, fake, model_dir, clips_dir, tmp_path) -> None:
    """A v1 (float) board with a v2 model folder, and a v2 board with a v1 model folder: refused, naming both."""
    import shutil

    from train.features import FrontendConfig

    dev = fake(frontend_sha="cd" * 32, frontend_version=0)  # firmware from before v2 sends 0 (reserved)
    status, _, err = run_parity(capsys, "--port", dev.url, "--model", str(model_dir), "--data-dir", str(clips_dir))
    assert status == 2
    assert "the device runs front end v1 (float), the model folder's frontend.json is v2 (integer)" in err
    old = tmp_path / "v1model"
    shutil.copytree(model_dir, old)
    v1 = dataclasses.replace(FrontendConfig.load(model_dir / "frontend.json"), version=1)
    v1.save(old / "frontend.json")
    assert "version" not in (old / "frontend.json").read_text()  # as v1 folders were written
    dev = fake(frontend_version=2)
    status, _, err = run_parity(capsys, "--port", dev.url, "--model", str(old), "--data-dir", str(clips_dir))
    assert status == 2
    assert "the device runs front end v2 (integer), the model folder's frontend.json is v1 (float)" in err
    assert "retrain the model" in err


def test_device_error_on_a_clip_is_a_row(capsys, fake, model_dir, clips_dir, tmp_path) -> None:
    dev = fake(error_clips={2})
    report, junit = tmp_path / "r.json", tmp_path / "parity.xml"
    status, summary, err = run_parity(capsys, "--port", dev.url, "--model", str(model_dir), "--data-dir", str(clips_dir),
                                      "--report", str(report), "--junit", str(junit))
    assert status == 1 and summary["errors"] == 1 and summary["checked"] == 10
    assert any("without a device result" in f for f in summary["failures"])
    row = json.loads(report.read_text())["rows"][1]
    assert row["error"]["stage"] == "end-to-end" and "MODEL" in row["error"]["message"]
    assert row["error"]["attempts"] == 1  # a model failure is not retried
    assert row["model_only"]["output_exact"] is True  # the other mode still ran on that clip
    assert "0_alice_0.wav" not in err and "1_alice_1.wav: end-to-end error" in err
    j = parse_junit(junit)
    assert j["totals"] == {"tests": 10 + 12, "failures": 1, "errors": 1, "skipped": 0}
    kind, msg, out = j["cases"]["clips/1_alice_1.wav"]
    assert kind == "error" and msg.startswith("end-to-end: ") and "MODEL" in msg
    assert "model-only: output exact True" in out
    assert j["cases"]["checks/device_results"][:2] == ("failure", "1 clip(s) without a device result (see their <error> cases)")


def test_receive_window_and_link_counters(capsys, fake, model_dir, clips_dir, tmp_path) -> None:
    """The host keeps to the device's receive window (AUDIO chunks shrink, INFER still fits) and
    reports the device's receive counters (JSON "link", console line)."""
    dev = fake(rx_window=1300)
    report = tmp_path / "r.json"
    status, summary, err = run_parity(capsys, "--port", dev.url, "--model", str(model_dir), "--data-dir", str(clips_dir),
                                      "--report", str(report))
    assert status == 0, err
    rep = json.loads(report.read_text())
    assert dev.longest_request <= 1300 and dev.rx_dropped == 0
    assert {r["chunk_samples"] for r in rep["rows"]} == {512}  # 1,054 bytes on the wire: fits
    link = rep["link"]
    assert summary["link"] == link and link["complete"] and link["sessions"] == 1
    assert link["rx_window"] == 1300 and link["rx_dropped"] == 0 and link["rx_bytes"] > 10 * 2 * 4000
    assert link["frames_ok"] == sum(dev.counts.values()) - 2  # all but INFO and the baseline STATS
    assert "link, device side: received" in err and "dropped 0 B (window 1,300 B" in err
    assert "link, host side: requests resent 0" in err

    small = fake(rx_window=300)
    status, summary, err = run_parity(capsys, "--port", small.url, "--model", str(model_dir), "--data-dir",
                                      str(clips_dir), "--mode", "end-to-end", "--report", str(report))
    assert status == 0, err
    rep = json.loads(report.read_text())
    assert {r["chunk_samples"] for r in rep["rows"]} == {p.audio_samples_for_window(300)} == {136}
    assert small.longest_request <= 300 and rep["link"]["rx_dropped"] == 0


def test_lost_response_and_lost_clip_are_recovered(capsys, fake, model_dir, clips_dir, tmp_path) -> None:
    dev = fake(drop_audio_once=True, sequence_error_once=True)
    report = tmp_path / "r.json"
    status, summary, err = run_parity(capsys, "--port", dev.url, "--model", str(model_dir), "--data-dir", str(clips_dir),
                                      "--timeout", "1", "--report", str(report))
    assert status == 0, summary
    rep = json.loads(report.read_text())
    assert rep["device_stats"]["resent"] == 1 and rep["device_stats"]["recoveries"] == 1
    assert max(r["end_to_end"]["attempts"] for r in rep["rows"]) == 2
    assert dev.counts["RESET"] == 1


def test_unwritable_outputs_are_refused_before_the_run(capsys, model_dir, clips_dir, tmp_path) -> None:
    (tmp_path / "file").write_text("")
    for opt in ("--junit", "--report"):
        status, summary, err = run_parity(capsys, "--port", "loop://", "--model", str(model_dir),
                                          "--data-dir", str(clips_dir), opt, str(tmp_path / "file" / "x.xml"))
        assert status == 2 and f"{opt} {tmp_path / 'file' / 'x.xml'}: cannot write there" in summary["error"]
        assert "pass a writable file path" in summary["error"]


def test_port_that_does_not_exist(capsys, model_dir, clips_dir, tmp_path) -> None:
    junit = tmp_path / "parity.xml"
    status, summary, err = run_parity(capsys, "--port", "/dev/ttyNOPE99", "--model", str(model_dir),
                                      "--data-dir", str(clips_dir), "--junit", str(junit))
    assert status == 2 and "/dev/ttyNOPE99" in summary["error"] and "--port emulator" in summary["error"]
    j = parse_junit(junit)  # a CI job that reads the file sees why the run never started
    assert j["totals"] == {"tests": 1, "failures": 0, "errors": 1, "skipped": 0}
    assert j["cases"]["checks/run"][0] == "error" and "/dev/ttyNOPE99" in j["cases"]["checks/run"][1]


def test_no_answer_is_bounded(capsys, fake, model_dir, clips_dir) -> None:
    for url in ("loop://", fake(silent=True).url):
        t0 = time.monotonic()
        status, summary, err = run_parity(capsys, "--port", url, "--model", str(model_dir), "--data-dir", str(clips_dir),
                                          "--timeout", "0.3", "--retries", "1")
        assert status == 2 and f"no answer from {url} to INFO within 0.3 s (2 attempt(s))" in summary["error"]
        assert time.monotonic() - t0 < 5


def test_device_that_vanishes_leaves_a_partial_report(capsys, fake, model_dir, clips_dir, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(parity, "REOPEN_SECONDS", 0.5)
    report = tmp_path / "r.json"
    for opts in ({"vanish_after_classify": 3}, {"silent_after": 40}):
        dev = fake(**opts)
        status, summary, err = run_parity(capsys, "--port", dev.url, "--model", str(model_dir),
                                          "--data-dir", str(clips_dir), "--timeout", "0.6", "--retries", "0",
                                          "--report", str(report))
        assert status == 2 and "device lost" in summary["aborted"], (opts, summary)
        rep = json.loads(report.read_text())
        assert rep["clips"] == 10 and 0 < rep["checked"] < 10
        assert all(r["error"] or r.get("end_to_end") for r in rep["rows"])  # every clip is in the report
        assert rep["rows"][-1]["error"]["stage"] == "skipped" and "device lost" in rep["rows"][-1]["error"]["message"]


def test_interrupt_writes_partial_report(capsys, fake, model_dir, clips_dir, tmp_path, monkeypatch) -> None:
    calls = {"n": 0}
    real = parity.ParityRun._run_clip

    def run_clip(self, clip):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, clip)

    monkeypatch.setattr(parity.ParityRun, "_run_clip", run_clip)
    report = tmp_path / "r.json"
    status, summary, err = run_parity(capsys, "--port", fake().url, "--model", str(model_dir),
                                      "--data-dir", str(clips_dir), "--report", str(report))
    assert status == 130 and summary["interrupted"] is True and summary["parity"] is False
    rep = json.loads(report.read_text())
    assert rep["interrupted"] is True and rep["checked"] == 2 and rep["clips"] == 10
    assert rep["rows"][5]["error"]["message"] == "interrupted before this clip finished"
    assert "INTERRUPTED" in err


def test_cli_sigint_in_a_subprocess(fake, model_dir, clips_dir, tmp_path) -> None:
    """The real thing: python -m host.parity, Ctrl-C (SIGINT) mid-run -> 130, partial report, JSON on stdout."""
    dev = fake(classify_delay=0.3)
    report = tmp_path / "r.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-m", "host.parity", "--port", dev.url, "--model", str(model_dir),
         "--data-dir", str(clips_dir), "--report", str(report)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while dev.counts["CLASSIFY"] < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    summary = json.loads(out)  # stdout holds only the result
    assert summary["interrupted"] is True
    rep = json.loads(report.read_text())
    assert rep["interrupted"] and rep["clips"] == 10 and 1 <= rep["checked"] < 10


# ---- the real firmware ------------------------------------------------------------------------------

_REAL_MISSING = [str(f.relative_to(ROOT)) for f in (GENERATED_GRAPH, RELEASED / "model_int8.tflite") if not f.exists()]
real_firmware = pytest.mark.skipif(
    bool(_REAL_MISSING),
    reason=f"real firmware not ready: {', '.join(_REAL_MISSING)} missing "
           "(run `python -m convert.quantize`, which writes both)")
needs_fsdd = pytest.mark.skipif(real_fsdd() is None, reason="FSDD not found (../shared/data/fsdd or $FSDD_DIR)")


def _real_run(capsys, tmp_path: Path, port: str, *extra: str) -> tuple[int, dict, dict]:
    report = tmp_path / "parity.json"
    status, summary, err = run_parity(capsys, "--port", port, "--data-dir", str(real_fsdd()),
                                      "--model", str(RELEASED), "--report", str(report), *extra)
    rep = json.loads(report.read_text())
    print(err, file=sys.stderr)  # the summary table, shown with -s or on failure
    return status, summary, rep


@real_firmware
@needs_fsdd
def test_real_posix_board_full_test_split(capsys, tmp_path) -> None:
    junit = tmp_path / "parity.xml"
    status, summary, rep = _real_run(capsys, tmp_path, "emulator:posix", "--plots", str(tmp_path / "plots"),
                                     "--junit", str(junit))
    assert rep["clips"] == rep["checked"] == 300 and rep["errors"] == 0
    j = parse_junit(junit)
    assert j["totals"] == {"tests": 300 + 12, "failures": 0, "errors": 0, "skipped": 0}, \
        [(k, v[1]) for k, v in j["cases"].items() if v[0] != "passed"][:10]
    lat = rep["latency"]
    assert lat["unit"] == "ns" and lat["end_to_end"]["clips"] == lat["model_only"]["clips"] == 300
    for st in ("frontend", "lstm", "head", "total", "wall_seconds"):
        m = lat["end_to_end"][st]
        assert 0 < m["median"] <= m["p90"] <= m["max"], (st, m)
    assert (tmp_path / "plots" / "latency.png").stat().st_size > 10_000
    assert rep["model_only"]["output_exact_fraction"] == 1.0, "model parity: INFER must equal TFLite Micro exactly"
    assert rep["end_to_end"]["model_exact_on_device_features_fraction"] == 1.0
    assert status == 0, rep["failures"]
    assert rep["device_accuracy"] == rep["reference_accuracy"]


@real_firmware
@needs_fsdd
@pytest.mark.qemu
@pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                    reason="qemu-system-arm or arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("board,limit", [("mps2-an386", 20), ("netduinoplus2", 5)])
def test_real_qemu_board_subset(capsys, tmp_path, board: str, limit: int) -> None:
    # No resends needed: the host keeps to the board's receive window (docs/protocol.md, "Flow
    # control"), so the STM32's interrupt-fed ring cannot overflow even on a loaded machine.
    status, summary, rep = _real_run(capsys, tmp_path, f"emulator:{board}", "--limit", str(limit))
    assert rep["checked"] == limit and rep["errors"] == 0
    link = rep["link"]
    assert link["complete"] and link["rx_dropped"] == 0 and link["frames_bad"] == {
        "bad_crc": 0, "bad_frame": 0, "too_large": 0}
    assert rep["device_stats"]["resent"] == 0
    assert link["rx_window"] == (2048 if board == "netduinoplus2" else 0)
    assert rep["device"]["board"] == board and rep["cost"]["unit"]
    assert rep["model_only"]["output_exact_fraction"] == 1.0
    assert status == 0, rep["failures"]
