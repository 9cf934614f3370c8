"""Free Spoken Digit Dataset: locating, downloading, reading and splitting it.

Files are named ``{digit}_{speaker}_{index}.wav``. The official split puts
indices 0-4 of every digit and speaker in the test set (300 clips) and 5-49
in the training set (2,700). ``loso:<speaker>`` holds one speaker out.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import struct
import tarfile
import tempfile
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^(?P<digit>[0-9])_(?P<speaker>[A-Za-z0-9-]+)_(?P<index>[0-9]+)\.wav$")

FSDD_TAG = "v1.0.10"
FSDD_URL = f"https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/{FSDD_TAG}.tar.gz"
# SHA-256 of the archive above. It could not be measured on the offline
# machines this project is built on; until it is pinned, a download needs the
# expected hash from the user (--fsdd-sha256 / $FSDD_SHA256) and refuses
# otherwise, printing the hash it measured so it can be checked and pinned.
FSDD_SHA256: str | None = None
OFFICIAL_TEST_INDICES = range(0, 5)


class WavError(ValueError):
    """A file that is not a usable WAV; the message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class DatasetError(ValueError):
    """Problems with a dataset as a whole; `errors` lists every bad file."""

    def __init__(self, message: str, errors: list[WavError] | None = None):
        self.errors = list(errors or [])
        if self.errors:
            lines = "\n".join(f"  - {e}" for e in self.errors)
            message = f"{message}\n{lines}"
        super().__init__(message)


# -- reading WAV files -------------------------------------------------------
def _to_int16(data: np.ndarray, path: Path) -> np.ndarray:
    kind = data.dtype
    if kind == np.uint8:  # 8-bit WAV is unsigned, centred on 128
        return ((data.astype(np.int16) - 128) << 8).astype(np.int16)
    if kind == np.int16:
        return data
    if kind == np.int32:  # 24- and 32-bit PCM, left-justified by scipy
        return (data >> 16).astype(np.int16)
    if kind in (np.float32, np.float64):
        if not np.all(np.isfinite(data)):
            raise WavError(path, "float samples contain NaN or infinity")
        scaled = np.round(np.clip(data.astype(np.float64), -1.0, 1.0) * 32767.0)
        return scaled.astype(np.int16)
    raise WavError(path, f"unsupported sample type {kind}; use 8/16/24/32-bit PCM or float WAV")


def read_wav(path: str | Path, sr: int = 8000, *, notes: list[str] | None = None) -> np.ndarray:
    """Reads a WAV file as mono int16 at `sr` Hz.

    Stereo is mixed to mono; 8-, 24-, 32-bit and float files are converted;
    other sample rates are resampled (each conversion is logged and appended
    to `notes`). Raises WavError naming the file for anything unreadable.
    """
    from scipy.io import wavfile

    path = Path(path)
    if not path.is_file():
        raise WavError(path, "no such file")
    if path.stat().st_size == 0:
        raise WavError(path, "file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", wavfile.WavFileWarning)
            rate, data = wavfile.read(path)
    except wavfile.WavFileWarning as exc:
        raise WavError(path, f"damaged WAV ({exc}); re-export the file") from exc
    except (ValueError, EOFError, OSError, IndexError, struct.error) as exc:
        text = str(exc) or type(exc).__name__
        if "RIFF" in text or "not understood" in text:
            text = f"not a WAV file ({text})"
        else:
            text = f"truncated or damaged WAV ({text})"
        raise WavError(path, text) from exc
    notes = notes if notes is not None else []
    if data.ndim == 2:
        if data.shape[1] == 0:
            raise WavError(path, "WAV has no channels")
        channels = data.shape[1]
        data = _to_int16(data, path).astype(np.int32).mean(axis=1).round().astype(np.int16)
        notes.append(f"{path.name}: mixed {channels} channels to mono")
    else:
        data = _to_int16(data, path)
    if data.size == 0:
        raise WavError(path, "WAV holds no samples")
    if rate != sr:
        import librosa

        y = librosa.resample(data.astype(np.float32) / 32768.0, orig_sr=rate, target_sr=sr)
        data = np.clip(np.round(y * 32768.0), -32768, 32767).astype(np.int16)
        notes.append(f"{path.name}: resampled from {rate} Hz to {sr} Hz")
    for note in notes:
        log.info(note)
    return data


# -- the dataset ---------------------------------------------------------------
@dataclass
class Clip:
    path: Path
    digit: int | None
    speaker: str | None
    index: int | None
    samples: np.ndarray


