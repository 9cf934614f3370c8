"""Where host.listen's samples come from: a recording, or a live microphone.

A *source* hands the streaming loop (``host.listen.ListenRun``) mono int16
samples at the stream's sample rate, in the order they were captured:

- :class:`ArraySource`: a recording already in memory (``--wav``), a block
  per read.
- :class:`MicSource`: the computer's input device (``--mic``) through
  PortAudio with the ``sounddevice`` binding. PortAudio calls
  :meth:`MicSource._callback` on its own thread with each captured block; the
  callback only copies the block into a bounded queue. The loop's
  :meth:`~MicSource.read` takes whatever has arrived, resamples it to the
  stream's rate when the device had to capture at another rate, and returns it.
  A full queue (the link to the board slower than real time for
  ``QUEUE_SECONDS``) drops the newest block, and PortAudio's own input
  overflows are counted: both come back as warnings and in the report.

Every source has ``read(timeout)`` (the samples that arrived since the last
read, possibly none after ``timeout`` seconds; None once it has ended),
``stop()`` (no more capture: later reads drain what is queued, then None),
``close()``, ``take_warnings()`` and ``report()``; ``arrivals`` splits the
last read into blocks, each with the ``time.monotonic()`` at which it was
captured; ``live`` says whether the samples come in real time.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from typing import Any, Callable

import numpy as np

from host.session import UsageError

#: The exact sounddevice release pyproject.toml pins (said in the install hint).
SOUNDDEVICE_VERSION = "0.5.6"
PORTAUDIO_FIX = ("install it with `sudo apt-get install libportaudio2` (Debian/Ubuntu; `make setup` does it; "
                 "other Linux: the distribution's portaudio package)")
#: Seconds of audio the queue between the capture callback and the loop holds before it drops blocks.
QUEUE_SECONDS = 30.0
#: Seconds per captured block (PortAudio's blocksize).
BLOCK_SECONDS = 0.032
#: Overflow and drop warnings while they go on: at most one every this many seconds.
WARN_SECONDS = 10.0
#: Seconds without a captured block after which an inactive input stream counts as ended.
STALL_SECONDS = 2.0


def import_sounddevice() -> Any:
    """``import sounddevice``, with one-line usage errors that name the fix."""
    try:
        import sounddevice
    except ImportError as exc:
        raise UsageError(f"--mic needs the Python package sounddevice ({exc}): "
                         f"pip install sounddevice=={SOUNDDEVICE_VERSION} (or make setup)") from exc
    except OSError as exc:  # sounddevice raises OSError("PortAudio library not found") at import
        raise UsageError(f"--mic needs the PortAudio library ({exc}): {PORTAUDIO_FIX}") from exc
    return sounddevice


def parse_device(text: str | None) -> int | str | None:
    """``--device``: a number is PortAudio's device index, anything else (part of) its name."""
    if text is None:
        return None
    text = text.strip()
    return int(text) if text.isdigit() else text


# ---- resampling -----------------------------------------------------------------------


