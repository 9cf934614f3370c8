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
            raise WavError(path, "float samples contain NaN or infinity; re-export the audio")
        scaled = np.round(np.clip(data.astype(np.float64), -1.0, 1.0) * 32767.0)
        return scaled.astype(np.int16)
    raise WavError(path, f"unsupported sample type {kind}; use 8/16/24/32-bit PCM or float WAV")


#: Sample rates outside this range are refused: below it a file cannot hold
#: speech, above it the header is almost certainly wrong.
MIN_SAMPLE_RATE = 4000
MAX_SAMPLE_RATE = 384000
#: Longest clip read (a spoken digit lasts about a second; FSDD's longest is
#: 2.3 s). Longer files are refused rather than resampled and streamed whole.
MAX_CLIP_SECONDS = 60.0

CONVERT_HINT = "convert it to 16-bit PCM WAV, e.g. `ffmpeg -i IN -ac 1 -ar 8000 -c:a pcm_s16le OUT.wav`"
_MAGIC = ((b"ID3", "MP3"), (b"\xff\xfb", "MP3"), (b"\xff\xf3", "MP3"), (b"\xff\xf2", "MP3"), (b"fLaC", "FLAC"),
          (b"OggS", "Ogg"), (b"FORM", "AIFF"), (b"\x1a\x45\xdf\xa3", "WebM/Matroska"))
_SAMPLE_KINDS = {np.dtype(np.uint8): "8-bit unsigned", np.dtype(np.int32): "24/32-bit integer",
                 np.dtype(np.float32): "32-bit float", np.dtype(np.float64): "64-bit float"}


def _not_a_file(path: Path) -> str | None:
    """Why `path` cannot be opened as a file, or None when it is a regular file."""
    import stat

    if path.is_symlink() and not path.exists():
        return f"broken symbolic link (points to {os.readlink(path)}, which does not exist); fix or remove the link"
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc}); check that it exists and its permissions"
    if stat.S_ISDIR(mode):
        return "is a directory, not a WAV file; move it out of the data folder"
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        return f"is {kind}, not a regular file; copy the audio into a regular .wav file"
    return None


def _parse_problem(path: Path, exc: BaseException) -> str:
    """A one-line description (and fix) of why scipy could not parse a WAV."""
    text = str(exc) or type(exc).__name__
    m = re.search(r"Unknown wave file format: (\S+?)\.", text)
    if m:
        return f"unsupported WAV encoding {m[1]} (only PCM and IEEE float can be read); {CONVERT_HINT}"
    if "not understood" in text:
        try:
            with open(path, "rb") as f:
                head = f.read(4)
        except OSError:
            head = b""
        kind = next((k for magic, k in _MAGIC if head.startswith(magic)), None)
        what = f"looks like {kind}" if kind else f"starts with {head!r}"
        return f"not a WAV file ({what}, no RIFF header); {CONVERT_HINT}"
    if "Unsupported bit depth" in text:
        return f"unsupported WAV sample format ({text}); {CONVERT_HINT}"
    if isinstance(exc, (struct.error, EOFError)):
        text = f"header cut short: {text}"
    else:
        text = f"{type(exc).__name__}: {text}"
    return f"truncated or damaged WAV ({text}); re-export or re-download it"