@dataclass
class Dataset:
    root: Path
    clips: list[Clip]
    errors: list[WavError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def labels(self) -> np.ndarray:
        return np.array([c.digit if c.digit is not None else -1 for c in self.clips], np.int64)

    @property
    def speakers(self) -> list[str | None]:
        return [c.speaker for c in self.clips]

    def subset(self, idx) -> "Dataset":
        return Dataset(self.root, [self.clips[i] for i in idx], self.errors, self.notes)

    def __len__(self) -> int:
        return len(self.clips)


def parse_name(name: str) -> tuple[int, str, int] | None:
    """(digit, speaker, index) from an FSDD file name, or None if it is not one."""
    m = NAME_RE.match(name)
    if not m:
        return None
    return int(m["digit"]), m["speaker"], int(m["index"])


def recordings_dir(root: Path) -> Path:
    """The folder holding the WAVs: `root/recordings` when present, else root."""
    sub = root / "recordings"
    return sub if sub.is_dir() else root


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "spoken-digits" / f"fsdd-{FSDD_TAG}"


def resolve_data_dir(data_dir: str | Path | None = None, *, download: bool = True, sha256: str | None = None) -> Path:
    """--data-dir, else $FSDD_DIR, else the cache directory (downloaded there when missing)."""
    if data_dir is not None:
        root = Path(data_dir)
        if not root.is_dir():
            raise DatasetError(f"{root}: data directory does not exist; pass --data-dir pointing at FSDD's folder")
        return root
    env = os.environ.get("FSDD_DIR")
    if env:
        root = Path(env)
        if not root.is_dir():
            raise DatasetError(f"$FSDD_DIR={env} does not exist; unset it or point it at FSDD's folder")
        return root
    cache = default_cache_dir()
    if recordings_dir(cache).is_dir() and any(recordings_dir(cache).glob("*.wav")):
        return cache
    if not download:
        raise DatasetError(f"FSDD not found: pass --data-dir, set $FSDD_DIR, or allow the download to {cache}")
    download_fsdd(cache, sha256=sha256 or os.environ.get("FSDD_SHA256") or FSDD_SHA256)
    return cache


def download_fsdd(dest: Path, *, url: str = FSDD_URL, sha256: str | None = FSDD_SHA256, timeout: float = 60.0) -> Path:
    """Downloads the pinned FSDD archive, checks its SHA-256 and unpacks its recordings into dest.

    Refuses to unpack anything whose hash does not match `sha256`; with no
    expected hash it refuses too, and says which hash it measured.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        archive = Path(tmp) / "fsdd.tar.gz"
        log.info("downloading %s", url)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp, open(archive, "wb") as out:
                shutil.copyfileobj(resp, out)
        except OSError as exc:
            raise DatasetError(f"could not download FSDD from {url}: {exc}; pass --data-dir with a local copy") from exc
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        if sha256 is None:
            raise DatasetError(
                f"downloaded {url} has SHA-256 {digest}, but no expected hash is pinned; "
                "check it and pass it with --fsdd-sha256 (or $FSDD_SHA256)"
            )
        if digest != sha256.lower():
            raise DatasetError(f"{url}: SHA-256 mismatch: got {digest}, expected {sha256}; the download is corrupt or changed")
        rec = dest / "recordings"
        rec.mkdir(exist_ok=True)
        count = 0
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if member.isfile() and "/recordings/" in f"/{member.name}" and parse_name(name):
                    src = tar.extractfile(member)
                    assert src is not None
                    (rec / name).write_bytes(src.read())
                    count += 1
        if count == 0:
            raise DatasetError(f"{url}: archive holds no recordings/{{digit}}_{{speaker}}_{{index}}.wav files")
        log.info("unpacked %d recordings into %s", count, rec)
    return dest


def load_dataset(data_dir: str | Path, *, sr: int = 8000, strict: bool = True, require_labels: bool = True, progress: bool = False) -> Dataset:
    """Reads every WAV under data_dir (or data_dir/recordings).

    Bad files are collected, not fatal one by one: with strict=True a
    DatasetError listing every bad file is raised at the end; with
    strict=False they are returned in `Dataset.errors` and the rest loads.
    With require_labels, files whose names are not FSDD-style are errors.
    """
    root = Path(data_dir)
    folder = recordings_dir(root)
    paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".wav") if folder.is_dir() else []
    if not paths:
        raise DatasetError(f"{folder}: no .wav files found; expected FSDD's recordings/{{digit}}_{{speaker}}_{{index}}.wav")
    it = paths
    if progress:
        from tqdm import tqdm

        it = tqdm(paths, desc="reading wav", unit="file", leave=False)
    clips: list[Clip] = []
    errors: list[WavError] = []
    notes: list[str] = []
    for p in it:
        parsed = parse_name(p.name)
        if parsed is None and require_labels:
            errors.append(WavError(p, "name is not {digit}_{speaker}_{index}.wav, so it has no label"))
            continue
        try:
            samples = read_wav(p, sr, notes=notes)
        except WavError as exc:
            errors.append(exc)
            continue
        digit, speaker, index = parsed if parsed else (None, None, None)
        clips.append(Clip(p, digit, speaker, index, samples))
    if errors and strict:
        raise DatasetError(f"{len(errors)} of {len(paths)} files in {folder} could not be used", errors)
    return Dataset(root, clips, errors, notes)


def split_indices(ds: Dataset, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) index arrays for 'official' or 'loso:<speaker>'."""
    if split == "official":
        test = np.array([i for i, c in enumerate(ds.clips) if c.index in OFFICIAL_TEST_INDICES], np.int64)
    elif split.startswith("loso:"):
        speaker = split.split(":", 1)[1]
        known = sorted({c.speaker for c in ds.clips if c.speaker})
        if speaker not in known:
            raise ValueError(f"split {split!r}: speaker {speaker!r} is not in the data; speakers: {', '.join(known)}")
        test = np.array([i for i, c in enumerate(ds.clips) if c.speaker == speaker], np.int64)
    else:
        raise ValueError(f"unknown split {split!r}; use 'official' or 'loso:<speaker>'")
    mask = np.ones(len(ds), bool)
    mask[test] = False
    train = np.flatnonzero(mask)
    if len(test) == 0 or len(train) == 0:
        raise ValueError(f"split {split!r} leaves an empty train or test set ({len(train)}/{len(test)})")
    return train, test
