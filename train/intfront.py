"""Front end v2: the integer log-mel front end with noise suppression.

Every step is integer arithmetic on numpy ``int64`` arrays, written from the
definitions below and never calling the C code; firmware/src/sd_frontend.c
and sd_rfft_q15.c compute the same integers (with Cortex-M4 SIMD
instructions where they give the same bits), so the device's features equal
these to the last bit on every machine. All tables come from `tables`
and are emitted into C by convert/firmware_gen.py.

One frame is ``n_fft = 2 * hop_length`` int16 samples ``x[n]`` (the
framing, padding and window rule are those of train/features.py, steps 1-3).
For each frame:

1. **Window and block scaling.** ``B`` is the frame's signed width: the bit
   length of the largest ``x[n] ^ (x[n] >> 15)`` (``|x|`` for ``x >= 0``,
   ``|x| - 1`` below), so every ``x[n]`` is in ``[-2^B, 2^B)``. With the
   periodic Hann window in Q15 (``h[n] = min(32767, round(32768 * (0.5 -
   0.5 cos(2 pi n / N))))``, exactly symmetric), ``v[n] = (x[n] * h[n]) >>
   s`` with ``s = B + 1`` (arithmetic shift, floor) is in ``[-2^14, 2^14)``:
   14 bits and a sign whatever the frame's level, so a quiet frame keeps
   the resolution of a loud one (``s`` is undone in step 5). The device
   finds ``B`` of each hop once, with its energy.
2. **Complex FFT, Q15, radix 4.** ``z[n] = v[2n] + j v[2n+1]`` (``M =
   N / 2`` points), transformed in place by ``log4(M)`` radix-4
   decimation-in-frequency stages. In a stage of group length ``L`` (``q =
   L / 4``, ``stride = M / L``), each group's ``a = z[i], b = z[i+q], c =
   z[i+2q], d = z[i+3q]`` (``0 <= i < q``) become, with ``>> 1`` on each
   real and imaginary part (a halving add: the sums never grow):
   ``u0 = (a+c)>>1, u1 = (a-c)>>1, u2 = (b+d)>>1, u3 = (b-d)>>1``;
   ``z[i] = (u0+u2)>>1``, ``z[i+q] = W^(i*stride) * ((u1 - j u3)>>1)``,
   ``z[i+2q] = W^(2*i*stride) * ((u0-u2)>>1)``,
   ``z[i+3q] = W^(3*i*stride) * ((u1 + j u3)>>1)``,
   where ``W^m = exp(-2 pi j m / M)`` in Q15 (``round(32768 * cos)``,
   ``round(-32768 * sin)``, clamped to +-32767) and a product is
   ``re = (ar*wr - ai*wi + 2^14) >> 15``, ``im = (ar*wi + ai*wr + 2^14) >> 15``,
   except that a product with ``W^0`` (``i = 0``) is the value itself.
   The output is ``DFT_M(z) / M`` in base-4 digit-reversed order.
3. **Real spectrum and power.** With ``Z[k]`` the output in natural order,
   for ``k = 0 .. M/2``: ``e = (Z[k] + conj Z[M-k]) >> 1``, ``o = (Z[k] -
   conj Z[M-k]) >> 1`` (indices mod M), ``t = (o.re*wi + o.im*wr + 2^14) >> 15
   + j (o.im*wi - o.re*wr + 2^14) >> 15`` with ``(wr, wi)`` = Q15 of
   ``exp(-2 pi j k / N)``: ``t = W_N^k (-j o)``; for ``k = 0``, ``t = -j o =
   o.im - j o.re`` exactly. Then ``X[k] = (e + t) >> 1``
   and, for ``k < M/2``, ``X[M-k] = (e - t) >> 1`` (the conjugate of the
   true bin, same power). ``X = DFT_N(v) / N``; ``P[k] = X.re^2 + X.im^2``.
   Every complex value in steps 2-3 has modulus below ``2^14 * sqrt 2 + 8``,
   so each part fits int16 and ``P < 2^31`` (docs/frontend.md has the bounds).
4. **Mel.** ``E[m] = sum_k Wm[m, k] * P[k]``: librosa's Slaney filterbank
   (the design) scaled by ``2^mel_weight_bits`` and rounded to uint16
   weights; ``E < 2^52`` (uint64 on the device).
5. **Log.** ``L = log2(E) + 2 s - 42 - mel_weight_bits`` in Q``log_frac_bits``
   (``F``): the leading one's position ``b``, the 16 bits below it as
   ``f``, ``log2(1 + f / 2^16)`` from a 65-entry Q16 table with linear
   interpolation on the low 10 bits of ``f``, rounded to Q``F``. ``E = 0``
   and anything below ``log2(log_floor)`` give that floor. ``L / 2^F`` is
   the log2 of the mel power of ``x / 32768`` (librosa's scale), to within
   the FFT's rounding.
6. **Noise suppression** (state per band, carried from frame to frame).
   The noise floor ``Nf`` follows ``L``: it starts at the first frame's
   ``L``, then ``Nf += (L - Nf) >> noise_fall_shift`` when ``L < Nf`` (falls
   fast) and ``>> noise_rise_shift`` otherwise (rises slowly: speech is
   short, noise is long). With ``d = L - Nf``, spectral subtraction is one
   table look-up: ``S = L + G[clamp(d >> (F - 5), 0, 255)]``, ``G[i] =
   round(2^F log2(max(1 - noise_oversub * 2^-(i + 0.5) / 32, noise_min_remaining)))``:
   what is left of the band's energy once ``noise_oversub`` times the floor is
   taken away, never less than ``noise_min_remaining`` of it.
7. **Gain control** (state per band). ``A`` starts at the first frame's
   ``S`` and follows it, ``A += (S - A) >> agc_shift``; the output is ``S -
   ((agc_strength * A) >> 8)``: the band's recent level, scaled by
   ``agc_strength / 256``, is divided out (PCAN's idea in the log domain;
   0 turns it off).

The output of a frame is int32 in Q``F`` (|value| < 2^16); train/features.py
takes it from there (normalization and int8 quantization in integers). The
state of steps 6-7 starts afresh with each clip and with each stream, and
lives as long as the clip or stream does (docs/frontend.md, "State").
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

FFT_INPUT_BITS = 14
"""Step 1: the scaled frame fits this many bits and a sign (s = B + 1 with the Q15 window's 15 bits)."""
Q15 = 15
LOG_TABLE_BITS = 6
"""Step 5: the log table has 2**6 + 1 entries."""
GAIN_INDEX_BITS = 5
"""Step 6: the subtraction table has 2**5 entries per octave of d ..."""
GAIN_TABLE_LEN = 256
"""... and covers 8 octaves."""


@dataclass(frozen=True)
class Tables:
    """Every table of the integer front end, as the device stores them (convert/firmware_gen.py)."""

    window: np.ndarray  # int16 [n_fft], Q15 periodic Hann (0 .. 32767)
    twiddle: np.ndarray  # int16 [3 M / 4, 2]: W_M^m (re, im) in Q15, the complex FFT's
    split: np.ndarray  # int16 [M / 2 + 1, 2]: W_N^k (re, im) in Q15, step 3's
    digit_rev: np.ndarray  # int64 [M]: position of Z[k] in the FFT's output
    mel_weights: np.ndarray  # int64 [n_mels, n_bins], uint16 values
    mel_weight_bits: int
    log_table: np.ndarray  # int64 [2**LOG_TABLE_BITS + 1], Q16 log2(1 + i / 64)
    gain_table: np.ndarray  # int64 [GAIN_TABLE_LEN], Q F, <= 0
    log_floor_q: int  # Q F


def _q15(v: np.ndarray) -> np.ndarray:
    return np.clip(np.round(v * 32768.0), -32767, 32767).astype(np.int64)


def _unit_circle(m: np.ndarray, n: int) -> np.ndarray:
    """exp(-2 pi j m / n) as Q15 (re, im) [shape=(len(m), 2)], from exactly symmetric float64 values."""
    m = np.asarray(m, np.int64) % n
    # reduce to the first octant's angle so that symmetric points get identical values
    ang = 2.0 * np.pi * m / n
    re, im = np.cos(ang), -np.sin(ang)
    return np.stack([_q15(re), _q15(im)], axis=-1)


def digit_reverse(n: int) -> np.ndarray:
    """Base-4 digit reversal of 0 .. n-1 (n a power of 4)."""
    digits = int(round(np.log(n) / np.log(4)))
    if 4**digits != n:
        raise ValueError(f"the radix-4 FFT needs n_fft / 2 to be a power of 4, got {n}")
    out = np.zeros(n, np.int64)
    for k in range(n):
        v, r = k, 0
        for _ in range(digits):
            r = r * 4 + v % 4
            v //= 4
        out[k] = r
    return out


@functools.lru_cache(maxsize=8)
def tables(cfg) -> Tables:
    """The tables for a v2 FrontendConfig (cached: the config is frozen and hashable)."""
    import librosa

    n = cfg.n_fft
    m = n // 2
    k = np.arange(n)
    kk = np.minimum(k, n - k)  # exactly symmetric: w[k] == w[n - k]
    window = np.minimum(32767, np.round(32768.0 * (0.5 - 0.5 * np.cos(2.0 * np.pi * kk / n)))).astype(np.int64)
    twiddle = _unit_circle(np.arange(3 * m // 4), m)
    split = _unit_circle(np.arange(m // 2 + 1), n)
    mel = librosa.filters.mel(sr=cfg.sr, n_fft=n, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax, dtype=np.float64)
    top = float(mel.max())
    bits = int(np.floor(np.log2(65535.0 / top)))
    weights = np.round(mel * 2.0**bits).astype(np.int64)
    for b in range(cfg.n_mels):
        if not weights[b].any():
            raise ValueError(f"mel band {b} has no non-zero integer weight; use fewer bands or a larger n_fft")
    i = np.arange(2**LOG_TABLE_BITS + 1)
    log_table = np.round(np.log2(1.0 + i / 2.0**LOG_TABLE_BITS) * 65536.0).astype(np.int64)
    F = cfg.log_frac_bits
    d = (np.arange(GAIN_TABLE_LEN) + 0.5) / 2.0**GAIN_INDEX_BITS
    left = np.maximum(1.0 - cfg.noise_oversub * 2.0**-d, cfg.noise_min_remaining)
    gain = np.round(np.log2(left) * 2.0**F).astype(np.int64)
    floor_q = int(np.round(np.log2(cfg.log_floor) * 2.0**F))
    return Tables(window, twiddle, split, digit_reverse(m), weights, bits, log_table, gain, floor_q)


def check_range(*arrays: np.ndarray, bits: int, what: str, signed: bool = True) -> None:
    """Raises OverflowError unless every value fits the device's type (the bounds of docs/frontend.md)."""
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    for a in arrays:
        if a.size and (int(a.min()) < lo or int(a.max()) > hi):
            raise OverflowError(f"{what}: value {int(a.min())} .. {int(a.max())} outside the device's "
                                f"{'int' if signed else 'uint'}{bits}")


def bit_length(v: np.ndarray) -> np.ndarray:
    """Bits of each non-negative integer below 2**53 (0 for 0), exact."""
    return np.frexp(np.asarray(v, np.float64))[1].astype(np.int64)


def _cmul(ar, ai, w):
    """(ar + j ai) * (wr + j wi) in Q15 with rounding (step 2's product); column 0 (W^0) is kept as it is."""
    wr, wi = w[..., 0], w[..., 1]
    re = (ar * wr - ai * wi + (1 << 14)) >> 15
    im = (ar * wi + ai * wr + (1 << 14)) >> 15
    re[..., 0] = ar[..., 0]
    im[..., 0] = ai[..., 0]
    return re, im


def cfft_q15(re: np.ndarray, im: np.ndarray, tw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step 2 over many frames: int64 [shape=(n, M)] in, DFT_M / M out in digit-reversed order."""
    nf, m = re.shape
    length, stride = m, 1
    while length > 1:
        q = length // 4
        r = re.reshape(nf, m // length, 4, q)
        i = im.reshape(nf, m // length, 4, q)
        u0r, u0i = (r[:, :, 0] + r[:, :, 2]) >> 1, (i[:, :, 0] + i[:, :, 2]) >> 1
        u1r, u1i = (r[:, :, 0] - r[:, :, 2]) >> 1, (i[:, :, 0] - i[:, :, 2]) >> 1
        u2r, u2i = (r[:, :, 1] + r[:, :, 3]) >> 1, (i[:, :, 1] + i[:, :, 3]) >> 1
        u3r, u3i = (r[:, :, 1] - r[:, :, 3]) >> 1, (i[:, :, 1] - i[:, :, 3]) >> 1
        idx = np.arange(q) * stride
        y0 = ((u0r + u2r) >> 1, (u0i + u2i) >> 1)
        y1 = _cmul((u1r + u3i) >> 1, (u1i - u3r) >> 1, tw[idx])  # (u1 - j u3) / 2
        y2 = _cmul((u0r - u2r) >> 1, (u0i - u2i) >> 1, tw[2 * idx])
        y3 = _cmul((u1r - u3i) >> 1, (u1i + u3r) >> 1, tw[3 * idx])  # (u1 + j u3) / 2
        re = np.stack([y0[0], y1[0], y2[0], y3[0]], axis=2).reshape(nf, m)
        im = np.stack([y0[1], y1[1], y2[1], y3[1]], axis=2).reshape(nf, m)
        check_range(re, im, bits=16, what=f"FFT stage of length {length}")
        length //= 4
        stride *= 4
    return re, im


def frame_shift(frames: np.ndarray, t: Tables) -> tuple[np.ndarray, np.ndarray]:
    """Step 1: (v [shape=(n, N)] int64, s [shape=(n,)]) of int16 frames [shape=(n, N)]."""
    x = np.asarray(frames, np.int64)
    s = bit_length((x ^ (x >> 15)).max(axis=1)) + 1
    return (x * t.window) >> s[:, None], s


def power_spectrum(frames: np.ndarray, t: Tables) -> tuple[np.ndarray, np.ndarray]:
    """Steps 1-3: (P [shape=(n, N/2 + 1)] int64, s [shape=(n,)]) of int16 frames [shape=(n, N)]."""
    v, s = frame_shift(frames, t)
    m = v.shape[1] // 2
    zr, zi = cfft_q15(v[:, 0::2], v[:, 1::2], t.twiddle)
    ks = np.arange(m // 2 + 1)
    a = t.digit_rev[ks]
    b = t.digit_rev[(m - ks) % m]
    kr, ki, cr, ci = zr[:, a], zi[:, a], zr[:, b], zi[:, b]
    er, ei = (kr + cr) >> 1, (ki - ci) >> 1
    orr, oi = (kr - cr) >> 1, (ki + ci) >> 1
    wr, wi = t.split[:, 0], t.split[:, 1]
    tr = (orr * wi + oi * wr + (1 << 14)) >> 15
    ti = (oi * wi - orr * wr + (1 << 14)) >> 15
    tr[:, 0], ti[:, 0] = oi[:, 0], -orr[:, 0]  # k = 0: W^0, -j o exactly
    pr, pi = (er + tr) >> 1, (ei + ti) >> 1
    mr, mi = (er - tr) >> 1, (ei - ti) >> 1
    check_range(er, ei, orr, oi, tr, ti, pr, pi, mr, mi, bits=16, what="split step")
    power = np.empty((len(v), m + 1), np.int64)
    power[:, ks] = pr * pr + pi * pi
    power[:, m - ks[:-1]] = (mr * mr + mi * mi)[:, :-1]
    check_range(power, bits=31, what="power spectrum", signed=False)
    return power, s


def log2_q(e: np.ndarray, t: Tables, frac_bits: int) -> np.ndarray:
    """Step 5's log2 of non-negative integers below 2**53, Q``frac_bits`` (E = 0 -> a very low value)."""
    e = np.asarray(e, np.int64)
    b = bit_length(e) - 1  # -1 for 0
    bb = np.maximum(b, 0)
    mant = np.where(bb >= 16, e >> np.maximum(bb - 16, 0), e << np.maximum(16 - bb, 0))
    f = mant - 65536
    f = np.where(e > 0, f, 0)
    idx = f >> (16 - LOG_TABLE_BITS)
    r = f & ((1 << (16 - LOG_TABLE_BITS)) - 1)
    lo = t.log_table[idx]
    hi = t.log_table[np.minimum(idx + 1, len(t.log_table) - 1)]
    frac = lo + (((hi - lo) * r + (1 << (15 - LOG_TABLE_BITS))) >> (16 - LOG_TABLE_BITS))
    q16 = (bb << 16) + frac
    out = (q16 + (1 << (15 - frac_bits))) >> (16 - frac_bits)
    return np.where(e > 0, out, np.iinfo(np.int32).min)


def frame_logmel(frames: np.ndarray, cfg, t: Tables | None = None) -> np.ndarray:
    """Steps 1-5 (stateless): L, int64 Q``log_frac_bits`` [shape=(n, n_mels)], of int16 frames [shape=(n, N)]."""
    t = tables(cfg) if t is None else t
    frames = np.asarray(frames)
    out = np.empty((len(frames), cfg.n_mels), np.int64)
    chunk = 4096
    for a in range(0, len(frames), chunk):
        power, s = power_spectrum(frames[a : a + chunk], t)
        e = power @ t.mel_weights.T
        check_range(e, bits=52, what="mel energy", signed=False)
        lg = log2_q(e, t, cfg.log_frac_bits)
        lg = lg + ((2 * s[:, None] - 42 - t.mel_weight_bits) << cfg.log_frac_bits)
        out[a : a + chunk] = np.maximum(lg, t.log_floor_q)
    return out


class NoiseState:
    """Steps 6-7 for a batch of independent clips or streams, one frame at a time.

    ``step(L)`` takes the frame's L [shape=(batch, n_mels)] int64 and returns
    the frame's output; the first call starts the state from that frame.
    """

    def __init__(self, cfg, t: Tables | None = None) -> None:
        self.cfg = cfg
        self.t = tables(cfg) if t is None else t
        self.floor = None
        self.agc = None

    def step(self, lg: np.ndarray) -> np.ndarray:
        c = self.cfg
        lg = np.asarray(lg, np.int64)
        if self.floor is None:
            self.floor = lg.copy()
        else:
            diff = lg - self.floor
            self.floor = self.floor + np.where(diff < 0, diff >> c.noise_fall_shift, diff >> c.noise_rise_shift)
        d = lg - self.floor
        idx = np.clip(d >> (c.log_frac_bits - GAIN_INDEX_BITS), 0, GAIN_TABLE_LEN - 1)
        s = lg + self.t.gain_table[idx]
        if self.agc is None:
            self.agc = s.copy()
        else:
            self.agc = self.agc + ((s - self.agc) >> c.agc_shift)
        check_range(self.floor, s, self.agc, bits=16, what="noise state")
        out = s - ((c.agc_strength * self.agc) >> 8)
        check_range(out, bits=17, what="frame value")
        return out


def frames_of(padded: np.ndarray, n_fft: int, hop: int, n_frames: int) -> np.ndarray:
    """The centred frames 0 .. n_frames-1 of a signal (zeros outside it), int16 [shape=(n_frames, n_fft)]."""
    x = np.asarray(padded, np.int16)
    half = n_fft // 2
    need = (n_frames - 1) * hop + n_fft
    buf = np.zeros(max(need, half + len(x)), np.int16)
    buf[half : half + len(x)] = x
    idx = np.arange(n_frames)[:, None] * hop + np.arange(n_fft)[None, :]
    return buf[idx]


def run_frames(frames: np.ndarray, cfg, t: Tables | None = None) -> np.ndarray:
    """Steps 1-7 over one clip's or stream's frames in order: int64 Q F [shape=(T, n_mels)]."""
    t = tables(cfg) if t is None else t
    lg = frame_logmel(frames, cfg, t)
    st = NoiseState(cfg, t)
    out = np.empty_like(lg)
    for k in range(len(lg)):
        out[k] = st.step(lg[k][None])[0]
    return out


def run_batch(frame_sets: list[np.ndarray], cfg, t: Tables | None = None) -> list[np.ndarray]:
    """`run_frames` over many clips at once (each its own state): a list of int64 [shape=(T_i, n_mels)]."""
    t = tables(cfg) if t is None else t
    if not frame_sets:
        return []
    lens = [len(f) for f in frame_sets]
    lg = frame_logmel(np.concatenate(frame_sets), cfg, t)
    tmax = max(lens)
    grid = np.zeros((len(lens), tmax, cfg.n_mels), np.int64)
    pos = 0
    for i, n in enumerate(lens):
        grid[i, :n] = lg[pos : pos + n]
        if n < tmax:  # frames past a clip's end only continue its state; they are dropped below
            grid[i, n:] = lg[pos + n - 1]
        pos += n
    st = NoiseState(cfg, t)
    out = np.empty_like(grid)
    for k in range(tmax):
        out[:, k] = st.step(grid[:, k])
    return [out[i, :n] for i, n in enumerate(lens)]
