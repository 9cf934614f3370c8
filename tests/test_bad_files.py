"""Bad input files through every entry point (train, train.evaluate, convert.quantize, host.parity).

One data folder mixes good clips with every kind of bad file (not a regular
file, empty, truncated, not a WAV, compressed or unsupported encodings,
implausible rate, no samples, too long, NaN samples, a name without a label)
and with odd but readable files (8/24/32-bit, float, stereo, other rates).
Each entry point runs on it through its real command line in a subprocess and
must: finish with the exit status documented for a batch with bad files,
name every bad file with its problem on stderr, list every bad file in its
JSON output, and note (not reject) the converted files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, write_wav
from train import data as fsdd

RELEASED = ROOT / "models" / "released"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# ---- building the files ------------------------------------------------------------------------


def _wav_bytes(tag: int, channels: int, rate: int, bits: int, data: bytes, *, block_align: int | None = None,
               data_size: int | None = None) -> bytes:
    """A RIFF/WAVE file with a 16-byte fmt chunk, written by hand (any tag, rate, size field)."""
    ba = block_align if block_align is not None else channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * ba, ba, bits)
    size = len(data) if data_size is None else data_size
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _pcm16(samples: np.ndarray, rate: int = 8000) -> bytes:
    return _wav_bytes(1, 1, rate, 16, samples.astype("<i2").tobytes())


def _int24(samples: np.ndarray, rate: int = 8000, channels: int = 1) -> bytes:
    v = (samples.astype(np.int32) << 8).reshape(-1)
    raw = np.stack([(v >> s) & 0xFF for s in (0, 8, 16)], axis=1).astype(np.uint8).tobytes()
    return _wav_bytes(1, channels, rate, 24, raw)


#: name -> regular expression the problem must match, for files every entry point must refuse.
FAILURES: dict[str, str] = {
    "0_bad_0.wav": r"is a directory",
    "1_bad_0.wav": r"broken symbolic link",
    "2_bad_0.wav": r"is a FIFO, not a regular file",
    "3_bad_0.wav": r"file is empty \(0 bytes\)",
    "4_bad_0.wav": r"truncated or damaged WAV \(Reached EOF prematurely",
    "5_bad_0.wav": r"truncated or damaged WAV \(header cut short",
    "6_bad_0.wav": r"not a WAV file \(starts with b'this'",
    "7_bad_0.wav": r"not a WAV file \(looks like MP3",
    "8_bad_0.wav": r"unsupported WAV encoding ALAW",
    "9_bad_0.wav": r"unsupported WAV encoding MULAW",
    "0_bad_1.wav": r"unsupported WAV encoding MPEGLAYER3",
    "1_bad_1.wav": r"WAV holds no samples",
    "2_bad_1.wav": r"sample rate 1 Hz is outside 4000-384000 Hz",
    "3_bad_1.wav": r"clip is 61\.0 s long, over the 60 s limit",
    "4_bad_1.wav": r"float samples contain NaN or infinity",
    "5_bad_1.wav": r"unsupported sample type int64",
    "6_bad_1.wav": r"truncated or damaged WAV \(ZeroDivisionError",
    "7_bad_1.wav": r"truncated or damaged WAV \(UnboundLocalError",
}
NON_REGULAR = ("0_bad_0.wav", "1_bad_0.wav", "2_bad_0.wav")
if not IS_ROOT:  # root reads a mode-000 file anyway
    FAILURES["8_bad_1.wav"] = r"cannot be read \(Permission denied\)"
UNLABELED = "hello.wav"  # a good recording whose name carries no label
#: name -> regular expression of its data note, for readable files that are converted.
CONVERTED: dict[str, str] = {
    "0_odd_0.wav": r"converted 8-bit unsigned samples",
    "1_odd_0.wav": r"converted 24/32-bit integer samples",
    "2_odd_0.wav": r"converted 24/32-bit integer samples",
    "3_odd_0.wav": r"converted 32-bit float samples",
    "4_odd_0.wav": r"converted 64-bit float samples",
    "5_odd_0.wav": r"mixed 2 channels to mono",
    "6_odd_0.wav": r"resampled from 44100 Hz to 8000 Hz",
    "7_odd_0.wav": r"resampled from 16000 Hz to 8000 Hz",
    "8_odd_0.wav": r"resampled from 11025 Hz to 8000 Hz",
    "9_odd_0.wav": r"resampled from 48000 Hz to 8000 Hz",
}


def _resample(x: np.ndarray, rate: int) -> np.ndarray:
    from scipy.signal import resample_poly

    g = np.gcd(rate, 8000)
    return np.round(resample_poly(x.astype(np.float64), rate // g, 8000 // g)).clip(-32768, 32767).astype(np.int16)


def add_bad_files(folder: Path, voice: dict[int, np.ndarray]) -> None:
    """Writes every file of FAILURES, CONVERTED and UNLABELED into `folder`; `voice[d]` is a clip of digit d."""
    x = voice[0]
    (folder / "0_bad_0.wav").mkdir()
    (folder / "1_bad_0.wav").symlink_to(folder / "gone" / "1_bad_0.wav")
    os.mkfifo(folder / "2_bad_0.wav")  # opening it would block: it must never be opened
    (folder / "3_bad_0.wav").write_bytes(b"")
    (folder / "4_bad_0.wav").write_bytes(_pcm16(x)[:2000])  # the header promises more data than is there
    (folder / "5_bad_0.wav").write_bytes(_pcm16(x)[:30])  # cut in the middle of the fmt chunk
    (folder / "6_bad_0.wav").write_bytes(b"this is a text file, not audio\n" * 20)
    (folder / "7_bad_0.wav").write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x0a" + b"\xff\xfb\x90\x64" + bytes(600))
    (folder / "8_bad_0.wav").write_bytes(_wav_bytes(6, 1, 8000, 8, bytes(4000)))  # A-law
    (folder / "9_bad_0.wav").write_bytes(_wav_bytes(7, 1, 8000, 8, bytes(4000)))  # u-law
    (folder / "0_bad_1.wav").write_bytes(_wav_bytes(0x55, 1, 8000, 0, bytes(4000), block_align=1))  # MP3 in WAV
    (folder / "1_bad_1.wav").write_bytes(_pcm16(np.zeros(0, np.int16)))
    (folder / "2_bad_1.wav").write_bytes(_pcm16(x, rate=1))
    (folder / "3_bad_1.wav").write_bytes(_pcm16(np.resize(x, 61 * 8000)))
    nan = (x / 32768.0).astype("<f4")
    nan[100] = np.nan
    (folder / "4_bad_1.wav").write_bytes(_wav_bytes(3, 1, 8000, 32, nan.tobytes()))
    (folder / "5_bad_1.wav").write_bytes(_wav_bytes(1, 1, 8000, 64, (x.astype("<i8") << 48).tobytes()))
    (folder / "6_bad_1.wav").write_bytes(_wav_bytes(1, 0, 8000, 16, x.astype("<i2").tobytes(), block_align=0))
    (folder / "7_bad_1.wav").write_bytes(b"RIFF\x04\x00\x00\x00WAVE")  # no chunks at all
    if not IS_ROOT:
        (folder / "8_bad_1.wav").write_bytes(_pcm16(x))
        (folder / "8_bad_1.wav").chmod(0)
    write_wav(folder / UNLABELED, voice[7])
    (folder / "notes.txt").write_text("not a recording\n")
    # readable, converted
    v = {d: voice[d].astype(np.int32) for d in voice}
    write_wav(folder / "0_odd_0.wav", ((v[0] >> 8) + 128).astype(np.uint8))
    (folder / "1_odd_0.wav").write_bytes(_int24(voice[1]))
    write_wav(folder / "2_odd_0.wav", (v[2] << 16).astype(np.int32))
    write_wav(folder / "3_odd_0.wav", (v[3] / 32768.0).astype(np.float32))
    write_wav(folder / "4_odd_0.wav", (v[4] / 32768.0).astype(np.float64))
    write_wav(folder / "5_odd_0.wav", np.stack([voice[5], voice[5] // 2], axis=1))
    write_wav(folder / "6_odd_0.wav", _resample(voice[6], 44100), sr=44100)
    write_wav(folder / "7_odd_0.wav", _resample(voice[7], 16000), sr=16000)
    write_wav(folder / "8_odd_0.wav", _resample(voice[8], 11025), sr=11025)
    st = _resample(voice[9], 48000)
    (folder / "9_odd_0.wav").write_bytes(_int24(np.stack([st, st], axis=1), rate=48000, channels=2))


def _real_clips(fsdd_dir: Path) -> dict[str, Path]:
    return {p.name: p for p in fsdd.recordings_dir(fsdd_dir).glob("*.wav")}


def _good_clips(fsdd_dir: Path, indices: tuple[int, ...], n_speakers: int) -> list[Path]:
    """Clips of the first `n_speakers` speakers (sorted), every digit, the given indices."""
    clips = _real_clips(fsdd_dir)
    speakers = sorted({fsdd.parse_name(n)[1] for n in clips})[:n_speakers]
    return [clips[f"{d}_{s}_{i}.wav"] for d in range(10) for s in speakers for i in indices]


def _voice(fsdd_dir: Path) -> dict[int, np.ndarray]:
    clips = _good_clips(fsdd_dir, (2,), 1)
    return {d: fsdd.read_wav(p) for d, p in enumerate(clips)}


def _make_folder(root: Path, good: list[Path], voice: dict[int, np.ndarray]) -> Path:
    rec = root / "recordings"
    rec.mkdir(parents=True)
    for p in good:
        shutil.copy(p, rec / p.name)
    add_bad_files(rec, voice)
    return root


# ---- read_wav / load_dataset in this process --------------------------------------------------


@pytest.fixture(scope="module")
def voice(fsdd_dir) -> dict[int, np.ndarray]:
    return _voice(fsdd_dir)


@pytest.fixture(scope="module")
def bad_only(tmp_path_factory, voice) -> Path:
    return _make_folder(tmp_path_factory.mktemp("bad_only"), [], voice)


@pytest.mark.parametrize("name", sorted(FAILURES))
def test_read_wav_names_file_problem_and_fix(bad_only, name):
    with pytest.raises(fsdd.WavError) as info:
        fsdd.read_wav(bad_only / "recordings" / name)
    msg = str(info.value)
    assert msg.startswith(str(bad_only / "recordings" / name) + ": "), msg
    assert re.search(FAILURES[name], msg), msg
    assert "\n" not in msg  # one line


@pytest.mark.parametrize("name", sorted(CONVERTED))
def test_read_wav_converts_and_notes(bad_only, voice, name):
    notes: list[str] = []
    y = fsdd.read_wav(bad_only / "recordings" / name, notes=notes)
    assert y.dtype == np.int16 and y.ndim == 1
    assert any(re.search(CONVERTED[name], n) and n.startswith(name) for n in notes), notes
    ref = voice[int(name[0])]
    if "resampled" not in CONVERTED[name]:  # same length, close to the original
        assert len(y) == len(ref)
        scale = 0.75 if name == "5_odd_0.wav" else 1.0  # the stereo mix: (x + x // 2) / 2
        assert np.max(np.abs(y - scale * ref.astype(np.float64))) <= 257, name
    else:  # about the original's length after going there and back
        assert abs(len(y) - len(ref)) <= 2


def test_long_clip_limit_can_be_lifted(bad_only):
    assert len(fsdd.read_wav(bad_only / "recordings" / "3_bad_1.wav", max_seconds=None)) == 61 * 8000


def test_big_endian_rifx_is_read(tmp_path, voice):
    x = voice[4]
    fmt = struct.pack(">HHIIHH", 1, 1, 8000, 16000, 2, 16)
    raw = x.astype(">i2").tobytes()
    body = b"WAVE" + b"fmt " + struct.pack(">I", len(fmt)) + fmt + b"data" + struct.pack(">I", len(raw)) + raw
    (tmp_path / "4_be_0.wav").write_bytes(b"RIFX" + struct.pack(">I", len(body)) + body)
    assert np.array_equal(fsdd.read_wav(tmp_path / "4_be_0.wav"), x)


def test_folder_of_bad_files_only_is_an_error(bad_only):
    """Nothing usable: load_dataset raises even when not strict, listing every file."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        rec = Path(tmp) / "recordings"
        rec.mkdir()
        for name in ("3_bad_0.wav", "6_bad_0.wav", "8_bad_0.wav"):
            shutil.copy(bad_only / "recordings" / name, rec / name)
        with pytest.raises(fsdd.DatasetError, match=r"3 of 3 files") as info:
            fsdd.load_dataset(tmp, strict=False)
        for name in ("3_bad_0.wav", "6_bad_0.wav", "8_bad_0.wav"):
            assert name in str(info.value)


