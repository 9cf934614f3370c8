"""A fault-injecting serial link between the host and a device (docs/protocol.md, "Faults and recovery").

    host.parity --pty--> [FaultLink] --pty / socket--> device (posix build, QEMU, a board)

The link creates its own pseudo-terminal for the host (``host_port``, a path
that stays the same for the whole run) and connects to the device's port. It
forwards bytes both ways and, at configurable rates per direction, damages
them: every byte is independently dropped, flipped (one random bit),
duplicated, or preceded by an inserted random byte; a frame (the bytes after
a 0x00 delimiter) may be held back for a random delay, which holds everything
behind it too (the link never reorders bytes). With an emulated board it can
also restart the device mid-run: kill the posix program or QEMU and start it
again; the device side re-attaches to the new port while the host's pty stays
open, and bytes the host sends while the board is down are lost, as on a
board that resets.

All randomness comes from one seed, with separate streams per direction and
purpose: the i-th byte of a direction always meets the same draw, so a run is
reproducible for the same traffic. Every injected fault is counted
(:meth:`FaultLink.stats`, JSON).

Fault spec (``--faults`` here and in ``python -m host.parity``): comma-separated
``key=value``; a key may carry a direction prefix ``h2d.`` (host to device) or
``d2h.`` (device to host), else it applies to both directions.

    rate=R          byte error rate R, split evenly: drop, flip, dup and insert R/4 each
    drop=P flip=P dup=P insert=P    per-byte probability of each fault kind
    delay=P         probability that a frame is held back
    delay_max=S     a held frame waits uniform(0, S) seconds (default 0.1)
    seed=N          RNG seed (default 0)
    resets=N        restart the board N times, spread evenly over the run's clips
    reset_every=K   restart the board in clip K, 2K, 3K, ...
    reset_clips=A/B restart the board in clips A and B (1-based, in the order clips start)
    reset_rate=P    restart the board in each clip with probability P
    reset_at=T1/T2  restart the board T1, T2 seconds after the link started
    die=K           kill the board in clip K and do not restart it (a device that disappears)

"In clip K" means as the K-th clip's second request (its second AUDIO chunk,
or its CLASSIFY for a one-chunk clip) arrives: the board dies holding a
half-received clip, and that request is lost with it. Clips are counted by the clip ids of AUDIO
chunks with BEGIN, read from the undamaged host stream; a stream (STREAM with BEGIN, host.listen)
counts as a clip too, and "in stream K" is as its second chunk arrives.

Library use::

    from host.faultlink import FaultLink, FaultSpec

    with FaultLink(FaultSpec.parse("rate=1e-3,resets=2"), board="posix", expected_clips=20) as link:
        dev = Device(link.host_port, timeout=1.0, retries=8)
        ...
        print(link.stats())

Command line: ``python -m host.faultlink --port emulator:posix --faults rate=1e-3``
prints ``SERIAL <path>``, serves until Ctrl-C, then prints the statistics.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import errno
import fcntl
import json
import os
import random
import selectors
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import tty
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from host import protocol as p

KINDS = ("drop", "flip", "dup", "insert")
DIRECTIONS = ("h2d", "d2h")
#: Bytes queued toward one side before the oldest are discarded (a side that stopped reading).
MAX_QUEUED = 1 << 20


class FaultSpecError(ValueError):
    """A fault spec that cannot be parsed (the message says which part)."""


# ---- the spec -------------------------------------------------------------------------


@dataclass
class Rates:
    """Fault rates of one direction: per byte for the four kinds, per frame for delay."""

    drop: float = 0.0
    flip: float = 0.0
    dup: float = 0.0
    insert: float = 0.0
    delay: float = 0.0

    def byte_rate(self) -> float:
        return self.drop + self.flip + self.dup + self.insert


@dataclass
class FaultSpec:
    """What to inject. Build with :meth:`parse` or directly."""

    h2d: Rates = field(default_factory=Rates)
    d2h: Rates = field(default_factory=Rates)
    delay_max: float = 0.1
    seed: int = 0
    resets: int = 0
    reset_every: int = 0
    reset_clips: tuple[int, ...] = ()
    reset_rate: float = 0.0
    reset_at: tuple[float, ...] = ()
    die: int = 0

    @property
    def restarts_board(self) -> bool:
        return bool(self.resets or self.reset_every or self.reset_clips or self.reset_rate or self.reset_at or self.die)

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        """``"rate=1e-3,d2h.delay=0.01,resets=2"`` -> FaultSpec. Raises FaultSpecError."""
        spec = cls()
        for part in (s.strip() for s in text.split(",")):
            if not part:
                continue
            key, sep, value = part.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or not value:
                raise FaultSpecError(f"{part!r}: expected key=value")
            dirs: Sequence[str] = DIRECTIONS
            if "." in key:
                prefix, key = key.split(".", 1)
                if prefix not in DIRECTIONS:
                    raise FaultSpecError(f"{part!r}: direction must be h2d or d2h, not {prefix!r}")
                dirs = (prefix,)
            try:
                if key in (*KINDS, "delay", "rate"):
                    v = float(value)
                    if not 0.0 <= v <= 1.0:
                        raise FaultSpecError(f"{part!r}: a probability must be within 0..1")
                    for d in dirs:
                        rates: Rates = getattr(spec, d)
                        if key == "rate":
                            for k in KINDS:
                                setattr(rates, k, v / len(KINDS))
                        else:
                            setattr(rates, key, v)
                    if sum(getattr(spec, d).byte_rate() for d in dirs) > len(dirs):
                        raise FaultSpecError(f"{part!r}: byte fault rates of a direction add up to more than 1")
                    continue
                if len(dirs) != 2:
                    raise FaultSpecError(f"{part!r}: only byte and delay rates take a direction")
                if key == "delay_max":
                    spec.delay_max = float(value)
                    if spec.delay_max < 0:
                        raise FaultSpecError(f"{part!r}: must be >= 0")
                elif key in ("seed", "resets", "reset_every", "die"):
                    n = int(value)
                    if n < 0:
                        raise FaultSpecError(f"{part!r}: must be >= 0")
                    setattr(spec, key, n)
                elif key == "reset_rate":
                    spec.reset_rate = float(value)
                    if not 0.0 <= spec.reset_rate <= 1.0:
                        raise FaultSpecError(f"{part!r}: a probability must be within 0..1")
                elif key == "reset_clips":
                    spec.reset_clips = tuple(sorted({int(x) for x in value.split("/") if x.strip()}))
                    if any(k <= 0 for k in spec.reset_clips):
                        raise FaultSpecError(f"{part!r}: clips are counted from 1")
                elif key == "reset_at":
                    spec.reset_at = tuple(sorted(float(x) for x in value.split("/") if x.strip()))
                else:
                    raise FaultSpecError(f"{part!r}: unknown key {key!r} (see python -m host.faultlink --help)")
            except ValueError as exc:
                if isinstance(exc, FaultSpecError):
                    raise
                raise FaultSpecError(f"{part!r}: {exc}") from exc
        return spec

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---- per-direction injection -----------------------------------------------------------


class Injector:
    """Damages one direction's byte stream; counts what it did.

    ``apply(data, now)`` returns ``[(hold_seconds, bytes), ...]``: the damaged
    bytes, split where a frame is held back (``hold_seconds`` > 0 from then on).
    """

    def __init__(self, rates: Rates, seed: int, direction: str, delay_max: float) -> None:
        self.rates = rates
        self.delay_max = delay_max
        ss = np.random.SeedSequence([seed, DIRECTIONS.index(direction)])
        byte_seed, aux_seed, delay_seed = ss.spawn(3)
        self._u = np.random.Generator(np.random.PCG64(byte_seed))  # one draw per byte, in order
        self._aux = random.Random(int(aux_seed.generate_state(1)[0]))  # bit to flip, byte to insert
        self._delay = random.Random(int(delay_seed.generate_state(1)[0]))  # one draw per frame start
        c = np.cumsum([rates.drop, rates.flip, rates.dup, rates.insert])
        self._cum = c
        self._any = float(c[-1]) > 0
        self._after_delimiter = True
        self.counts = {"bytes_in": 0, "bytes_out": 0, "frames": 0, **{k: 0 for k in KINDS},
                       "delayed_frames": 0, "delay_seconds": 0.0}

    def _damage(self, data: bytes) -> bytes:
        n = len(data)
        if not self._any or n == 0:
            return data
        u = self._u.random(n)
        hits = np.flatnonzero(u < self._cum[-1])
        if hits.size == 0:
            return data
        kinds = np.searchsorted(self._cum, u[hits], side="right")
        out = bytearray()
        pos = 0
        for i, k in zip(hits.tolist(), kinds.tolist()):
            out += data[pos:i]
            b = data[i]
            if k == 0:  # drop
                pass
            elif k == 1:  # flip one bit
                out.append(b ^ (1 << self._aux.randrange(8)))
            elif k == 2:  # duplicate
                out.append(b)
                out.append(b)
            else:  # insert a random byte before this one
                out.append(self._aux.randrange(256))
                out.append(b)
            self.counts[KINDS[k]] += 1
            pos = i + 1
        out += data[pos:]
        return bytes(out)

    def apply(self, data: bytes) -> list[tuple[float, bytes]]:
        self.counts["bytes_in"] += len(data)
        if not data:
            return []
        # Frame starts: the first non-zero byte after a delimiter (found on the clean stream).
        z = np.frombuffer(data, np.uint8) == 0
        prev_zero = np.concatenate(([self._after_delimiter], z[:-1]))
        starts = np.flatnonzero(~z & prev_zero).tolist()
        self._after_delimiter = bool(z[-1])
        self.counts["frames"] += len(starts)
        pieces: list[tuple[float, bytes]] = []
        start, hold = 0, 0.0
        if self.rates.delay > 0:
            for i in starts:
                if self._delay.random() < self.rates.delay:
                    d = self._delay.uniform(0.0, self.delay_max)
                    self.counts["delayed_frames"] += 1
                    self.counts["delay_seconds"] += d
                    if i > start:
                        pieces.append((hold, self._damage(data[start:i])))
                    start, hold = i, d
        pieces.append((hold, self._damage(data[start:])))
        self.counts["bytes_out"] += sum(len(b) for _, b in pieces)
        return [(h, b) for h, b in pieces if b]


class _Queue:
    """Bytes waiting to be written to one side, FIFO, each piece with a release time."""

    def __init__(self) -> None:
        self.items: collections.deque[list[Any]] = collections.deque()  # [release_time, bytearray]
        self.size = 0
        self.discarded = 0

    def put(self, release: float, data: bytes) -> None:
        if not data:
            return
        if self.items and self.items[-1][0] >= release:
            self.items[-1][1] += data  # not released before the piece ahead anyway
        else:
            self.items.append([release, bytearray(data)])
        self.size += len(data)
        while self.size > MAX_QUEUED and self.items:
            old = self.items.popleft()
            self.size -= len(old[1])
            self.discarded += len(old[1])

    def clear(self) -> int:
        n = self.size
        self.items.clear()
        self.size = 0
        return n

    def ready(self, now: float) -> bool:
        return bool(self.items) and self.items[0][0] <= now

    def next_release(self) -> float | None:
        return self.items[0][0] if self.items else None

    def write_to(self, write: Callable[[bytes], int], now: float) -> None:
        """Write released pieces until the writer takes less than offered."""
        while self.items and self.items[0][0] <= now:
            buf = self.items[0][1]
            n = write(bytes(buf))
            if n <= 0:
                return
            self.size -= n
            if n < len(buf):
                del buf[:n]
                return
            self.items.popleft()


# ---- the device side ----------------------------------------------------------------


class _DevicePort:
    """Non-blocking byte I/O on the device's port: a tty/pty path or socket://host:port."""

    def __init__(self, url: str, baudrate: int) -> None:
        self.url = url
        self._ser: Any = None
        self._sock: socket.socket | None = None
        if url.startswith("socket://"):
            host, _, port = url[len("socket://"):].partition(":")
            self._sock = socket.create_connection((host, int(port.split("/")[0])), timeout=5.0)
            self._sock.setblocking(False)
            self.fd = self._sock.fileno()
        else:
            import serial  # pyserial: opens a tty in raw mode at the baud rate

            self._ser = serial.Serial(url, baudrate=baudrate, timeout=0, exclusive=False)
            self.fd = self._ser.fileno()
            fl = fcntl.fcntl(self.fd, fcntl.F_GETFL)
            fcntl.fcntl(self.fd, fcntl.F_SETFL, fl | os.O_NONBLOCK)

    def read(self) -> bytes:
        """Available bytes (b"" if none). Raises OSError when the port is gone."""
        try:
            data = self._sock.recv(65536) if self._sock else os.read(self.fd, 65536)
        except (BlockingIOError, InterruptedError):
            return b""
        if not data:
            raise OSError(errno.EIO, "device port closed")
        return data

    def write(self, data: bytes) -> int:
        try:
            return self._sock.send(data) if self._sock else os.write(self.fd, data)
        except (BlockingIOError, InterruptedError):
            return 0

    def close(self) -> None:
        try:
            if self._sock:
                self._sock.close()
            elif self._ser:
                self._ser.close()
        except Exception:
            pass


