"""python -m host.listen --mic: live input through a stand-in for sounddevice, real firmware on a pty.

No test needs a microphone or PortAudio: ``sys.modules["sounddevice"]`` is
replaced by host/standin_mic.py's stand-in (imported as ``FakeSounddevice``), one input device whose
``InputStream`` calls host.listen's callback from its own thread with blocks
of a known recording (test-split clips made into a stream by
train/streamgen.py, as in tests/test_listen.py), faster than real time, and
silence after it. The board is the real firmware built for the host
(emulator:posix).

- the digits and events the board reports equal the Python reference's on
  exactly the samples sent (--check, exit 0); chunks go out while capture
  is still going on (the fake holds back the second half of the recording
  until the board has acknowledged samples of the first); an input overflow
  is a warning and counted in the report; --save-wav writes what was sent;
- a device that refuses 8 kHz is captured at its rate and resampled (said
  so), and --duration stops a capture that would go on for ever;
- Ctrl-C mid-stream (a real SIGINT) ends the stream, prints the summary and
  the digit string, exit 130, a partial report;
- a chunk that fails for good restarts the stream from sample 0 with every
  sample captured so far, and the events are still the reference's;
- no PortAudio library, no sounddevice, no input device, an unknown
  --device: exit 2 with one line naming the fix, before any board starts;
- the resampler, block by block, equals scipy's resample_poly on the whole
  recording; a full queue drops blocks and says so; a device that stops
  delivering audio ends the input;
- the same loop with --wav: a Ctrl-C ends the stream where it is (exit
  130, --check on the part sent), and the emulated board is out of the
  terminal's process group, so a real Ctrl-C leaves it running until the
  stream is ended.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from host import audio_in, listen
from host import protocol as p
from host.standin_mic import StandinFlags as FakeFlags
from host.standin_mic import StandinSounddevice as FakeSounddevice
from tests.test_listen import RELEASED, _test_split_clips, real_firmware, run_listen

SR = 8000


@pytest.fixture(scope="module")
def recording(fsdd_dir: Path) -> np.ndarray:
    """A 3-digit stream (20 dB SNR pink noise) of test-split clips, about 4 s."""
    from train import streamgen as G

    st = G.make_stream(_test_split_clips(fsdd_dir), np.random.default_rng(12), n_digits=3, snr_db=20.0)
    return st.samples


def _install(monkeypatch, fake) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", fake)


def _record_chunks(monkeypatch, gate: tuple[int, threading.Event] | None = None,
                   fail_at: int | None = None) -> list[tuple[int, int, bool, bool]]:
    """Wrap ListenRun._send_chunk: log (offset, n, begin, end); set ``gate``'s event once the board
    has acknowledged that many samples; make the chunk at offset ``fail_at`` fail for good once."""
    log: list[tuple[int, int, bool, bool]] = []
    real = listen.ListenRun._send_chunk
    failed = []

    def wrapped(self, offset, x, *, begin, end):
        if fail_at is not None and offset == fail_at and not failed:
            failed.append(offset)
            raise p.Timeout("injected: no answer to this chunk after every resend")
        ack = real(self, offset, x, begin=begin, end=end)
        log.append((offset, len(x), begin, end))
        if gate is not None and offset + len(x) >= gate[0]:
            gate[1].set()
        return ack

    monkeypatch.setattr(listen.ListenRun, "_send_chunk", wrapped)
    return log


def _reference_events(samples: np.ndarray) -> list[dict]:
    from convert.reference import Reference
    from train import stream as S

    r = Reference.from_dir(RELEASED)
    evs, _ = S.reference_events(samples, r.cfg, r.infer, r.input_scale, r.input_zero_point, S.DEFAULT_STREAM,
                                labels=r.labels)
    return [e.to_dict() for e in evs]


def _check_events(rep: dict, out: list[str]) -> None:
    assert rep["events"] == rep["reference_events"]
    assert out[-1] == f"digits: {rep['digits']}" and len(out) == len(rep["events"]) + 1
    for line, e in zip(out, rep["events"]):
        what = f"digit {e['digit']}" if e["digit"] is not None else "rejected"
        assert what in line and f"(samples {e['start']}..{e['end']})" in line


@real_firmware
def test_mic_streams_live_and_matches_reference(capsys, monkeypatch, recording, tmp_path) -> None:
    n = len(recording)
    acked = threading.Event()
    # the fake holds the second half back until the board has acknowledged a quarter
    fake = FakeSounddevice(recording, overflow_blocks=(5,), gate=(n // 2, acked))
    _install(monkeypatch, fake)
    chunks = _record_chunks(monkeypatch, (n // 4, acked))
    report, saved = tmp_path / "mic.json", tmp_path / "mic.wav"
    duration = repr(n / SR)
    status, out, err = run_listen(capsys, "--port", "emulator:posix", "--mic", "--duration", duration, "--check",
                                  "--report", str(report), "--save-wav", str(saved))
    assert status == 0, err
    rep = json.loads(report.read_text())
    assert rep["identical"] is True and rep["failures"] == [] and rep["exit_status"] == 0, err
    _check_events(rep, out)
    assert len(rep["events"]) >= 2
    # the samples sent are the recording, all of it and nothing more (--duration)
    assert rep["samples"] == n and rep["ended"] is True and rep["input"]["stopped_by"] == "duration"
    assert rep["wav"] is None and rep["input"]["source"] == "mic" and rep["input"]["device"] == "Fake Mic"
    assert rep["input"]["capture_rate"] == SR and rep["input"]["resampled"] is False
    # chunks went out while the microphone was still capturing: the fake held the second half back
    # until the board had acknowledged the first
    assert not fake.gate_timed_out and acked.is_set()
    assert chunks[0][2] and chunks[-1][3] and sum(c[1] for c in chunks) == n
    # the overflow PortAudio flagged: a warning and the count
    assert rep["input"]["overflows"] == 1 and "input overflow" in err
    assert rep["input"]["dropped_samples"] == 0
    assert len(rep["input"]["event_latency_seconds"]) == len(rep["events"])
    # --save-wav holds exactly what was sent; --wav replays it as it is
    from train.data import read_wav

    assert np.array_equal(read_wav(saved, SR, max_seconds=None), recording)
    assert rep["input"]["saved_wav"] == str(saved)
    assert "latency" in err and "microphone 'Fake Mic'" in err


@real_firmware
def test_mic_resampled_and_duration_stops(capsys, monkeypatch, recording, tmp_path) -> None:
    """A 48 kHz-only device: captured at 48 kHz, resampled to 8 kHz; --duration ends a capture that
    would go on for ever (the fake delivers silence after the recording)."""
    from scipy.signal import resample_poly

    at48 = np.clip(np.rint(resample_poly(recording.astype(np.float64), 6, 1)), -32768, 32767).astype(np.int16)
    fake = FakeSounddevice(at48, rate=48000, takes_8k=False, speed=16.0)
    _install(monkeypatch, fake)
    report = tmp_path / "mic48.json"
    status, out, err = run_listen(capsys, "--port", "emulator:posix", "--mic", "--device", "0", "--duration", "2.5",
                                  "--check", "--report", str(report))
    assert status == 0, err
    rep = json.loads(report.read_text())
    assert rep["identical"] is True and rep["samples"] == 20000 and rep["input"]["stopped_by"] == "duration", err
    _check_events(rep, out)
    assert rep["input"]["capture_rate"] == 48000 and rep["input"]["resampled"] is True
    assert "does not take 8000 Hz" in err and "resampling to 8000 Hz" in err
    assert any("resampling" in note for note in rep["data_notes"])
    assert not fake.streams[0].active  # capture stopped


@real_firmware
def test_mic_interrupt_ends_stream(capsys, monkeypatch, recording, tmp_path) -> None:
    """Ctrl-C (a real SIGINT) halfway: the stream is ended with END, the events of what was captured
    are printed, the digit string follows, exit 130 and a partial report."""
    half = (len(recording) // 2) // 256 * 256
    fake = FakeSounddevice(recording, interrupt_at=half)
    _install(monkeypatch, fake)
    blocksize = int(round(SR * audio_in.BLOCK_SECONDS))
    captured = -(-half // blocksize) * blocksize  # the fake delivers whole blocks
    report = tmp_path / "int.json"
    status, out, err = run_listen(capsys, "--port", "emulator:posix", "--mic", "--check", "--report", str(report))
    assert status == 130, err
    rep = json.loads(report.read_text())
    assert rep["interrupted"] is True and rep["exit_status"] == 130 and rep["ended"] is True, err
    assert rep["input"]["stopped_by"] == "interrupt"
    assert rep["samples"] == captured == rep["input"]["samples_taken"]
    _check_events(rep, out)  # --check ran on what was sent
    assert rep["identical"] is True
    assert rep["events"] == _reference_events(recording[:captured])
    assert "stopping: ending the stream" in err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C handling given back


@real_firmware
def test_mic_restart_resends_what_was_captured(capsys, monkeypatch, recording, tmp_path) -> None:
    """A chunk that fails for good mid-stream: RESET, then the stream again from sample 0 with every
    sample captured so far, then on with the microphone."""
    fake = FakeSounddevice(recording, speed=16.0)
    _install(monkeypatch, fake)
    chunks = _record_chunks(monkeypatch, fail_at=4 * 512)
    report = tmp_path / "restart.json"
    status, out, err = run_listen(capsys, "--port", "emulator:posix", "--mic", "--duration", repr(len(recording) / SR),
                                  "--check", "--report", str(report))
    assert status == 0, err
    rep = json.loads(report.read_text())
    assert rep["attempts"] == 2 and rep["identical"] is True and rep["samples"] == len(recording), err
    assert "restarting the stream from sample 0 (attempt 2)" in err
    _check_events(rep, out)  # each event printed once
    begins = [i for i, c in enumerate(chunks) if c[2]]
    assert len(begins) == 2 and chunks[begins[1]][0] == 0


def test_mic_missing_portaudio_or_sounddevice(capsys, monkeypatch, tmp_path) -> None:
    """sounddevice raises OSError at import without libportaudio2: one line naming the fix, exit 2,
    before the board is started."""
    (tmp_path / "sounddevice.py").write_text('raise OSError("PortAudio library not found")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    status, out, err = run_listen(capsys, "--port", "emulator:posix", "--mic")
    assert status == 2 and out == []
    assert "PortAudio library not found" in err and "apt-get install libportaudio2" in err
    assert "Traceback" not in err and "building" not in err
    assert len([ln for ln in err.splitlines() if ln.startswith("error:")]) == 1

    monkeypatch.setitem(sys.modules, "sounddevice", None)  # the package itself missing
    status, out, err = run_listen(capsys, "--port", "emulator:posix", "--mic")
    assert status == 2 and "pip install sounddevice==" in err and "Traceback" not in err


def test_mic_no_input_device(capsys, monkeypatch) -> None:
    _install(monkeypatch, FakeSounddevice(np.zeros(10, np.int16), no_device=True))
    status, out, err = run_listen(capsys, "--port", "emulator:posix", "--mic")
    assert status == 2 and out == [] and "no audio input found" in err and "Traceback" not in err
    assert "connect a microphone" in err
    _install(monkeypatch, FakeSounddevice(np.zeros(10, np.int16)))
    status, out, err = run_listen(capsys, "--port", "emulator:posix", "--mic", "--device", "USB headset")
    assert status == 2 and "--device USB headset" in err and "python -m sounddevice" in err


def test_mic_usage(capsys, tmp_path) -> None:
    with pytest.raises(SystemExit):
        listen.main(["--port", "emulator", "--mic", "--wav", "x.wav"])
    assert "not allowed with" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        listen.main(["--port", "emulator"])
    err = capsys.readouterr().err
    assert "--wav" in err and "--mic" in err
    status, out, err = run_listen(capsys, "--port", "emulator", "--wav", str(tmp_path / "x.wav"), "--device", "1")
    assert status == 2 and "--device" in err and "--mic" in err


def test_resampler_continuous_equals_resample_poly() -> None:
    from scipy.signal import resample_poly

    rng = np.random.default_rng(1)
    for rate in (48000, 44100, 16000, 11025):
        x = (rng.standard_normal(rate) * 4000).astype(np.int16)
        r = audio_in.Resampler(rate, SR)
        parts, i = [], 0
        while i < len(x):  # blocks of random sizes, as PortAudio may deliver them
            k = int(rng.integers(1, 3000))
            parts.append(r.push(x[i : i + k]))
            i += k
        y = np.concatenate(parts)
        whole = np.clip(np.rint(resample_poly(x.astype(np.float64), r.up, r.down)), -32768, 32767).astype(np.int16)
        assert len(whole) - 12 <= len(y) <= len(whole)  # the filter's last half length is still owed
        assert np.array_equal(y, whole[: len(y)]), rate


def test_mic_source_full_queue_drops_and_warns() -> None:
    said: list[str] = []
    src = audio_in.MicSource(FakeSounddevice(np.zeros(10, np.int16)), None, SR, said.append, queue_seconds=0.1)
    src.open()
    bs = src.blocksize
    block = np.ones((bs, 1), np.int16)
    for _ in range(10):  # the loop is not reading: the queue holds 0.1 s
        src._callback(block, bs, None, FakeFlags(False))
    src._callback(block, bs, None, FakeFlags(True))
    assert src.dropped_samples > 0 and src.overflows == 1
    warnings = src.take_warnings()
    assert any("slower than real time" in w for w in warnings) and any("input overflow" in w for w in warnings)
    assert src.take_warnings() == []  # said once until it grows ...
    src._callback(block, bs, None, FakeFlags(True))
    assert src.take_warnings() == []  # ... and while it goes on, once every WARN_SECONDS
    src._next_warning = 0.0
    assert any("2 block(s)" in w for w in src.take_warnings())
    got = src.read(0.01)
    assert got is not None and len(got) == src.captured_samples - src.dropped_samples
    src.stop()
    assert src.read(0.01) is None
    src.close()


@real_firmware
def test_wav_interrupt_ends_stream_where_it_is(capsys, monkeypatch, recording, tmp_path) -> None:
    """The same loop for --wav: a Ctrl-C during the third chunk ends the stream soon after (not at
    the end of the file), exit 130, and --check compares the part that was sent."""
    from tests.conftest import write_wav

    wav = write_wav(tmp_path / "rec.wav", recording)
    real = listen.ListenRun._send_chunk
    calls = []

    def wrapped(self, offset, x, *, begin, end):
        calls.append(offset)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # handled in this (the main) thread: asks to stop
        return real(self, offset, x, begin=begin, end=end)

    monkeypatch.setattr(listen.ListenRun, "_send_chunk", wrapped)
    report = tmp_path / "wavint.json"
    status, out, err = run_listen(capsys, "--port", "emulator:posix", "--wav", str(wav), "--check",
                                  "--report", str(report))
    assert status == 130, err
    rep = json.loads(report.read_text())
    assert rep["interrupted"] is True and rep["ended"] is True and rep["identical"] is True, err
    assert 3 * 512 <= rep["samples"] <= 3 * 512 + 4096 < len(recording)
    assert rep["events"] == _reference_events(recording[: rep["samples"]])
    assert out[-1] == f"digits: {rep['digits']}"


@real_firmware
def test_emulated_board_is_out_of_the_terminals_process_group() -> None:
    """A terminal's Ctrl-C goes to its foreground process group; the emulated board must not get it,
    so that host.listen can still end the stream on it."""
    from host.emulator import start_emulator

    with start_emulator("posix", build=True) as emu:
        assert os.getpgid(emu._proc.pid) != os.getpgrp()


def test_mic_source_device_that_stops_ends_the_input() -> None:
    """No block for STALL_SECONDS from a stream PortAudio no longer runs (unplugged): the input ends,
    said once, and the run counts it (host.listen exits 2)."""
    said: list[str] = []
    src = audio_in.MicSource(FakeSounddevice(np.zeros(10, np.int16)), None, SR, said.append)
    src.open()
    src._started = True
    src._stream.active = False  # never started: PortAudio reports it inactive
    src._last_block = time.monotonic() - audio_in.STALL_SECONDS - 1
    got = src.read(0.01)
    assert got is not None and len(got) == 0 and src.input_lost
    assert src.read(0.01) is None
    assert len(said) == 1 and "stopped delivering audio" in said[0] and "stopped delivering" in src.notes[-1]
    src.close()