def test_load_dataset_lists_every_bad_file_and_note(bad_only):
    ds = fsdd.load_dataset(bad_only, strict=False)
    failed = {Path(e.path).name: e.problem for e in ds.errors}
    assert set(failed) == set(FAILURES) | {UNLABELED}
    assert "has no label" in failed[UNLABELED]
    assert {c.path.name for c in ds.clips} == set(CONVERTED)
    for name, pattern in CONVERTED.items():
        assert any(n.startswith(name) and re.search(pattern, n) for n in ds.notes), name
    assert "ignored 1 file(s) not ending in .wav: notes.txt" in ds.notes
    assert not [n for n in ds.notes if n.startswith(tuple(FAILURES))]  # a refused file leaves no note
    unlabeled = fsdd.load_dataset(bad_only, strict=False, require_labels=False)
    assert UNLABELED in {c.path.name for c in unlabeled.clips}


def test_train_cli_folder_with_no_usable_file_exits_2(bad_only, tmp_path, capsys):
    from train.__main__ import main as train_main

    rec = tmp_path / "data" / "recordings"
    rec.mkdir(parents=True)
    names = ("3_bad_0.wav", "7_bad_0.wav", "9_bad_0.wav")
    for name in names:
        shutil.copy(bad_only / "recordings" / name, rec / name)
    rc = train_main(["--data-dir", str(rec.parent), "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "error: 3 of 3 files" in err, err
    for name in names:
        assert re.search(rf"{name}: {FAILURES[name]}", err), name
    assert not (tmp_path / "o").exists()


# ---- the command lines ------------------------------------------------------------------------


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _assert_named_on_stderr(stderr: str, names) -> None:
    """Each bad file has a line naming it and its problem."""
    lines = stderr.splitlines()
    for name in names:
        hits = [ln for ln in lines if name in ln and re.search(FAILURES.get(name, r"has no label"), ln)]
        assert hits, f"{name}: no stderr line names it with its problem\n{stderr[-4000:]}"


def _assert_listed(skipped: list[str], names) -> None:
    by_name = {}
    for entry in skipped:
        path, _, problem = entry.partition(": ")
        by_name[Path(path).name] = problem
    assert set(by_name) == set(names), sorted(set(by_name) ^ set(names))
    for name in names:
        assert re.search(FAILURES.get(name, r"has no label"), by_name[name]), (name, by_name[name])


@pytest.fixture(scope="module")
def mixed_dir(tmp_path_factory, fsdd_dir, voice) -> Path:
    """2 speakers x 10 digits x (2 test + 3 training) good clips, plus every bad and odd file."""
    return _make_folder(tmp_path_factory.mktemp("mixed"), _good_clips(fsdd_dir, (0, 1, 5, 6, 7), 2), voice)


@pytest.fixture(scope="module")
def trained(mixed_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    proc = _cli("train", "--data-dir", str(mixed_dir), "--out", str(out), "--epochs", "2", "--patience", "2",
                "--lstm-units", "8", "--dense-units", "8", "--no-progress", "--no-reject")
    return out, proc


def test_train_skips_and_reports_bad_files(trained):
    out, proc = trained
    assert proc.returncode == 0, proc.stderr[-4000:]
    bad = set(FAILURES) | {UNLABELED}
    _assert_named_on_stderr(proc.stderr, bad)
    assert f"{len(bad)} file(s) skipped, {20 * 5 + len(CONVERTED)} used" in proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    _assert_listed(metrics["skipped_files"], bad)
    _assert_listed(json.loads(proc.stdout)["skipped_files"], bad)
    assert metrics["n_train"] + metrics["n_test"] == 20 * 5 + len(CONVERTED)
    for name, pattern in CONVERTED.items():
        assert any(n.startswith(name) and re.search(pattern, n) for n in metrics["data_notes"]), name
        assert re.search(rf"INFO .*{re.escape(name)}: {pattern}", proc.stderr), name
    assert not [n for n in metrics["data_notes"] if n.startswith(tuple(FAILURES))]
    # each note is printed once, not again with every later file
    assert proc.stderr.count("6_odd_0.wav: resampled") == 1


def test_evaluate_skips_and_reports_bad_files(trained, mixed_dir):
    out, _ = trained
    proc = _cli("train.evaluate", "--model", str(out), "--data-dir", str(mixed_dir), "--no-progress")
    assert proc.returncode == 0, proc.stderr[-4000:]
    bad = set(FAILURES) | {UNLABELED}
    _assert_named_on_stderr(proc.stderr, bad)
    res = json.loads(proc.stdout)
    _assert_listed(res["skipped_files"], bad)
    assert res["clips"] == 20 * 2 + len(CONVERTED)  # test split: indices 0 and 1, and the odd files (index 0)
    assert any(n.startswith("9_odd_0.wav: resampled from 48000 Hz") for n in res["data_notes"])


def test_quantize_skips_and_reports_bad_files(trained, mixed_dir, tmp_path):
    out, _ = trained
    proc = _cli("convert.quantize", "--model", str(out), "--out", str(tmp_path), "--c-out", "", "--data-dir",
                str(mixed_dir), "--qat-epochs", "0", "--rep-samples", "16", "--no-arena", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-4000:]
    bad = set(FAILURES) | {UNLABELED}
    _assert_named_on_stderr(proc.stderr, bad)
    report = json.loads((tmp_path / "report.json").read_text())
    _assert_listed(report["skipped_files"], bad)
    _assert_listed(json.loads(proc.stdout)["skipped_files"], bad)
    assert report["test_clips"] == 20 * 2 + len(CONVERTED)
    assert any(n.startswith("5_odd_0.wav: mixed 2 channels") for n in report["data_notes"])
    assert (tmp_path / "model_int8.tflite").stat().st_size > 0


# ---- host.parity on the posix build of the firmware ----------------------------------------------

_REAL_MISSING = [str(f.relative_to(ROOT)) for f in (ROOT / "firmware" / "generated" / "sd_model_graph.h",
                                                      RELEASED / "model_int8.tflite") if not f.exists()]
real_firmware = pytest.mark.skipif(bool(_REAL_MISSING), reason=f"real firmware not ready: {', '.join(_REAL_MISSING)} missing")


@pytest.fixture(scope="module")
def parity_run(tmp_path_factory, fsdd_dir, voice):
    """host.parity --port emulator:posix on 5 good test clips and every bad and odd file."""
    root = _make_folder(tmp_path_factory.mktemp("parity"), _good_clips(fsdd_dir, (0,), 1)[::2], voice)
    report = root / "parity.json"
    proc = _cli("host.parity", "--port", "emulator:posix", "--model", str(RELEASED), "--data-dir", str(root),
                "--report", str(report), "--no-progress")
    return proc, json.loads(report.read_text()) if report.exists() else None


@real_firmware
def test_parity_reports_bad_files_as_input_rows(parity_run):
    proc, rep = parity_run
    assert rep is not None, proc.stderr[-4000:]
    # parity holds on every readable clip: unreadable files are rows, not failures (exit 0)
    assert proc.returncode == 0 == rep["exit_status"], (rep["failures"], proc.stderr[-4000:])
    rows = {r["file"]: r for r in rep["rows"]}
    bad = set(FAILURES) - set(NON_REGULAR)
    _assert_named_on_stderr(proc.stderr, bad)
    for name in bad:
        err = rows[name]["error"]
        assert err and err["stage"] == "input" and re.search(FAILURES[name], err["message"]), (name, err)
    input_rows = {n for n, r in rows.items() if r["error"] and r["error"]["stage"] == "input"}
    assert bad <= input_rows <= set(FAILURES), input_rows
    assert rep["error_kinds"]["input"] == len(input_rows) and rep["error_kinds"]["device"] == 0
    # an unlabeled file is checked without a label; converted files are checked like any other
    assert rows[UNLABELED]["error"] is None and rows[UNLABELED]["label"] is None
    for name in list(CONVERTED) + [UNLABELED]:
        assert rows[name]["device_label"] == rows[name]["reference_label"] is not None, name
    assert rep["checked"] == 5 + len(CONVERTED) + 1


@real_firmware
def test_parity_reports_non_regular_wav_entries_and_notes(parity_run):
    proc, rep = parity_run
    rows = {r["file"]: r for r in rep["rows"]}
    for name in NON_REGULAR:
        assert name in rows and rows[name]["error"]["stage"] == "input", name
        assert re.search(FAILURES[name], rows[name]["error"]["message"]), name
    _assert_named_on_stderr(proc.stderr, NON_REGULAR)
    for name, pattern in CONVERTED.items():
        assert any(n.startswith(name) and re.search(pattern, n) for n in rep["data_notes"]), name
        assert re.search(rf"{re.escape(name)}: {pattern}", proc.stderr), name
