"""Writes the fuzzer's seed corpus: byte streams the host could send.

    python3 firmware/tests/fuzz/gen_seeds.py OUT_DIR

Every frame is built by host/protocol.py (the host's own encoder, stdlib
only), so the seeds are what a real host sends, plus deliberate damage.
Deterministic: fixed contents, a seeded random.Random for noise; the same
files on every run. Run by `make -C firmware fuzz-seeds` into build/fuzz/seeds.
"""

from __future__ import annotations

import math
import random
import struct
import sys
import zlib

import numpy as np
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from host import protocol as p  # noqa: E402

T = p.MsgType


def frame(type_: int, seq: int, payload: bytes = b"", *, version: int = p.PROTOCOL_VERSION) -> bytes:
    """One request as the host sends it: leading 0x00, COBS frame, 0x00."""
    return p.encode_frame(p.Frame(type_, seq, payload, version), leading_delimiter=True)


def raw_frame(body: bytes) -> bytes:
    """Encodes decoded frame bytes as they are (no CRC or length fix-up)."""
    return b"\x00" + p.cobs_encode(body) + b"\x00"


def with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def tone(n: int, freq: float, amp: float, phase: int = 0) -> bytes:
    return b"".join(struct.pack("<h", int(round(amp * math.sin(2 * math.pi * freq * (i + phase) / 8000))))
                    for i in range(n))


def clip_session(clip: int, samples: bytes, chunk: int, seq: int, *, want_features: bool) -> bytes:
    out = b""
    n = len(samples) // 2
    for off in range(0, max(n, 1), chunk):
        part = samples[2 * off: 2 * min(off + chunk, n)]
        out += frame(T.AUDIO, seq, p.build_audio(clip, off, part, begin=off == 0))
        seq += 1
    return out + frame(T.CLASSIFY, seq, p.build_classify(clip, want_features=want_features))


