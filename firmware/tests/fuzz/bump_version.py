"""Rewrite the fuzzer's regression inputs for the current protocol version.

    python firmware/tests/fuzz/bump_version.py          # rewrite regressions/*.hex in place
    python firmware/tests/fuzz/bump_version.py --check  # exit 1 if any still carries an old version

Every well-formed frame in a regression input (valid COBS, valid CRC, a
version byte below host.protocol.PROTOCOL_VERSION) gets the current version
and a new CRC, encoded in the same COBS style as before (with or without the
optional 0x01 block after a final 0xFF block). Anything else (line noise,
truncated blocks, frames too large, frames damaged on purpose) is kept byte
for byte, as are the comment lines. Without this, a version bump turns every
hand-written case into a BAD_VERSION case and the boundary cases behind
them stop being exercised.
"""

from __future__ import annotations

import argparse
import struct
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from host import protocol as p  # noqa: E402

REGRESSIONS = Path(__file__).resolve().parent / "regressions"


def _bump_segment(seg: bytes, version: int) -> tuple[bytes, bool]:
    """One segment between delimiters: (new bytes, whether it changed)."""
    try:
        raw = p.cobs_decode(seg)
    except p.ProtocolError:
        return seg, False
    if not p.HEADER_SIZE + p.CRC_SIZE <= len(raw) <= p.MAX_FRAME:
        return seg, False
    (crc,) = struct.unpack_from("<I", raw, len(raw) - p.CRC_SIZE)
    if zlib.crc32(raw[: -p.CRC_SIZE]) != crc or raw[0] >= version:
        return seg, False
    style = p.cobs_encode(raw)
    if seg == style:
        extra = b""
    elif seg == style + b"\x01":
        extra = b"\x01"
    else:
        return seg, False  # an encoding this tool does not reproduce: leave it alone
    body = bytes([version]) + raw[1 : -p.CRC_SIZE]
    new = body + struct.pack("<I", zlib.crc32(body))
    return p.cobs_encode(new) + extra, True


def bump(data: bytes, version: int = p.PROTOCOL_VERSION) -> tuple[bytes, int]:
    parts = data.split(b"\x00")
    changed = 0
    for i, seg in enumerate(parts):
        if seg:
            parts[i], did = _bump_segment(seg, version)
            changed += did
    return b"\x00".join(parts), changed


def read_hex(path: Path) -> tuple[list[str], bytes]:
    comments, hexdigits = [], []
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#"):
            comments.append(line)
        else:
            hexdigits.append(line.split("#", 1)[0])
    return comments, bytes.fromhex("".join("".join(hexdigits).split()))


def write_hex(path: Path, comments: list[str], data: bytes) -> None:
    hx = data.hex()
    rows = [" ".join(hx[i : i + 2] for i in range(j, min(j + 64, len(hx)), 2)) for j in range(0, len(hx), 64)]
    path.write_text("\n".join(comments + rows) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python firmware/tests/fuzz/bump_version.py", description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if an input has an old-version frame")
    args = ap.parse_args(argv)
    stale = 0
    for path in sorted(REGRESSIONS.glob("*.hex")):
        comments, data = read_hex(path)
        new, changed = bump(data)
        if changed:
            stale += 1
            print(f"{path.name}: {changed} frame(s) {'need' if args.check else 'moved to'} version {p.PROTOCOL_VERSION}")
            if not args.check:
                write_hex(path, comments, new)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