class Resampler:
    """Rational-rate resampling of int16 blocks, continuous across blocks.

    The filter is the one ``scipy.signal.resample_poly`` designs for the same
    ratio (``firwin`` low-pass, 10 zero crossings a side, Kaiser window with
    beta 5), centred as resample_poly centres it; it is applied in its
    polyphase form to the samples as they come, keeping the last input
    samples the next outputs need. So the blocks' outputs, put together, are
    those of resample_poly on the whole recording (away from its two ends),
    however the input was cut into blocks: no seams every block. The output
    lags the input by the filter's half length (``10 * max(up, down) / up``
    input samples, 1.25 ms at 48 kHz -> 8 kHz); those last samples of a
    recording that is stopped are never produced.
    """

    def __init__(self, rate_in: int, rate_out: int) -> None:
        from scipy.signal import firwin

        g = math.gcd(int(rate_in), int(rate_out))
        self.up, self.down = int(rate_out) // g, int(rate_in) // g
        half = 10 * max(self.up, self.down)
        self.half = half
        if self.up == self.down:
            return
        h = firwin(2 * half + 1, 1.0 / max(self.up, self.down), window=("kaiser", 5.0)) * self.up
        self.taps = -(-len(h) // self.up)  # taps per phase
        padded = np.zeros(self.taps * self.up)
        padded[: len(h)] = h
        # phases[p, j] = h[p + j * up]: output at upsampled index n = i * up + p uses x[i - j].
        self.phases = padded.reshape(self.taps, self.up).T.copy()
        # Input history; buf[0] is input sample `base` (negative: the zeros before the first sample).
        self.buf = np.zeros(self.taps - 1)
        self.base = -(self.taps - 1)
        self.n_in = 0
        self.m = 0  # next output sample

    def push(self, x: np.ndarray) -> np.ndarray:
        """The int16 outputs that the samples so far determine, after those already returned."""
        if self.up == self.down:  # the same rate: nothing to do
            return np.asarray(x, np.int16)
        self.buf = np.concatenate([self.buf, np.asarray(x, np.float64)])
        self.n_in += len(x)
        # Output m needs inputs up to (m * down + half) // up.
        m_end = (self.n_in * self.up - 1 - self.half) // self.down + 1
        if m_end <= self.m:
            return np.zeros(0, np.int16)
        n = np.arange(self.m, m_end, dtype=np.int64) * self.down + self.half
        i_hi, phase = np.divmod(n, self.up)
        idx = i_hi[:, None] - np.arange(self.taps)[None, :] - self.base
        y = np.einsum("mj,mj->m", self.phases[phase], self.buf[idx])
        self.m = m_end
        keep_from = (self.m * self.down + self.half) // self.up - (self.taps - 1)  # oldest input still needed
        drop = keep_from - self.base
        if drop > 0:
            self.buf = self.buf[drop:]
            self.base = keep_from
        return np.clip(np.rint(y), -32768, 32767).astype(np.int16)


# ---- sources ----------------------------------------------------------------------------


class ArraySource:
    """A recording in memory (``--wav``), handed out ``block`` samples per read, then the end.

    All of it is there from the start; the blocks only keep what the loop has taken close to
    what it has sent, so that a Ctrl-C ends the stream where it is instead of after the whole file.
    """

    live = False

    def __init__(self, samples: np.ndarray, label: str, block: int = 4096) -> None:
        self.samples = np.asarray(samples, np.int16)
        self.label = label
        self.block = block
        self.arrivals: list[tuple[int, float]] = []
        self._pos = 0
        self._done = False

    def start(self) -> None:
        pass

    def read(self, timeout: float) -> np.ndarray | None:
        if self._done or self._pos >= len(self.samples):
            self._done = True
            return None
        x = self.samples[self._pos : self._pos + self.block]
        self._pos += len(x)
        self.arrivals = [(len(x), time.monotonic())]
        return x

    def stop(self) -> None:
        self._done = True

    def close(self) -> None:
        pass

    def pending_seconds(self) -> float:
        return 0.0

    def take_warnings(self) -> list[str]:
        return []

    def report(self) -> dict[str, Any]:
        return {"source": "wav", "path": self.label}


class MicSource:
    """The computer's input device through PortAudio (``sounddevice``), as a source of int16 samples.

    :meth:`open` finds the device and opens its stream without starting it (a
    missing device or a refused setting is a :class:`UsageError` before the
    board is touched); :meth:`start` starts capturing. Mono int16 is captured
    at ``rate`` when the device takes it, else at the device's default rate
    and resampled (:class:`Resampler`), which ``notes`` says.
    """

    live = True

    def __init__(self, sd: Any, device: int | str | None, rate: int, say: Callable[[str], None], *,
                 queue_seconds: float = QUEUE_SECONDS, block_seconds: float = BLOCK_SECONDS) -> None:
        self.sd = sd
        self.device = device
        self.rate = int(rate)
        self.say = say
        self.queue_seconds = queue_seconds
        self.block_seconds = block_seconds
        self.capture_rate = self.rate
        self.blocksize = 0
        self.name = "?"
        self.label = "microphone"
        self.notes: list[str] = []
        self.resampler: Resampler | None = None
        self._stream: Any = None
        self._queue: queue.Queue[tuple[float, np.ndarray]] | None = None
        self._stopping = threading.Event()
        self._ended = False
        self._started = False
        self.arrivals: list[tuple[int, float]] = []  # (samples, capture time) of each block of the last read
        self._last_block = time.monotonic()
        # Written by the capture thread only (ints: safe to read from the loop).
        self.overflows = 0  # callbacks with PortAudio's input-overflow flag (samples dropped before us)
        self.dropped_samples = 0  # captured samples dropped because the queue was full
        self.blocks = 0
        self.captured_samples = 0
        self._warned = (0, 0)
        self._next_warning = 0.0
        self._stall_warned = False
        self.input_lost = False  # the device stopped delivering audio (unplugged?)

    # -- opening ---------------------------------------------------------------------
    def open(self) -> None:
        sd = self.sd
        try:
            info = sd.query_devices(self.device, "input")
        except ValueError as exc:  # no device of that name or index, or it has no input channels
            raise UsageError(f"--device {self.device}: {exc}; list the devices with "
                             f"python -m sounddevice and pass a name or index") from exc
        except sd.PortAudioError as exc:  # "Error querying device -1": there is no input device
            if self.device is None:
                raise UsageError(f"no audio input found: PortAudio has no default input device ({exc}); "
                                 f"connect a microphone, or choose a device with --device (list them with "
                                 f"python -m sounddevice)") from exc
            raise UsageError(f"--device {self.device}: PortAudio cannot use it ({exc}); list the devices "
                             f"with python -m sounddevice and pass a name or index") from exc
        self.name = str(info.get("name", "?"))
        index = info.get("index")
        self.label = f"microphone {self.name!r}" + (f" (device {index})" if index is not None else "")
        if int(info.get("max_input_channels", 1)) < 1:
            raise UsageError(f"{self.label} has no input channels; choose another with --device")
        dev = self.device if self.device is not None else index
        try:
            sd.check_input_settings(device=dev, channels=1, dtype="int16", samplerate=self.rate)
            self.capture_rate = self.rate
        except (sd.PortAudioError, ValueError) as exc:
            self.capture_rate = int(round(float(info.get("default_samplerate") or 0)))
            if self.capture_rate <= 0:
                raise UsageError(f"{self.label} refuses {self.rate} Hz ({exc}) and has no default rate; "
                                 f"choose another with --device") from exc
            self.resampler = Resampler(self.capture_rate, self.rate)
            self.notes.append(f"{self.label} does not take {self.rate} Hz ({exc}): capturing at "
                              f"{self.capture_rate} Hz and resampling to {self.rate} Hz (polyphase FIR, "
                              f"continuous across blocks)")
        self.blocksize = max(1, int(round(self.capture_rate * self.block_seconds)))
        self._queue = queue.Queue(maxsize=max(2, math.ceil(self.queue_seconds / self.block_seconds)))
        try:
            self._stream = sd.InputStream(device=dev, samplerate=self.capture_rate, channels=1, dtype="int16",
                                          blocksize=self.blocksize, callback=self._callback)
        except (sd.PortAudioError, ValueError) as exc:
            raise UsageError(f"cannot open {self.label} at {self.capture_rate} Hz mono 16-bit: {exc}; "
                             f"choose another device with --device") from exc

    def start(self) -> None:
        assert self._stream is not None, "open() first"
        self._last_block = time.monotonic()
        try:
            self._stream.start()
        except self.sd.PortAudioError as exc:
            raise UsageError(f"cannot start capturing from {self.label}: {exc}") from exc
        self._started = True

    # -- the capture thread ------------------------------------------------------------
    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """PortAudio's thread: copy the block into the queue, nothing more."""
        if getattr(status, "input_overflow", False):
            self.overflows += 1
        if self._stopping.is_set():
            return
        block = np.array(indata[:frames, 0], dtype=np.int16)
        self.blocks += 1
        self.captured_samples += frames
        try:
            self._queue.put_nowait((time.monotonic(), block))  # type: ignore[union-attr]
        except queue.Full:
            self.dropped_samples += frames

    # -- the loop's side ----------------------------------------------------------------
    def read(self, timeout: float) -> np.ndarray | None:
        assert self._queue is not None
        if self._ended:
            return None
        got: list[tuple[float, np.ndarray]] = []
        self.arrivals = []
        try:
            if self._stopping.is_set():
                got.append(self._queue.get_nowait())
            else:
                got.append(self._queue.get(timeout=timeout))
            while True:  # and whatever else is waiting
                got.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        if not got:
            if self._stopping.is_set():
                self._ended = True
                return None
            self._check_stall()
            return np.zeros(0, np.int16)
        self._last_block = time.monotonic()
        if self.resampler is not None:  # block by block, so that each output block has its capture time
            got = [(t, self.resampler.push(x)) for t, x in got]
        self.arrivals = [(len(x), t) for t, x in got]
        return np.concatenate([x for _, x in got]) if len(got) > 1 else got[0][1]

    def _check_stall(self) -> None:
        quiet = time.monotonic() - self._last_block
        if quiet < STALL_SECONDS or not self._started:
            return
        if not bool(getattr(self._stream, "active", True)):
            self.notes.append(f"{self.label} stopped delivering audio (unplugged?) after "
                              f"{self.captured_samples / self.capture_rate:.2f} s: the stream ends there")
            self.say(f"warning: {self.notes[-1]}")
            self.input_lost = True
            self.stop()
        elif not self._stall_warned:
            self._stall_warned = True
            self.say(f"warning: no audio from {self.label} for {quiet:.1f} s")

    def stop(self) -> None:
        """Stop capturing; later reads return what is still queued, then None."""
        self._stopping.set()
        if self._stream is not None and self._started:
            try:
                self._stream.stop()
            except self.sd.PortAudioError:
                pass

    def close(self) -> None:
        self._stopping.set()
        if self._stream is not None:
            try:
                if self._started:
                    self._stream.abort()
                self._stream.close()
            except self.sd.PortAudioError:
                pass
            self._stream = None

    def pending_seconds(self) -> float:
        """Audio captured and waiting in the queue."""
        return (self._queue.qsize() if self._queue is not None else 0) * self.blocksize / self.capture_rate

    def take_warnings(self) -> list[str]:
        """Warnings since the last call: input overflows, blocks dropped at a full queue."""
        out: list[str] = []
        ov, dr = self.overflows, self.dropped_samples
        if (ov, dr) == self._warned:
            return out
        now = time.monotonic()
        if now < self._next_warning:  # a lasting problem: said again every WARN_SECONDS, not every block
            return out
        self._next_warning = now + WARN_SECONDS
        if ov > self._warned[0]:
            out.append(f"input overflow: PortAudio dropped samples before they reached host.listen "
                       f"({ov} block(s) flagged so far); the stream has gaps there (close other audio programs, "
                       f"or the machine is too busy)")
        if dr > self._warned[1]:
            out.append(f"the link is slower than real time: {dr} captured sample(s) dropped so far at a full "
                       f"queue ({self.queue_seconds:g} s); use a faster link (a higher --baud, USB)")
        self._warned = (ov, dr)
        return out

    def report(self) -> dict[str, Any]:
        return {
            "source": "mic",
            "device": self.name,
            "device_arg": self.device,
            "sample_rate": self.rate,
            "capture_rate": self.capture_rate,
            "resampled": self.resampler is not None,
            "blocksize": self.blocksize,
            "blocks": self.blocks,
            "captured_samples": self.captured_samples,
            "overflows": self.overflows,
            "dropped_samples": self.dropped_samples,
            "queue_seconds": self.queue_seconds,
            "input_lost": self.input_lost,
        }