def seeds() -> dict[str, bytes]:
    rng = random.Random(6)
    s: dict[str, bytes] = {}
    s["ping_empty"] = frame(T.PING, 1)
    s["ping_zeros"] = frame(T.PING, 0x0201, b"\x00\x11\x00")
    s["ping_254"] = frame(T.PING, 7, bytes(range(1, 255)))
    s["ping_max"] = frame(T.PING, 0xFFFF, bytes(rng.randrange(256) for _ in range(p.MAX_PAYLOAD)))
    s["info"] = frame(T.INFO, 2)
    s["reset"] = frame(T.RESET, 3)
    s["stats"] = frame(T.STATS, 4)
    s["stats_after_damage"] = (frame(T.PING, 5, b"abc")[:-3] + b"\x00" + frame(T.STATS, 6)
                               + frame(T.STATS, 7, b"z"))
    s["info_ping_reset"] = frame(T.INFO, 10) + frame(T.PING, 11, b"abc") + frame(T.RESET, 12)
    # clips: short ones (the front end pads to 4000 samples) and a whole 0.5 s one
    s["clip_short"] = clip_session(5, tone(300, 440, 8000), 100, 20, want_features=False)
    s["clip_features"] = clip_session(6, tone(700, 900, 20000), 256, 30, want_features=True)
    s["clip_full"] = clip_session(7, tone(4000, 300, 12000), 512, 40, want_features=False)
    s["clip_empty"] = frame(T.AUDIO, 50, p.build_audio(8, 0, b"", begin=True)) + \
        frame(T.CLASSIFY, 51, p.build_classify(8, want_features=False))
    # retries: a chunk resent, CLASSIFY resent (replay cache), BEGIN resent
    c = tone(64, 1000, 5000)
    s["retries"] = (frame(T.AUDIO, 60, p.build_audio(9, 0, c, begin=True)) * 2
                    + frame(T.AUDIO, 61, p.build_audio(9, 32, c, begin=False)) * 2
                    + frame(T.CLASSIFY, 62, p.build_classify(9, want_features=False)) * 2
                    + frame(T.CLASSIFY, 63, p.build_classify(9, want_features=False)))
    # clip errors
    s["clip_errors"] = (frame(T.AUDIO, 70, p.build_audio(10, 0, c, begin=False))          # NO_CLIP
                        + frame(T.CLASSIFY, 71, p.build_classify(10, want_features=False))  # NO_CLIP
                        + frame(T.AUDIO, 72, p.build_audio(10, 5, c, begin=True))          # BAD_ARGUMENT
                        + frame(T.AUDIO, 73, p.build_audio(10, 0, c, begin=True))
                        + frame(T.AUDIO, 74, p.build_audio(11, 32, c, begin=False))        # CLIP_MISMATCH
                        + frame(T.AUDIO, 75, p.build_audio(10, 99, c, begin=False))        # SEQUENCE
                        + frame(T.CLASSIFY, 76, p.build_classify(11, want_features=True))  # CLIP_MISMATCH
                        + frame(T.INFER, 77, bytes(p.INPUT_SIZE))                          # clip stays open
                        + frame(T.AUDIO, 78, p.build_audio(10, 32, c, begin=False))
                        + frame(T.RESET, 79)
                        + frame(T.CLASSIFY, 80, p.build_classify(10, want_features=False)))  # NO_CLIP
    bad_audio = struct.pack("<IIBBH", 12, 0, 0x81, 0, 1) + b"\x01\x00"
    s["bad_arguments"] = (frame(T.AUDIO, 90, bad_audio)
                          + frame(T.AUDIO, 91, struct.pack("<IIBBH", 12, 0, 1, 1, 0))
                          + frame(T.AUDIO, 92, struct.pack("<IIBBH", 12, 0, 1, 0, 513) + bytes(1026))
                          + frame(T.AUDIO, 93, struct.pack("<IIBBH", 12, 0, 1, 0, 3) + bytes(4))
                          + frame(T.AUDIO, 94, b"\x01\x02")
                          + frame(T.CLASSIFY, 95, struct.pack("<IBB", 12, 2, 0))
                          + frame(T.CLASSIFY, 96, struct.pack("<IBB", 12, 0, 9))
                          + frame(T.CLASSIFY, 97, b"\x00")
                          + frame(T.INFO, 98, b"x") + frame(T.RESET, 99, b"y")
                          + frame(T.INFER, 100, bytes(10))
                          + frame(0x42, 101) + frame(0x81, 102)
                          + frame(T.PING, 103, b"v3", version=p.PROTOCOL_VERSION + 1))
    # streams: silence, then a tone burst the detector takes for an utterance, END; resent chunks
    # (BEGIN, middle, END), errors; under the 16 KB input limit
    quiet = b"".join(struct.pack("<h", rng.randrange(-20, 21)) for _ in range(4096))
    audio = quiet + tone(1536, 500, 12000) + quiet[:1024]
    st = b""
    seq = 130
    for off in range(0, len(audio) // 2, 512):
        part = audio[2 * off : 2 * off + 1024]
        last = off + 512 >= len(audio) // 2
        st += frame(T.STREAM, seq, p.build_stream(21, off, part, begin=off == 0, end=last))
        if off in (0, 4096) or last:
            st += frame(T.STREAM, seq, p.build_stream(21, off, part, begin=off == 0, end=last))  # resent
        seq += 1
    s["stream_burst"] = st
    c2 = tone(64, 700, 3000)
    s["stream_errors"] = (frame(T.STREAM, 160, p.build_stream(22, 0, c2))                       # NO_CLIP
                          + frame(T.STREAM, 161, p.build_stream(22, 5, c2, begin=True))         # BAD_ARGUMENT
                          + frame(T.STREAM, 162, p.build_stream(22, 0, c2, begin=True))
                          + frame(T.STREAM, 163, p.build_stream(23, 64, c2))                    # CLIP_MISMATCH
                          + frame(T.STREAM, 164, p.build_stream(22, 99, c2))                    # SEQUENCE
                          + frame(T.STREAM, 165, p.build_stream(22, 64, c2))
                          + frame(T.STREAM, 166, p.build_stream(22, 128, b"", end=True))
                          + frame(T.STREAM, 167, p.build_stream(22, 128, b"", end=True))        # replayed
                          + frame(T.STREAM, 168, p.build_stream(22, 128, c2))                   # SEQUENCE: ended
                          + frame(T.STREAM, 169, struct.pack("<IQBBH", 22, 0, 8, 0, 0))         # BAD_ARGUMENT
                          + frame(T.STREAM, 170, struct.pack("<IQBBH", 22, 0, 1, 0, 513) + bytes(1026))
                          + frame(T.STREAM, 171, b"\x01\x02")
                          + frame(T.AUDIO, 172, p.build_audio(24, 0, c2, begin=True))
                          + frame(T.STREAM, 173, p.build_stream(22, 192, c2)))                  # NO_CLIP
    # INFER: zeros, extremes, noise
    s["infer_zero"] = frame(T.INFER, 110, bytes(p.INPUT_SIZE))
    s["infer_extremes"] = frame(T.INFER, 111, bytes([0x80, 0x7F] * (p.INPUT_SIZE // 2)))
    s["infer_noise"] = frame(T.INFER, 112, bytes(rng.randrange(256) for _ in range(p.INPUT_SIZE)))
    # protocol 4: a mu-law stream, features read in parts after CLASSIFY (and its replay), a tensor
    # written in parts for an empty INFER, and their error cases
    from train import mulaw

    u = mulaw.encode(np.frombuffer(tone(3000, 300.0, 9000.0), "<i2")).tobytes()
    s["stream_mulaw"] = b"".join(frame(T.STREAM, 180 + i, p.build_stream(24, off, u[off : off + 512], begin=off == 0,
                                                                          end=off + 512 >= len(u), mulaw=True))
                                 for i, off in enumerate(range(0, len(u), 512)))
    parts = clip_session(25, tone(2000, 500.0, 8000.0), 512, 190, want_features=False)
    parts += frame(T.CLASSIFY, 194, p.build_classify(25, want_features=True))                   # replayed
    parts += b"".join(frame(T.FEATURES, 195 + i, p.build_features(25, off, 320)) for i, off in enumerate(range(0, 1280, 320)))
    parts += (frame(T.FEATURES, 199, p.build_features(26, 0, 10))                             # NO_CLIP
              + frame(T.FEATURES, 200, struct.pack("<IHH", 25, 1000, 281))                      # BAD_ARGUMENT
              + frame(T.FEATURES, 201, b"\x19\x00\x00")                                         # BAD_LENGTH
              + frame(T.FEATURES, 202, p.build_features(25, 0, p.INPUT_SIZE)))                 # whole: the CRC check
    s["features_in_parts"] = parts
    t = bytes(rng.randrange(256) for _ in range(p.INPUT_SIZE))
    s["tensor_then_infer"] = (b"".join(frame(T.TENSOR, 210 + i, p.build_tensor(off, t[off : off + 400]))
                                       for i, off in enumerate(range(0, 1280, 400)))
                              + frame(T.INFER, 214) + frame(T.INFER, 215, t)
                              + frame(T.TENSOR, 216, struct.pack("<HH", 1200, 81) + bytes(81))      # BAD_ARGUMENT
                              + frame(T.TENSOR, 217, struct.pack("<HH", 0, 5) + bytes(4))           # BAD_LENGTH
                              + frame(T.INFER, 218, bytes(5)))                                      # BAD_LENGTH
    # damaged frames and resynchronization
    good = frame(T.PING, 120, b"ok")
    body = p.cobs_decode(good[1:-1])
    s["bad_crc"] = raw_frame(body[:-1] + bytes([body[-1] ^ 1])) + good
    s["bad_length_field"] = raw_frame(with_crc(body[:4] + b"\x05\x00" + body[6:-4])) + good
    s["short_frames"] = raw_frame(body[:9]) + raw_frame(body[:5]) + raw_frame(b"\x01") + good
    s["truncated_cobs"] = b"\x00\x09\x01\x02\x00" + good
    s["too_large"] = raw_frame(with_crc(struct.pack("<BBHH", 1, 1, 121, 1401) + bytes(range(1, 256)) * 6)) + good
    s["noise_then_frame"] = bytes(rng.randrange(1, 256) for _ in range(300)) + good + b"\x00\x00\x00"
    s["split_delimiters"] = b"\x00\x00" + good + b"\x00" + frame(T.INFO, 122)[1:]
    return s


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, data in seeds().items():
        (out / f"{name}.bin").write_bytes(data)
    print(f"gen_seeds: {len(seeds())} seeds in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
