"""Shared fixtures.

Tests use the real FSDD at ../shared/data/fsdd (or $FSDD_DIR) when present;
otherwise a small synthetic FSDD-shaped set made here (tones whose pitch
encodes the digit), so nothing is downloaded at test time.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

import train  # noqa: F401  (Keras 2 switch before anything imports TensorFlow)

# A run started in the background (`make test &`, nohup) begins with SIGINT ignored, and every child inherits
# that: the Ctrl-C tests (host.parity and host.listen interrupted mid-run) would fail for want of a Ctrl-C. Give
# the run the handling a foreground one has (a Python handler is not inherited: children get the default).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

ROOT = Path(__file__).resolve().parent.parent
SHARED_FSDD = ROOT.parent / "shared" / "data" / "fsdd"
SPEAKERS = ("alice", "bob", "carol", "dave", "erin", "frank")


def real_fsdd() -> Path | None:
    env = os.environ.get("FSDD_DIR")
    for cand in ([Path(env)] if env else []) + [SHARED_FSDD]:
        if (cand / "recordings").is_dir() or any(cand.glob("*.wav")) if cand.is_dir() else False:
            return cand
    return None


def write_wav(path: Path, samples: np.ndarray, sr: int = 8000) -> Path:
    from scipy.io import wavfile

    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, sr, samples)
    return path


def synth_clip(digit: int, speaker: int, index: int, sr: int = 8000) -> np.ndarray:
    """A 'spoken digit' stand-in: a tone burst whose pitch encodes the digit."""
    rng = np.random.default_rng(1000 * digit + 100 * speaker + index)
    n = int(sr * rng.uniform(0.3, 0.9))
    t = np.arange(n) / sr
    f = 250.0 * (digit + 1) * (1 + 0.02 * speaker)
    env = np.sin(np.pi * np.arange(n) / n) ** 2
    y = env * (0.5 * np.sin(2 * np.pi * f * t) + 0.2 * np.sin(4 * np.pi * f * t)) + 0.01 * rng.standard_normal(n)
    return np.round(y * 20000).astype(np.int16)


def make_synthetic_fsdd(root: Path, *, per_digit: int = 10, speakers=SPEAKERS) -> Path:
    rec = root / "recordings"
    for d in range(10):
        for s, name in enumerate(speakers):
            for i in range(per_digit):
                write_wav(rec / f"{d}_{name}_{i}.wav", synth_clip(d, s, i))
    return root


@pytest.fixture(scope="session")
def fsdd_dir(tmp_path_factory) -> Path:
    """Real FSDD when present, else a synthetic one (6 speakers x 10 digits x 10 clips)."""
    real = real_fsdd()
    if real is not None:
        return real
    return make_synthetic_fsdd(tmp_path_factory.mktemp("fsdd"))


@pytest.fixture(scope="session")
def synthetic_fsdd(tmp_path_factory) -> Path:
    return make_synthetic_fsdd(tmp_path_factory.mktemp("synth"), per_digit=8)