# ---- the link --------------------------------------------------------------------------


class FaultLink:
    """The proxy: ``host_port`` (a pty path) <-> the device, with faults.

    Args:
        spec: what to inject.
        url: the device's port (pty/tty path or socket://host:port). Or:
        board: an emulated board ("posix", "mps2-an386", ...) that the link
            starts itself (and restarts when the spec says so).
        build: run make for ``board`` first.
        expected_clips: clips in the run, for ``resets=N`` (else N restarts
            are placed in clips 1, 2, ... N).
        baudrate: for a real serial port.
    """

    def __init__(self, spec: FaultSpec, *, url: str | None = None, board: str | None = None, build: bool = True,
                 expected_clips: int | None = None, baudrate: int = 115200,
                 say: Callable[[str], None] | None = None, gen: str | Path | None = None) -> None:
        if (url is None) == (board is None):
            raise ValueError("give exactly one of url and board")
        if spec.restarts_board and board is None:
            raise FaultSpecError("restarting the device (resets, reset_*, die) needs an emulated board "
                                 "(--port emulator:BOARD); a real port cannot be power-cycled from here")
        self.spec = spec
        self.url = url
        self.board = board
        self.build = build
        self.gen = gen  # another model's generated sources (host.emulator.build_firmware)
        self.baudrate = baudrate
        self.say = say or (lambda msg: None)
        self.host_port = ""
        self._emu: Any = None
        self._firmware: Path | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._dev: _DevicePort | None = None
        self._master = self._slave = -1
        self._wake_r = self._wake_w = -1
        self._inj = {d: Injector(getattr(spec, d), spec.seed, d, spec.delay_max) for d in DIRECTIONS}
        self._to_dev = _Queue()
        self._to_host = _Queue()
        self._decoder = p.FrameDecoder()  # the clean host stream, for clip counting and triggers
        self._clip_ids: dict[tuple[int, int], int] = {}  # (AUDIO or STREAM, clip/stream id) -> ordinal (1-based)
        self._clip_requests = 0
        self._current_clip = 0
        self._reset_plan: set[int] = set()
        self._reset_done: set[int] = set()
        self._reset_rng = random.Random(int(np.random.SeedSequence([spec.seed, 7]).generate_state(1)[0]))
        self._reset_at = list(spec.reset_at)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._dead = False  # the device is gone for good (die=K, or it exited on its own)
        self._restarting = False
        self._t0 = time.monotonic()
        self.error: str | None = None
        self.requests: collections.Counter[str] = collections.Counter()
        self.restarts: list[dict[str, Any]] = []
        self.lost_while_down = 0
        self.host_unread_discarded = 0
        self.set_expected_clips(expected_clips)

    # -- lifetime -----------------------------------------------------------------
    def __enter__(self) -> FaultLink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the device (for a board), open both sides, start forwarding."""
        try:
            if self.board is not None:
                from host.emulator import build_firmware, program_path

                fw = build_firmware(self.board, gen=self.gen) if self.build else program_path(self.board, gen=self.gen)
                if not fw.exists():
                    raise FileNotFoundError(f"{fw} not found: build it with `make -C firmware BOARD={self.board}`")
                # Restart from a private copy: the build folder may be rebuilt while we run.
                self._tmp = tempfile.TemporaryDirectory(prefix="sd-faultlink-")
                self._firmware = Path(self._tmp.name) / fw.name
                shutil.copy2(fw, self._firmware)
                self._launch()
            else:
                assert self.url is not None
                self._dev = _DevicePort(self.url, self.baudrate)
            self._open_host_pty()
            self._wake_r, self._wake_w = os.pipe()
            os.set_blocking(self._wake_r, False)
            os.set_blocking(self._wake_w, False)
            self._t0 = time.monotonic()
            self._thread = threading.Thread(target=self._run, name="faultlink", daemon=True)
            self._thread.start()
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 15.0) -> None:
        """Stop forwarding, close both sides, stop the board. Idempotent."""
        self._stop.set()
        if self._wake_w >= 0:
            try:
                os.write(self._wake_w, b"x")
            except OSError:
                pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._thread = None
        self._close_device()
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = self._wake_r = self._wake_w = -1
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __del__(self) -> None:
        try:
            self.stop(timeout=1.0)
        except Exception:
            pass

    # -- what host.parity asks of an emulator ------------------------------------------
    def resume(self, timeout: float = 5.0) -> None:
        """No-op: the link resumes the board itself once attached."""

    def alive(self) -> bool:
        """False once the device is gone for good (die=K, or it exited and cannot be restarted)."""
        return not self._dead

    def log(self) -> str:
        return self._emu.log() if self._emu is not None else ""

    def set_expected_clips(self, n: int | None) -> None:
        """Place ``resets=N`` restarts evenly over ``n`` clips (in the middle of clips n/(N+1), ...)."""
        s = self.spec
        plan = set(s.reset_clips)
        if s.resets:
            if n and n > 0:
                plan |= {max(1, min(n, round((i + 1) * n / (s.resets + 1)))) for i in range(s.resets)}
            else:
                plan |= set(range(1, s.resets + 1))
        with self._lock:
            self._reset_plan = plan

    def stats(self) -> dict[str, Any]:
        """Everything injected and seen so far (JSON-ready)."""
        with self._lock:
            dirs = {d: dict(inj.counts) for d, inj in self._inj.items()}
            for d in dirs.values():
                d["delay_seconds"] = round(d["delay_seconds"], 4)
                d["byte_faults"] = sum(d[k] for k in KINDS)
            return {
                "spec": self.spec.to_dict(),
                "seconds": round(time.monotonic() - self._t0, 3),
                "directions": dirs,
                "byte_faults": sum(d["byte_faults"] for d in dirs.values()),
                "delayed_frames": sum(d["delayed_frames"] for d in dirs.values()),
                "requests": dict(self.requests),
                "clips_seen": len(self._clip_ids),
                "restarts": list(self.restarts),
                "device_dead": self._dead,
                "lost_while_down": self.lost_while_down,
                "queue_discarded": self._to_dev.discarded + self._to_host.discarded,
                "error": self.error,
            }

    # -- device management ----------------------------------------------------------------
    def _launch(self) -> None:
        from host.emulator import start_emulator

        assert self.board is not None and self._firmware is not None
        self._emu = start_emulator(self.board, firmware=self._firmware, paused=True)
        try:
            self._dev = _DevicePort(self._emu.port, self.baudrate)
        except BaseException:
            self._emu.stop(timeout=2.0)
            self._emu = None
            raise
        self._emu.resume()

    def _close_device(self) -> None:
        if self._dev is not None:
            self._dev.close()
            self._dev = None
        if self._emu is not None:
            self._emu.stop(timeout=2.0)
            self._emu = None

    def kill_device(self, *, restart: bool, reason: str) -> None:
        """Kill the board; with ``restart``, start it again and re-attach (called on the link thread)."""
        t = time.monotonic()
        self._restarting = True
        try:
            if self._emu is not None and self._emu._proc is not None and self._emu._proc.poll() is None:
                self._emu._proc.kill()  # a crash, not a clean exit: no QMP quit
            self._close_device()
            with self._lock:
                self.lost_while_down += self._to_dev.clear()
            event: dict[str, Any] = {"t": round(t - self._t0, 3), "clip": self._current_clip, "reason": reason,
                                     "restarted": restart}
            if restart:
                try:
                    self._launch()
                except Exception as exc:
                    self._dead = True
                    self.error = f"restart failed: {exc}"
                    event["error"] = str(exc)
            else:
                self._dead = True
            # What the host sent while the board was down is lost.
            self.lost_while_down += self._drain_host()
            event["down_seconds"] = round(time.monotonic() - t, 3)
            with self._lock:
                self.restarts.append(event)
            self.say(f"faultlink: device {'restarted' if restart and not self._dead else 'killed'} "
                     f"in clip {self._current_clip} ({reason})")
        finally:
            self._restarting = False

    def _drain_host(self) -> int:
        n = 0
        while True:
            try:
                data = os.read(self._master, 65536)
            except (BlockingIOError, InterruptedError):
                return n
            except OSError:
                return n
            if not data:
                return n
            n += len(data)

    # -- host side ---------------------------------------------------------------------------
    def _open_host_pty(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line editing: the host may open it later
        os.set_blocking(self._master, False)
        self.host_port = os.ttyname(self._slave)

    # -- the forwarding loop ------------------------------------------------------------------
    def _watch_requests(self, clean: bytes) -> str | None:
        """Decode the host's clean stream; returns why the board should restart now, if it should."""
        reason = None
        for ev in self._decoder.feed(clean):
            if not isinstance(ev, p.Frame):
                continue
            try:
                name = p.MsgType(ev.type).name
            except ValueError:
                name = f"0x{ev.type:02x}"
            self.requests[name] += 1
            begin = ((ev.type == p.MsgType.AUDIO and len(ev.payload) >= 12 and ev.payload[8] & p.AUDIO_BEGIN)
                     or (ev.type == p.MsgType.STREAM and len(ev.payload) >= 16 and ev.payload[12] & p.STREAM_BEGIN))
            if begin:  # a stream counts as a clip, named by its stream id
                (clip_id,) = struct.unpack_from("<I", ev.payload)
                key = (ev.type, clip_id)
                if key not in self._clip_ids:
                    self._clip_ids[key] = len(self._clip_ids) + 1
                    self._clip_requests = 0
                self._current_clip = self._clip_ids[key]
            if ev.type in (p.MsgType.AUDIO, p.MsgType.CLASSIFY, p.MsgType.STREAM) and self._current_clip:
                self._clip_requests += 1
                k = self._current_clip
                if self._clip_requests == 2 and k not in self._reset_done:
                    s = self.spec
                    if s.die and k == s.die:
                        reason = "die"
                    elif (k in self._reset_plan or (s.reset_every and k % s.reset_every == 0)
                          or (s.reset_rate and self._reset_rng.random() < s.reset_rate)):
                        reason = f"reset in clip {k}"
                    if reason:
                        self._reset_done.add(k)
        return reason

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        try:
            sel.register(self._wake_r, selectors.EVENT_READ, "wake")
            sel.register(self._master, selectors.EVENT_READ, "host")
            registered: _DevicePort | None = None
            dev_fd = -1
            while not self._stop.is_set():
                # (Re-)register the device side after a restart (a new port may reuse the fd number).
                if self._dev is not registered:
                    if dev_fd >= 0:
                        try:
                            sel.unregister(dev_fd)
                        except (KeyError, ValueError, OSError):
                            pass
                    registered = self._dev
                    dev_fd = registered.fd if registered is not None else -1
                    if dev_fd >= 0:
                        sel.register(dev_fd, selectors.EVENT_READ, "device")
                now = time.monotonic()
                # Writes: what is released and pending.
                want_host_w = self._to_host.ready(now)
                want_dev_w = self._to_dev.ready(now) and dev_fd >= 0
                sel.modify(self._master, selectors.EVENT_READ | (selectors.EVENT_WRITE if want_host_w else 0), "host")
                if dev_fd >= 0:
                    sel.modify(dev_fd, selectors.EVENT_READ | (selectors.EVENT_WRITE if want_dev_w else 0), "device")
                wait = 0.05
                for q in (self._to_host, self._to_dev):
                    r = q.next_release()
                    if r is not None and r > now:
                        wait = min(wait, r - now)
                if self._reset_at:
                    wait = min(wait, max(0.0, self._t0 + self._reset_at[0] - now))
                events = sel.select(max(0.0, wait))
                for key, mask in events:
                    if key.data == "wake":
                        try:
                            os.read(self._wake_r, 4096)
                        except OSError:
                            pass
                    elif key.data == "host":
                        if mask & selectors.EVENT_READ:
                            self._from_host()
                        if mask & selectors.EVENT_WRITE:
                            self._to_host.write_to(self._write_host, time.monotonic())
                    elif key.data == "device":
                        if self._dev is None or self._dev is not registered:
                            continue  # the board was restarted or killed while handling the host
                        if mask & selectors.EVENT_READ:
                            self._from_device()
                        if mask & selectors.EVENT_WRITE and self._dev is not None:
                            self._to_dev.write_to(self._write_dev, time.monotonic())
                # Pieces whose hold just ended: try at once (the select above may not have asked).
                now = time.monotonic()
                if self._to_host.ready(now):
                    self._to_host.write_to(self._write_host, now)
                if self._dev is not None and self._to_dev.ready(now):
                    self._to_dev.write_to(self._write_dev, now)
                if self._reset_at and now - self._t0 >= self._reset_at[0]:
                    self._reset_at.pop(0)
                    if not self._dead and self.board is not None:
                        self.kill_device(restart=True, reason=f"reset at {now - self._t0:.2f} s")
        except Exception as exc:  # never die silently: the host would only see timeouts
            self.error = f"{type(exc).__name__}: {exc}"
            self.say(f"faultlink: forwarding stopped: {self.error}")
        finally:
            sel.close()

    def _from_host(self) -> None:
        try:
            data = os.read(self._master, 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # no slave open: cannot happen while we hold our own slave fd
            return
        if not data:
            return
        with self._lock:
            reason = self._watch_requests(data)
        if reason and self.board is not None and not self._dead:
            # The board resets as this request arrives: the request is lost with the old board,
            # which held the half-received clip.
            self.kill_device(restart=reason != "die", reason=reason)
            self.lost_while_down += len(data)
            return
        if self._dev is None:  # board down: lost
            self.lost_while_down += len(data)
            return
        now = time.monotonic()
        with self._lock:
            for hold, piece in self._inj["h2d"].apply(data):
                self._to_dev.put(now + hold, piece)
        self._to_dev.write_to(self._write_dev, now)

    def _from_device(self) -> None:
        if self._dev is None:
            return
        try:
            data = self._dev.read()
        except OSError:
            # The board went away on its own (crashed, port closed): nothing to forward to any more.
            if self._restarting:
                return
            self._close_device()
            self._dead = True
            if self.error is None:
                self.error = "the device closed its port"
            return
        if not data:
            return
        now = time.monotonic()
        with self._lock:
            for hold, piece in self._inj["d2h"].apply(data):
                self._to_host.put(now + hold, piece)
        self._to_host.write_to(self._write_host, now)

    def _write_host(self, data: bytes) -> int:
        try:
            return os.write(self._master, data)
        except (BlockingIOError, InterruptedError):
            return 0

    def _write_dev(self, data: bytes) -> int:
        if self._dev is None:
            return 0
        try:
            return self._dev.write(data)
        except OSError:
            return 0


# ---- CLI ------------------------------------------------------------------------------


SPEC_HELP = __doc__[__doc__.index("Fault spec"):__doc__.index("Library use")].strip()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m host.faultlink",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A fault-injecting proxy between a host tool and a spoken-digit device. Prints "
                    "'SERIAL <path>' (the pty to give the host tool, e.g. python -m host.parity --port <path>), "
                    "forwards both ways while dropping, flipping, duplicating, inserting bytes and delaying "
                    "frames, and restarts an emulated board when asked. On Ctrl-C (or after --duration) prints "
                    "the fault statistics as JSON on stdout.\n\n"
                    "host.parity does all of this itself with --faults SPEC.\n\n" + SPEC_HELP,
        epilog="Examples:\n"
               "  python -m host.faultlink --port emulator:posix --faults rate=1e-3,delay=0.01\n"
               "  python -m host.faultlink --port /dev/ttyACM0 --faults d2h.flip=1e-4 --stats faults.json\n",
    )
    ap.add_argument("--port", required=True,
                    help="the device: a pty/tty path, socket://host:port, or emulator[:BOARD] to start "
                         "(and restart) an emulated board")
    ap.add_argument("--faults", default="", metavar="SPEC", help="what to inject (see above; default: nothing)")
    ap.add_argument("--clips", type=int, default=None, metavar="N", help="clips the run will have, for resets=N")
    ap.add_argument("--baud", type=int, default=115200, help="baud rate of a real serial port (default: %(default)s)")
    ap.add_argument("--no-build", action="store_true", help="emulated board: do not run make first")
    ap.add_argument("--duration", type=float, default=None, metavar="SECONDS", help="stop after this long")
    ap.add_argument("--stats", metavar="FILE.json", default=None, help="also write the statistics here")
    args = ap.parse_args(argv)
    try:
        spec = FaultSpec.parse(args.faults)
    except FaultSpecError as exc:
        ap.error(f"--faults: {exc}")
    board = None
    if args.port == "emulator" or args.port.startswith("emulator:"):
        from host.emulator import BOARDS

        board = args.port.split(":", 1)[1] if ":" in args.port else "posix"
        if board not in BOARDS:
            ap.error(f"--port {args.port}: unknown board; use one of {', '.join(BOARDS)}")

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        link = FaultLink(spec, url=None if board else args.port, board=board, build=not args.no_build,
                         expected_clips=args.clips, baudrate=args.baud, say=say)
        with link:
            print(f"SERIAL {link.host_port}", flush=True)
            t_end = None if args.duration is None else time.monotonic() + args.duration
            try:
                while not stop.is_set() and (t_end is None or time.monotonic() < t_end):
                    stop.wait(0.2)
            except KeyboardInterrupt:
                pass
            stats = link.stats()
    except KeyboardInterrupt:  # while starting
        return 130
    except (FaultSpecError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # EmulatorError and friends
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(stats)
    if args.stats:
        Path(args.stats).write_text(json.dumps(stats, indent=1) + "\n")
    print(text, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