def read_wav(path: str | Path, sr: int = 8000, *, notes: list[str] | None = None,
             max_seconds: float | None = MAX_CLIP_SECONDS) -> np.ndarray:
    """Reads a WAV file as mono int16 at `sr` Hz.

    Stereo is mixed to mono; 8-, 24-, 32-bit and float files are converted;
    other sample rates (4-384 kHz) are resampled (each conversion is logged and
    appended to `notes`). Raises WavError naming the file, the problem and the
    fix for anything unusable: not a regular file, unreadable, empty, not a
    WAV, truncated, compressed (A-law, u-law, ADPCM, MP3 in WAV), no samples,
    an implausible sample rate, or longer than `max_seconds`.
    """
    from scipy.io import wavfile

    path = Path(path)
    notes = notes if notes is not None else []
    first_note = len(notes)
    if not path.exists() and not path.is_symlink():
        raise WavError(path, "no such file")
    problem = _not_a_file(path)
    if problem:
        raise WavError(path, problem)
    if path.stat().st_size == 0:
        raise WavError(path, "file is empty (0 bytes); re-export or remove it")
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise WavError(path, f"cannot be read ({exc.strerror or exc}); check its permissions") from exc
    try:
        with f, warnings.catch_warnings():
            warnings.simplefilter("error", wavfile.WavFileWarning)
            rate, data = wavfile.read(f)
    except wavfile.WavFileWarning as exc:
        raise WavError(path, f"truncated or damaged WAV ({exc}); re-export or re-download it") from exc
    except Exception as exc:  # scipy's parser fails in many ways on malformed headers
        raise WavError(path, _parse_problem(path, exc)) from exc
    if not data.dtype.isnative:  # RIFX (big-endian) files
        data = data.astype(data.dtype.newbyteorder("="))
    if data.ndim == 2 and data.shape[1] == 0:
        raise WavError(path, "WAV has no channels")
    if data.size == 0:
        raise WavError(path, "WAV holds no samples; re-record or remove it")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise WavError(path, f"sample rate {rate} Hz is outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz, so the header is "
                             f"probably wrong; re-export it at {sr} Hz")
    seconds = data.shape[0] / rate
    if max_seconds is not None and seconds > max_seconds:
        raise WavError(path, f"clip is {seconds:.1f} s long, over the {max_seconds:g} s limit (a spoken digit lasts "
                             "about 1 s); cut it into one clip per digit")
    kind, channels = _SAMPLE_KINDS.get(data.dtype), (data.shape[1] if data.ndim == 2 else 1)
    data = _to_int16(data, path)  # raises before any note is kept for a file it refuses
    if kind:
        notes.append(f"{path.name}: converted {kind} samples to 16-bit")
    if channels > 1:
        data = data.astype(np.int32).mean(axis=1).round().astype(np.int16)
        notes.append(f"{path.name}: mixed {channels} channels to mono")
    elif data.ndim == 2:
        data = data[:, 0]
    if rate != sr:
        import librosa

        y = librosa.resample(data.astype(np.float32) / 32768.0, orig_sr=rate, target_sr=sr)
        data = np.clip(np.round(y * 32768.0), -32768, 32767).astype(np.int16)
        notes.append(f"{path.name}: resampled from {rate} Hz to {sr} Hz")
    for note in notes[first_note:]:
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
    strict=False they are returned in `Dataset.errors` and the rest loads
    (DatasetError all the same when no file at all could be used). Every
    ``*.wav`` entry is tried, so a directory, FIFO or broken link named like a
    recording is an error too. Conversions (resampling, stereo, other sample
    formats) are not errors; they are listed in `Dataset.notes`. With
    require_labels, files whose names are not FSDD-style are errors.
    """
    root = Path(data_dir)
    folder = recordings_dir(root)
    entries = sorted(folder.iterdir()) if folder.is_dir() else []
    # every *.wav entry is tried, so a directory, FIFO or broken link named like a
    # recording is reported rather than silently left out
    paths = [p for p in entries if p.suffix.lower() == ".wav"]
    if not paths:
        raise DatasetError(f"{folder}: no .wav files found; expected FSDD's recordings/{{digit}}_{{speaker}}_{{index}}.wav")
    notes: list[str] = []
    ignored = [p.name for p in entries if p.suffix.lower() != ".wav" and not p.name.startswith(".") and p.is_file()]
    if ignored:
        shown = ", ".join(ignored[:5]) + (f" and {len(ignored) - 5} more" if len(ignored) > 5 else "")
        notes.append(f"ignored {len(ignored)} file(s) not ending in .wav: {shown}")
        log.info(notes[-1])
    it = paths
    if progress:
        from tqdm import tqdm

        it = tqdm(paths, desc="reading wav", unit="file", leave=False)
    clips: list[Clip] = []
    errors: list[WavError] = []
    for p in it:
        parsed = parse_name(p.name)
        if parsed is None and require_labels:
            errors.append(WavError(p, "name is not {digit}_{speaker}_{index}.wav, so it has no label; "
                                      "rename it (e.g. 7_me_0.wav) or move it out of the folder"))
            continue
        try:
            samples = read_wav(p, sr, notes=notes)
        except WavError as exc:
            errors.append(exc)
            continue
        digit, speaker, index = parsed if parsed else (None, None, None)
        clips.append(Clip(p, digit, speaker, index, samples))
    if errors and (strict or not clips):
        raise DatasetError(f"{len(errors)} of {len(paths)} files in {folder} could not be used", errors)
    return Dataset(root, clips, errors, notes)


def log_problems(ds: Dataset, logger: logging.Logger = log) -> None:
    """One warning line per skipped file ("skipped <file>: <problem>; <fix>") and a count."""
    for e in ds.errors:
        logger.warning("skipped %s", e)
    if ds.errors:
        logger.warning("%d file(s) skipped, %d used; the report lists them under \"skipped_files\"",
                       len(ds.errors), len(ds.clips))


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
