"""Start a board without hardware and hand back its serial port.

Boards:

``posix``
    ``firmware/build/posix/<program>``: the firmware as a host program. It
    prints ``SERIAL <path>`` (a pseudo-terminal) on stdout; the path is read
    with a timeout.
``mps2-an386``, ``netduinoplus2``
    ``qemu-system-arm`` started *paused* (``-S``) with a QMP socket and the
    first UART on a pty (``-chardev pty,id=ser0 -serial chardev:ser0``). The
    pty path comes from QMP ``query-chardev``. The caller opens the port and
    then calls :meth:`Emulator.resume` (QMP ``cont``): QEMU drops UART output
    while no client is attached, so resuming after the open loses nothing.
    Both run with ``-icount shift=0``: one instruction per virtual
    nanosecond, so cost counts are deterministic instruction counts.

Usage::

    from host.emulator import start_emulator

    with start_emulator("mps2-an386") as emu:          # builds, starts paused
        ser = serial.serial_for_url(emu.port, baudrate=115200, timeout=1)
        emu.resume()                                    # no-op for posix
        ...
    # leaving the block stops QEMU / the host program (no zombies)

or ``ser = emu.open_serial(timeout=1)``, which opens the port and resumes.
Command line: ``python -m host.emulator mps2-an386`` prints ``SERIAL <path>``
and serves until interrupted.

Every wait has a timeout; failures raise :class:`EmulatorError` with what to
do about them (install QEMU, build the firmware).
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE_DIR = ROOT / "firmware"

#: QEMU machine and extra arguments per emulated board.
QEMU_BOARDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mps2-an386": ("mps2-an386", ("-icount", "shift=0")),
    "netduinoplus2": ("netduinoplus2", ("-icount", "shift=0")),
}
BOARDS: tuple[str, ...] = ("posix",) + tuple(QEMU_BOARDS)

#: Programs the firmware Makefile builds, and the make target for each.
PROGRAMS: dict[str, str] = {"sd_firmware": "all", "port_echo": "echo"}

QEMU_INSTALL_HINT = (
    "install it with `sudo apt-get install qemu-system-arm` "
    "(or run firmware/tools/install-deps.sh)"
)


#: The board runs in a session of its own, out of the terminal's process group: a Ctrl-C reaches
#: the host tool only, which stops the board itself (Emulator.stop) after it is done with it
#: (host.listen still ends the stream on the board after the first Ctrl-C).
_OWN_SESSION = os.name == "posix"


class EmulatorError(RuntimeError):
    """The board could not be started (message says what to do)."""


def _build_dir(board: str, gen: str | os.PathLike[str] | None) -> Path:
    """firmware/build/<board>, or for another model's generated sources (``make GEN=``) the folder the
    Makefile picks for them (it asks make, so the two never disagree)."""
    if gen is None:
        return FIRMWARE_DIR / "build" / board
    cmd = ["make", "-s", "--no-print-directory", "-C", str(FIRMWARE_DIR), f"BOARD={board}",
           f"GEN={Path(gen).resolve()}", "print-OUT"]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except FileNotFoundError as exc:
        raise EmulatorError("`make` not found: install it with `sudo apt-get install make`") from exc
    if res.returncode != 0 or not res.stdout.strip():
        raise EmulatorError(f"`{' '.join(cmd)}` failed: {res.stderr.strip()[-500:]}")
    return FIRMWARE_DIR / res.stdout.strip()


def program_path(board: str, program: str = "sd_firmware", *, gen: str | os.PathLike[str] | None = None) -> Path:
    """Path of a built program: ``firmware/build/<board>/<program>[.elf]`` (another folder for ``gen``)."""
    suffix = "" if board == "posix" else ".elf"
    return _build_dir(board, gen) / f"{program}{suffix}"


def build_firmware(board: str, program: str = "sd_firmware", *, timeout: float = 600.0,
                   gen: str | os.PathLike[str] | None = None) -> Path:
    """Run ``make -C firmware BOARD=<board> [GEN=<gen>] <target>``; return the program path.

    ``gen``: the generated sources of another model (convert.quantize's --c-out folder) instead of
    firmware/generated; they build in a folder of their own."""
    if program not in PROGRAMS:
        raise EmulatorError(f"unknown program {program!r}; known: {sorted(PROGRAMS)}")
    cmd = ["make", "-C", str(FIRMWARE_DIR), f"BOARD={board}", PROGRAMS[program]]
    if gen is not None:
        cmd.insert(-1, f"GEN={Path(gen).resolve()}")
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as exc:
        raise EmulatorError("`make` not found: install it with `sudo apt-get install make`") from exc
    except subprocess.TimeoutExpired as exc:
        raise EmulatorError(f"`{' '.join(cmd)}` took more than {timeout:.0f} s") from exc
    if res.returncode != 0:
        tail = "\n".join((res.stdout + res.stderr).splitlines()[-25:])
        raise EmulatorError(f"`{' '.join(cmd)}` failed (status {res.returncode}):\n{tail}")
    return program_path(board, program, gen=gen)


class Emulator:
    """A running board: ``port`` is its serial port path.

    Use as a context manager, or call :meth:`stop` yourself.
    """

    board: str
    port: str
    firmware: Path

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._qmp: _Qmp | None = None
        self._log: Path | None = None
        self._resumed = False
        self._exit_on_eof = False

    # -- lifecycle ---------------------------------------------------
    def __enter__(self) -> "Emulator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def is_qemu(self) -> bool:
        return self.board in QEMU_BOARDS

    def resume(self, timeout: float = 5.0) -> None:
        """Let the emulated CPU run (QMP ``cont``). Idempotent; no-op for posix."""
        if self._resumed or self._qmp is None:
            self._resumed = True
            return
        self._qmp.command("cont", timeout=timeout)
        self._resumed = True

    def open_serial(self, *, baudrate: int = 115200, timeout: float | None = 1.0, **kw: Any):
        """Open the port with ``serial.serial_for_url``, then :meth:`resume`."""
        import serial  # pyserial

        ser = serial.serial_for_url(self.port, baudrate=baudrate, timeout=timeout, **kw)
        self.resume()
        return ser

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log(self) -> str:
        """What the process wrote on stderr (and QEMU on stdout) so far."""
        if self._log is None or not self._log.exists():
            return ""
        return self._log.read_text(errors="replace")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the board and reap the process (QMP quit, then TERM, then KILL)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if self._qmp is not None and proc.poll() is None:
                try:
                    self._qmp.command("quit", timeout=timeout)
                except (EmulatorError, OSError):
                    pass
            elif getattr(self, "board", None) == "posix" and not self._exit_on_eof and proc.poll() is None:
                proc.terminate()  # it serves until told to stop: waiting `timeout` for it would only cost time
            _reap(proc, timeout)
        if self._qmp is not None:
            self._qmp.close()
            self._qmp = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __del__(self) -> None:  # last resort: never leave a process behind
        try:
            self.stop(timeout=1.0)
        except Exception:
            pass


def _reap(proc: subprocess.Popen[bytes], timeout: float) -> None:
    if proc.poll() is None:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def start_emulator(
    board: str,
    *,
    build: bool = True,
    program: str = "sd_firmware",
    firmware: str | os.PathLike[str] | None = None,
    paused: bool = True,
    timeout: float = 10.0,
    exit_on_eof: bool = False,
    qemu: str = "qemu-system-arm",
    qemu_args: Sequence[str] = (),
    gen: str | os.PathLike[str] | None = None,
) -> Emulator:
    """Start ``board`` and return an :class:`Emulator` (a context manager).

    Parameters
    ----------
    board : {"posix", "mps2-an386", "netduinoplus2"}
    build : bool
        Run ``make -C firmware BOARD=<board>`` first (cheap when up to date).
    program : {"sd_firmware", "port_echo"}
        Which program of ``firmware/build/<board>/`` to run.
    firmware : path, optional
        Run this executable / ELF instead (``build`` and ``program`` ignored).
    paused : bool
        QEMU only: stay halted until :meth:`Emulator.resume`. With False the
        CPU runs at once (fine for request/response protocols).
    timeout : float
        Seconds to wait for the serial port path.
    exit_on_eof : bool
        posix only: pass ``--exit-on-eof`` (exit when the client closes).
    qemu_args : sequence of str
        Extra QEMU arguments (e.g. ``("-d", "guest_errors")``).
    gen : path, optional
        Build and run the firmware of another model: its generated sources
        (``convert.quantize`` writes them to ``<model>/firmware``); default
        firmware/generated, the released model.
    """
    if board not in BOARDS:
        raise EmulatorError(f"unknown board {board!r}; emulated boards: {', '.join(BOARDS)}")
    if board in QEMU_BOARDS and shutil.which(qemu) is None:
        raise EmulatorError(f"{qemu} not found: {QEMU_INSTALL_HINT}")

    if firmware is not None:
        fw = Path(firmware)
        if not fw.exists():
            raise EmulatorError(f"firmware {fw} does not exist")
    elif build:
        fw = build_firmware(board, program, gen=gen)
    else:
        fw = program_path(board, program, gen=gen)
        if not fw.exists():
            target = PROGRAMS.get(program, "all")
            raise EmulatorError(
                f"{fw} not found: build it with `make -C firmware BOARD={board} {target}`"
            )

    emu = Emulator()
    emu.board = board
    emu.firmware = fw
    emu._tmp = tempfile.TemporaryDirectory(prefix="sd-emu-")
    emu._log = Path(emu._tmp.name) / "log.txt"
    try:
        if board == "posix":
            emu._exit_on_eof = exit_on_eof
            _start_posix(emu, fw, timeout=timeout, exit_on_eof=exit_on_eof)
        else:
            _start_qemu(emu, fw, qemu=qemu, extra=qemu_args, timeout=timeout)
            if not paused:
                emu.resume()
    except BaseException:
        emu.stop(timeout=2.0)
        raise
    return emu


# --------------------------------------------------------------- posix
def _start_posix(emu: Emulator, fw: Path, *, timeout: float, exit_on_eof: bool) -> None:
    cmd = [str(fw)] + (["--exit-on-eof"] if exit_on_eof else [])
    assert emu._log is not None
    with open(emu._log, "wb") as log:
        emu._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                                     start_new_session=_OWN_SESSION)
    assert emu._proc.stdout is not None
    line = _read_line(emu._proc, emu._proc.stdout, timeout)
    if not line.startswith("SERIAL "):
        raise EmulatorError(
            f"{fw} printed {line!r} instead of 'SERIAL <path>'; stderr:\n{emu.log()}"
        )
    emu.port = line[len("SERIAL "):].strip()
    emu._resumed = True


def _read_line(proc: subprocess.Popen[bytes], stream: Any, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    buf = b""
    fd = stream.fileno()
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise EmulatorError(f"no 'SERIAL <path>' line within {timeout:.0f} s")
            if not sel.select(left):
                continue
            chunk = os.read(fd, 256)
            if not chunk:
                raise EmulatorError(f"program exited (status {proc.poll()}) before printing its port")
            buf += chunk
    return buf.split(b"\n", 1)[0].decode(errors="replace")


# --------------------------------------------------------------- QEMU
def _start_qemu(emu: Emulator, fw: Path, *, qemu: str, extra: Sequence[str], timeout: float) -> None:
    machine, board_args = QEMU_BOARDS[emu.board]
    assert emu._tmp is not None and emu._log is not None
    sock_path = str(Path(emu._tmp.name) / "qmp.sock")
    cmd = [
        qemu, "-M", machine, *board_args,
        "-display", "none", "-monitor", "none",
        "-chardev", "pty,id=ser0", "-serial", "chardev:ser0",
        "-qmp", f"unix:{sock_path},server=on,wait=off",
        "-S", "-kernel", str(fw), *extra,
    ]
    with open(emu._log, "wb") as log:
        emu._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=_OWN_SESSION)
    emu._qmp = _Qmp.connect(sock_path, emu._proc, timeout=timeout, log=emu.log)
    chardevs = emu._qmp.command("query-chardev", timeout=timeout)
    for dev in chardevs:
        if dev.get("label") == "ser0" and str(dev.get("filename", "")).startswith("pty:"):
            emu.port = dev["filename"][len("pty:"):]
            return
    raise EmulatorError(f"QEMU reported no pty for ser0: {chardevs!r}")


class _Qmp:
    """Minimal QMP client: one command at a time, events skipped."""

    def __init__(self, sock: socket.socket, log: Any) -> None:
        self._sock = sock
        self._buf = b""
        self._log = log

    @classmethod
    def connect(cls, path: str, proc: subprocess.Popen[bytes], *, timeout: float, log: Any) -> "_Qmp":
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise EmulatorError(f"QEMU exited with status {proc.returncode}:\n{log()}")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                if time.monotonic() > deadline:
                    raise EmulatorError(f"QEMU's QMP socket did not open within {timeout:.0f} s:\n{log()}")
                time.sleep(0.02)
        qmp = cls(sock, log)
        qmp._read(deadline)  # greeting
        qmp.command("qmp_capabilities", timeout=max(0.1, deadline - time.monotonic()))
        return qmp

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise EmulatorError("QEMU did not answer on QMP in time")
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(65536)
            except socket.timeout as exc:
                raise EmulatorError("QEMU did not answer on QMP in time") from exc
            if not chunk:
                raise EmulatorError(f"QEMU closed its QMP socket:\n{self._log()}")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def command(self, name: str, *, timeout: float = 5.0, **arguments: Any) -> Any:
        msg: dict[str, Any] = {"execute": name}
        if arguments:
            msg["arguments"] = arguments
        self._sock.sendall(json.dumps(msg).encode() + b"\r\n")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise EmulatorError(f"QMP {name}: {reply['error']}")
            # anything else is an asynchronous event: skip it

    def close(self) -> None:
        self._sock.close()


# --------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m host.emulator",
        description="Start an emulated board, print 'SERIAL <path>', serve until Ctrl-C.",
    )
    ap.add_argument("board", choices=BOARDS)
    ap.add_argument("--program", choices=sorted(PROGRAMS), default="sd_firmware",
                    help="program to run (default: %(default)s)")
    ap.add_argument("--no-build", action="store_true", help="do not run make first")
    args = ap.parse_args(argv)
    try:
        with start_emulator(args.board, build=not args.no_build, program=args.program,
                            paused=False) as emu:
            print(f"SERIAL {emu.port}", flush=True)
            while emu.alive():
                time.sleep(0.5)
            print(f"board exited:\n{emu.log()}", file=sys.stderr)
            return 1
    except EmulatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
