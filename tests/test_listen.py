"""python -m host.listen: a recording streamed to real firmware, checked against the Python reference.

- emulator:posix (the real firmware built for the host, on a pty): a stream of
  test-split clips made by train/streamgen.py and a silent recording; with
  --check the device's events must be identical to
  train.stream.reference_events (digit, first and last sample, the ten int8
  outputs) and the exit status 0; the report holds both lists, the digit
  string and the cost per second of audio.
- emulator:mps2-an386 (QEMU): one short stream, the same check.
- Bad input: a missing file, a file that is not a WAV: exit 2 with a message
  naming the file; a stereo 16 kHz file is mixed and resampled, and said so.

The protocol messages themselves (STREAM encode/decode, a resent chunk not
applied twice, the end-of-stream flush) are tested in tests/test_protocol.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from host import listen
from tests.conftest import write_wav

ROOT = Path(__file__).resolve().parent.parent
RELEASED = ROOT / "models" / "released"
GENERATED_GRAPH = ROOT / "firmware" / "generated" / "sd_model_graph.h"

real_firmware = pytest.mark.skipif(
    not (GENERATED_GRAPH.exists() and (RELEASED / "model_int8.tflite").exists()),
    reason="real firmware not ready (run `python -m convert.quantize`)")
needs_qemu = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
    reason="arm-none-eabi-gcc or qemu-system-arm not installed (run firmware/tools/install-deps.sh)")


class _Clip:
    def __init__(self, samples: np.ndarray, digit: int) -> None:
        self.samples, self.digit = samples, digit


def _test_split_clips(fsdd_dir: Path, per_digit: int = 2) -> list[_Clip]:
    """A few clips of FSDD's official test split (indices 0-4), every digit."""
    from train.data import OFFICIAL_TEST_INDICES, parse_name, read_wav, recordings_dir

    clips: list[_Clip] = []
    count = {d: 0 for d in range(10)}
    for path in sorted(recordings_dir(fsdd_dir).glob("*.wav")):
        parsed = parse_name(path.name)
        if parsed and parsed[2] in OFFICIAL_TEST_INDICES and count[parsed[0]] < per_digit:
            clips.append(_Clip(read_wav(path, 8000), parsed[0]))
            count[parsed[0]] += 1
    return clips


@pytest.fixture(scope="module")
def stream_wav(fsdd_dir: Path, tmp_path_factory) -> tuple[Path, str]:
    """A 3-digit stream (20 dB SNR pink noise, level drift and step) of test-split clips."""
    from train import streamgen as G

    st = G.make_stream(_test_split_clips(fsdd_dir), np.random.default_rng(12), n_digits=3, snr_db=20.0)
    return write_wav(tmp_path_factory.mktemp("listen") / "stream.wav", st.samples), st.digits


def run_listen(capsys, *args: str) -> tuple[int, list[str], str]:
    status = listen.main(["--no-progress", "--model", str(RELEASED), *args])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


def _check_report(path: Path, out: list[str]) -> dict:
    rep = json.loads(path.read_text())
    assert rep["identical"] is True and rep["failures"] == [] and rep["exit_status"] == 0
    assert rep["events"] == rep["reference_events"]
    from train.labels import Labels

    names = list(Labels.load(RELEASED).names)  # the digits, then noise and other
    for e in rep["events"]:
        assert set(e) == {"digit", "label", "start", "end", "outputs"} and len(e["outputs"]) == len(names)
        # a digit's label is its name; noise and other carry digit null; a rejected event has neither
        if e["digit"] is not None:
            assert e["label"] == str(e["digit"])
        assert e["label"] is None or e["label"] in names
        assert (e["digit"] is None) == (e["label"] is None or not e["label"].isdigit())
        assert 0 <= e["start"] <= e["end"] < rep["samples"]
    assert rep["digits"] == "".join(str(e["digit"]) for e in rep["events"] if e["digit"] is not None)
    assert rep["labels"] == names and rep["heard"] == [e["label"] for e in rep["events"] if e["label"]]
    assert out[-1] == f"digits: {rep['digits']}"  # one line per event, then the string
    assert len(out) == len(rep["events"]) + 1
    ps = rep["cost"]["per_second_of_audio"]
    assert rep["frames"] == rep["samples"] // 256 and ps["frontend"] > 0
    return rep


