"""G.711 mu-law: 8-bit samples for a serial link too slow for 16-bit audio.

8 kHz int16 audio is 128 kbit/s; a 115,200-baud UART carries about 92 kbit/s
of payload (8N1). Sent as mu-law bytes the stream needs 64 kbit/s, so a real
board keeps up with a live microphone at the default baud rate
(docs/streaming.md). The device decodes each byte back to int16 before its
front end sees it (firmware/src/sd_protocol.c, ``sd_mulaw_decode``, with the
constants below emitted into ``sd_stream_config.h``), and the Python
reference runs on ``decode(encode(x))``: both sides compute on the same
samples, so the streaming parity contract holds for mu-law streams exactly
as for 16-bit ones. Encoding loses precision (about 38 dB signal-to-noise for
speech, the telephone standard), not parity.

The rule is ITU-T G.711's mu-law (mu = 255) in its common integer form: the
magnitude is clipped to ``CLIP``, ``BIAS`` is added, and the byte keeps the
sign, the position of the leading one above bit 7 (3 bits) and the 4 bits
below it, all inverted. Decoding puts the 4 bits back in the middle of their
interval: ``((mantissa << 3) + BIAS) << exponent) - BIAS``, so the 256 codes
decode to values in -32124..32124 (0xFF and 0x7F both to 0). No zero-code
suppression.
"""

from __future__ import annotations

import numpy as np

BIAS = 0x84
"""Added to the magnitude before the segment is found (132), removed after decoding."""
CLIP = 32635
"""Largest magnitude encoded (32767 - BIAS): louder samples take the top code."""


def encode(x: np.ndarray) -> np.ndarray:
    """int16 samples [shape=(n,)] -> mu-law bytes, uint8 [shape=(n,)]."""
    v = np.asarray(x)
    if v.dtype != np.int16:
        raise ValueError(f"mu-law encodes int16 samples, got {v.dtype}")
    s = v.astype(np.int32)
    sign = np.where(s < 0, 0x80, 0x00)
    mag = np.minimum(np.abs(s), CLIP) + BIAS  # 132 .. 32767
    exponent = np.floor(np.log2(mag)).astype(np.int32) - 7  # 0 .. 7
    # log2 in float64 is exact at powers of two, but check it in integers anyway.
    exponent = np.where(mag >> (exponent + 7) == 0, exponent - 1, exponent)
    exponent = np.where(mag >> (exponent + 8) != 0, exponent + 1, exponent)
    mantissa = (mag >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


def decode(u: np.ndarray) -> np.ndarray:
    """mu-law bytes, uint8 [shape=(n,)] -> int16 samples [shape=(n,)]."""
    b = np.asarray(u)
    if b.dtype != np.uint8:
        raise ValueError(f"mu-law decodes uint8 bytes, got {b.dtype}")
    c = (~b.astype(np.int32)) & 0xFF
    exponent = (c >> 4) & 0x07
    mantissa = c & 0x0F
    mag = (((mantissa << 3) + BIAS) << exponent) - BIAS
    return np.where(c & 0x80, -mag, mag).astype(np.int16)


def roundtrip(x: np.ndarray) -> np.ndarray:
    """What the device's front end sees when ``x`` is sent as mu-law: ``decode(encode(x))``."""
    return decode(encode(x))
