"""A stand-in for the `sounddevice` module: one input device that "captures" a recording.

host.listen's --mic imports `sounddevice` (PortAudio). Put an instance of
`StandinSounddevice` in ``sys.modules["sounddevice"]`` and host.listen
captures the given int16 recording instead, block by block from its own
thread, at a chosen pace (1.0 = real time), then silence. The tests
(tests/test_listen_mic.py) use it to drive the live path with no microphone;
the latency benchmark (benchmarks/latency.py) uses it at real time.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np

SR = 8000
GATE_TIMEOUT = 30.0  # the longest wait for the board at a gate: only reached when host.listen is broken


class StandinFlags:
    def __init__(self, overflow: bool) -> None:
        self.input_overflow = overflow


class StandinSounddevice:
    """One input device "Fake Mic" (index 0) at ``rate`` Hz that captures ``recording``, then silence.

    ``speed``: times real time the blocks come at. ``overflow_blocks``: blocks flagged
    input_overflow. ``gate``: (samples, event): before the block that would pass ``samples``
    of the recording, wait until ``event`` is set. ``interrupt_at``: after that many samples,
    send this process SIGINT (Ctrl-C) and deliver nothing more.
    """

    class PortAudioError(Exception):
        pass

    def __init__(self, recording: np.ndarray, *, rate: int = SR, takes_8k: bool = True, speed: float = 8.0,
                 overflow_blocks: tuple[int, ...] = (), gate: tuple[int, threading.Event] | None = None,
                 interrupt_at: int | None = None, no_device: bool = False) -> None:
        self.recording = np.asarray(recording, np.int16)
        self.rate, self.takes_8k, self.speed = rate, takes_8k, speed
        self.overflow_blocks, self.gate, self.interrupt_at = overflow_blocks, gate, interrupt_at
        self.no_device = no_device
        self.gate_timed_out = False
        self.streams: list[StandinInputStream] = []

    def query_devices(self, device=None, kind=None):
        if self.no_device:
            raise self.PortAudioError("Error querying device -1")
        if device not in (None, 0, "Fake", "Fake Mic"):
            raise ValueError(f"No input device matching {device!r}")
        return {"name": "Fake Mic", "index": 0, "max_input_channels": 1, "default_samplerate": float(self.rate)}

    def check_input_settings(self, device=None, channels=None, dtype=None, samplerate=None):
        if samplerate != self.rate and not (samplerate == SR and self.takes_8k):
            raise self.PortAudioError("Invalid sample rate [PaErrorCode -9997]")

    def InputStream(self, **kw):
        s = StandinInputStream(self, **kw)
        self.streams.append(s)
        return s


class StandinInputStream:
    def __init__(self, sd: StandinSounddevice, *, device, samplerate, channels, dtype, blocksize, callback) -> None:
        assert channels == 1 and dtype == "int16" and blocksize > 0
        self.sd, self.rate, self.blocksize, self.callback = sd, samplerate, blocksize, callback
        assert samplerate == sd.rate or (samplerate == SR and sd.takes_8k)
        self.x = sd.recording
        self.active = False
        self.delivered = 0
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.active = True
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        bs, t0, k = self.blocksize, time.monotonic(), 0
        while not self._halt.is_set():
            pos = self.delivered
            if self.sd.interrupt_at is not None and pos >= self.sd.interrupt_at:
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C; then nothing more is captured
                self._halt.wait(GATE_TIMEOUT)
                return
            if self.sd.gate is not None and pos < self.sd.gate[0] <= pos + bs:
                if not self.sd.gate[1].wait(GATE_TIMEOUT):
                    self.sd.gate_timed_out = True
            block = np.zeros((bs, 1), np.int16)
            part = self.x[pos : pos + bs]
            block[: len(part), 0] = part
            # paced at `speed` x real time (a pace, not a correctness wait)
            self._halt.wait(max(0.0, t0 + (pos + bs) / self.rate / self.sd.speed - time.monotonic()))
            if self._halt.is_set():
                return
            self.callback(block, bs, None, StandinFlags(k in self.sd.overflow_blocks))
            self.delivered += bs
            k += 1

    def stop(self) -> None:
        self._halt.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(10)
        self.active = False

    abort = stop

    def close(self) -> None:
        self.stop()