@real_firmware
def test_listen_check_posix_stream_and_silence(capsys, stream_wav, tmp_path) -> None:
    wav, truth = stream_wav
    report = tmp_path / "listen.json"
    status, out, err = run_listen(capsys, "--port", "emulator:posix", "--wav", str(wav), "--check",
                                  "--report", str(report))
    assert status == 0, err
    rep = _check_report(report, out)
    assert len(rep["events"]) >= 2, (rep["events"], truth)
    assert rep["cost"]["unit"] == "ns" and rep["cost"]["per_second_of_audio"]["lstm"] > 0
    assert "identical events" in err

    silent = write_wav(tmp_path / "silence.wav", np.zeros(3 * 8000, np.int16))
    status, out, err = run_listen(capsys, "--port", "emulator:posix", "--wav", str(silent), "--check",
                                  "--report", str(report))
    assert status == 0, err
    rep = _check_report(report, out)
    assert rep["events"] == [] and rep["digits"] == "" and rep["cost"]["per_second_of_audio"]["lstm"] == 0


@real_firmware
@needs_qemu
@pytest.mark.parametrize("encoding", ["pcm16", "mulaw"])
def test_listen_check_qemu_mps2(capsys, stream_wav, tmp_path, encoding) -> None:
    """The stream through STREAM messages to emulated mps2-an386; with --mulaw as G.711 bytes, which the
    Cortex-M decodes, and the reference runs on the decoded samples."""
    from train import streamgen as G
    from tests.conftest import real_fsdd

    fsdd = real_fsdd()
    if fsdd is None:
        pytest.skip("FSDD not found")
    st = G.make_stream(_test_split_clips(fsdd, 1), np.random.default_rng(3), n_digits=1, snr_db=20.0, gap_s=(0.6, 0.8))
    wav = write_wav(tmp_path / "short.wav", st.samples)
    report = tmp_path / "qemu.json"
    status, out, err = run_listen(capsys, "--port", "emulator:mps2-an386", "--wav", str(wav), "--check",
                                  "--report", str(report), *(["--mulaw"] if encoding == "mulaw" else []))
    assert status == 0, err
    rep = _check_report(report, out)
    assert rep["device"]["board"] == "mps2-an386" and rep["cost"]["unit"] == "instructions"
    assert rep["encoding"] == encoding
    assert len(rep["events"]) >= 1


def test_listen_bad_input(capsys, tmp_path) -> None:
    missing = tmp_path / "nope.wav"
    status, out, err = run_listen(capsys, "--port", "emulator:posix", "--wav", str(missing))
    assert status == 2 and "nope.wav" in err and "no such file" in err and out == []
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav file at all" * 10)
    status, out, err = run_listen(capsys, "--port", "emulator:posix", "--wav", str(junk))
    assert status == 2 and "junk.wav" in err
    # stereo at 16 kHz: mixed to mono and resampled, and said so
    rng = np.random.default_rng(0)
    stereo = (rng.standard_normal((16000, 2)) * 1000).astype(np.int16)
    path = write_wav(tmp_path / "stereo16k.wav", stereo, sr=16000)
    notes: list[str] = []
    x = listen._read_input(str(path), 8000, notes)
    assert x.dtype == np.int16 and x.ndim == 1 and abs(len(x) - 8000) <= 1
    text = " ".join(notes).lower()
    assert "stereo16k.wav" in text and "resampl" in text and ("mono" in text or "channel" in text)
    with pytest.raises(SystemExit):
        listen.main(["--port", "emulator"])  # --wav is required
    assert "--wav" in capsys.readouterr().err


def test_listen_help_names_the_options(capsys) -> None:
    with pytest.raises(SystemExit):
        listen.main(["--help"])
    text = capsys.readouterr().out
    for opt in ("--port", "--wav", "--check", "--report", "--chunk-samples", "Exit status"):
        assert opt in text
