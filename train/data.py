"""Datasets: FSDD (located, downloaded, verified) and any folder of labelled clips.

Two layouts are read (`list_data` tells them apart):

- **FSDD**: ``{digit}_{speaker}_{index}.wav`` in one folder (or its
  ``recordings/``). The official split puts indices 0-4 of every digit and
  speaker in the test set (300 clips) and 5-49 in the training set (2,700).
- **A folder per label** (Speech Commands' layout): ``DIR/<label>/*.wav``.
  The speaker is the part of a file name before ``_nohash_``, else the file is
  its own speaker. The official split is ``testing_list.txt`` and
  ``validation_list.txt`` (paths like ``yes/abc_nohash_0.wav``) when present,
  else a stable hash of the speaker: 10 % validation, 10 % test. No speaker
  is ever in two splits. ``_background_noise_/`` (and any folder starting
  with ``_``) is not a label; its WAVs are listed as background noise.

``loso:<speaker>`` holds one speaker out in either layout.
"""

from __future__ import annotations

import hashlib
import json
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
from typing import Sequence

import numpy as np

from train.labels import FSDD_DIGITS

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^(?P<digit>[0-9])_(?P<speaker>[A-Za-z0-9-]+)_(?P<index>[0-9]+)\.wav$")

FSDD_TAG = "v1.0.10"
FSDD_URL = f"https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/{FSDD_TAG}.tar.gz"
#: The data is pinned, not the archive: the SHA-256 of each of the tag's 3,000
#: recordings (train/fsdd_manifest.json, made by `python -m train.data
#: --write-manifest DIR`). Every download is checked file by file against it.
#: A hash of the archive itself (--fsdd-sha256 in `python -m train.data
#: --download`, or $FSDD_SHA256) is an optional extra check.
MANIFEST_PATH = Path(__file__).resolve().parent / "fsdd_manifest.json"
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


def write_wav(path: str | Path, samples: np.ndarray, sr: int = 8000) -> Path:
    """Writes int16 mono ``samples`` as a 16-bit PCM WAV (creating the folder); returns the path."""
    from scipy.io import wavfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, int(sr), np.ascontiguousarray(samples, np.int16))
    return path


# -- the dataset ---------------------------------------------------------------
@dataclass
class Clip:
    path: Path
    label: int | None
    """Index into the dataset's label names (FSDD: the digit); None for an unlabelled file."""
    speaker: str | None
    index: int | None
    """FSDD's take number (0-49); None in the folder layout."""
    samples: np.ndarray
    split: str | None = None
    """Folder layout: "train", "validation" or "test" (the official split); FSDD: None (split by index)."""
    origin: str | None = None
    """Where a generated clip comes from (train/reject.py: "reject:noise:hum"); None for a file. A generated
    clip keeps its ``split`` under every split rule: it was made from that part's sources only."""

    @property
    def digit(self) -> int | None:
        """FSDD's name for the label index (its labels are the digits)."""
        return self.label


LAYOUT_FSDD = "fsdd"
LAYOUT_FOLDERS = "folders"


@dataclass
class Dataset:
    root: Path
    clips: list[Clip]
    errors: list[WavError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    names: tuple[str, ...] = FSDD_DIGITS
    """The label names, in model output order."""
    layout: str = LAYOUT_FSDD
    background: list[Path] = field(default_factory=list)
    """WAVs of a ``_background_noise_`` folder (folder layout)."""

    @property
    def labels(self) -> np.ndarray:
        return np.array([c.label if c.label is not None else -1 for c in self.clips], np.int64)

    @property
    def speakers(self) -> list[str | None]:
        return [c.speaker for c in self.clips]

    def subset(self, idx) -> "Dataset":
        return Dataset(self.root, [self.clips[i] for i in idx], self.errors, self.notes, self.names, self.layout,
                       self.background)

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
    """--data-dir, else $FSDD_DIR, else the cache directory (downloaded and verified there when missing).

    The download comes from $FSDD_URL when set (a mirror of the same archive), else FSDD_URL; the
    manifest decides whether it is the right data either way.
    """
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
    download_fsdd(cache, url=os.environ.get("FSDD_URL") or FSDD_URL,
                  sha256=sha256 or os.environ.get("FSDD_SHA256") or FSDD_SHA256)
    return cache


# -- the manifest: one SHA-256 per recording ------------------------------------------
class DataMismatch(DatasetError):
    """Recordings that differ from the manifest; `summary` is verify_recordings()'s result."""

    #: Bad files named in the message; all of them are in `summary` (and in the JSON of `--download`).
    MAX_LINES = 100

    def __init__(self, message: str, summary: dict):
        self.summary = summary
        bad = mismatch_lines(summary)
        lines = [f"  - {line}" for line in bad[: self.MAX_LINES]]
        if len(bad) > self.MAX_LINES:
            lines.append(f"  ... and {len(bad) - self.MAX_LINES} more (`python -m train.data --download DIR` "
                         "lists them all in its JSON)")
        super().__init__(message + "\n" + "\n".join(lines))


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def build_manifest(folder: str | Path, *, source: str) -> dict:
    """The manifest of every ``*.wav`` in folder (or folder/recordings): name -> bytes and SHA-256."""
    rec = recordings_dir(Path(folder))
    paths = sorted(p for p in rec.iterdir() if p.suffix.lower() == ".wav") if rec.is_dir() else []
    if not paths:
        raise DatasetError(f"{rec}: no .wav files to put in a manifest; pass FSDD's folder")
    files = {}
    for p in paths:
        problem = _not_a_file(p)
        if problem:
            raise DatasetError(f"{p}: {problem}")
        files[p.name] = {"bytes": p.stat().st_size, "sha256": file_sha256(p)}
    return {
        "dataset": "Free Spoken Digit Dataset (FSDD)",
        "tag": FSDD_TAG,
        "url": FSDD_URL,
        "source": source,
        "generated_by": "python -m train.data --write-manifest DIR --source TEXT",
        "count": len(files),
        "bytes": sum(f["bytes"] for f in files.values()),
        "files": files,
    }


def write_manifest(manifest: dict, path: str | Path = MANIFEST_PATH) -> Path:
    """Writes JSON with one line per recording, so a change shows as a one-line diff."""
    path = Path(path)
    head = {k: v for k, v in manifest.items() if k != "files"}
    lines = ["{"] + [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()] + ['  "files": {']
    items = sorted(manifest["files"].items())
    lines += [f"    {json.dumps(n)}: {json.dumps(e)}" + ("," if i < len(items) - 1 else "") for i, (n, e) in enumerate(items)]
    lines += ["  }", "}"]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
    return path


def load_manifest(path: str | Path | None = None) -> dict:
    """Reads and checks a manifest (default: the committed train/fsdd_manifest.json)."""
    path = Path(path) if path is not None else MANIFEST_PATH
    fix = "restore it from the repository (git checkout train/fsdd_manifest.json) or pass --manifest with a valid one"
    try:
        man = json.loads(path.read_text())
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the FSDD manifest ({exc.strerror or exc}); {fix}") from exc
    except ValueError as exc:
        raise DatasetError(f"{path}: the FSDD manifest is not valid JSON ({exc}); {fix}") from exc
    files = man.get("files") if isinstance(man, dict) else None
    if not isinstance(files, dict) or not files:
        raise DatasetError(f"{path}: the FSDD manifest has no \"files\" object; {fix}")
    for name, entry in files.items():
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise DatasetError(f"{path}: entry {name!r} has no 64-hex-digit \"sha256\" (got {entry!r}); {fix}")
    man.setdefault("path", str(path))
    return man


def verify_recordings(folder: str | Path, manifest: dict | str | Path | None = None) -> dict:
    """Checks every ``*.wav`` of folder (or folder/recordings) against the manifest.

    Returns a JSON-able summary: ``ok``, counts, and the ``missing`` (in the
    manifest, not in the folder), ``extra`` (in the folder, not in the
    manifest) and ``mismatched`` files (``file``, ``expected_sha256``,
    ``actual_sha256``, ``expected_bytes``, ``actual_bytes``, or ``problem``
    when the entry cannot be read).
    """
    man = manifest if isinstance(manifest, dict) else load_manifest(manifest)
    rec = recordings_dir(Path(folder))
    if not rec.is_dir():
        raise DatasetError(f"{rec}: not a directory; pass the folder that holds FSDD's recordings/")
    expected = man["files"]
    present = {p.name: p for p in rec.iterdir() if p.suffix.lower() == ".wav"}
    mismatched, total = [], 0
    for name in sorted(set(expected) & set(present)):
        p, want = present[name], expected[name]
        problem = _not_a_file(p)
        if problem:
            mismatched.append({"file": name, "expected_sha256": want["sha256"], "actual_sha256": None, "problem": problem})
            continue
        size = p.stat().st_size
        total += size
        try:
            got = file_sha256(p)
        except OSError as exc:
            mismatched.append({"file": name, "expected_sha256": want["sha256"], "actual_sha256": None,
                               "problem": f"cannot be read ({exc.strerror or exc})"})
            continue
        if got != want["sha256"]:
            mismatched.append({"file": name, "expected_sha256": want["sha256"], "actual_sha256": got,
                               "expected_bytes": want.get("bytes"), "actual_bytes": size})
    missing = sorted(set(expected) - set(present))
    extra = sorted(set(present) - set(expected))
    return {
        "ok": not (missing or extra or mismatched),
        "dir": str(rec),
        "manifest": man.get("path", "<in memory>"),
        "tag": man.get("tag"),
        "expected": len(expected),
        "found": len(present),
        "matched": len(set(expected) & set(present)) - len(mismatched),
        "bytes": total,
        "missing": missing,
        "extra": extra,
        "mismatched": mismatched,
    }


def mismatch_lines(summary: dict) -> list[str]:
    """One line per bad file of a verify_recordings() summary."""
    out = []
    for m in summary["mismatched"]:
        if m.get("problem"):
            out.append(f"{m['file']}: {m['problem']}")
        else:
            out.append(f"{m['file']}: SHA-256 {m['actual_sha256']} ({m['actual_bytes']} bytes), "
                       f"expected {m['expected_sha256']} ({m['expected_bytes']} bytes)")
    out += [f"{n}: missing (listed in the manifest, not in the folder)" for n in summary["missing"]]
    out += [f"{n}: extra (not in the manifest)" for n in summary["extra"]]
    return out


# -- downloading -----------------------------------------------------------------------
def _fetch(url: str, out: Path, timeout: float) -> str:
    """Streams url into out; returns its SHA-256. Raises DatasetError on any failure or a short body."""
    import http.client

    h, n = hashlib.sha256(), 0
    fix = "check the connection and run again, or download the archive yourself, unpack it and pass --data-dir"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(out, "wb") as f:
            length = resp.headers.get("Content-Length")
            for block in iter(lambda: resp.read(1 << 16), b""):
                h.update(block)
                f.write(block)
                n += len(block)
    except (OSError, http.client.HTTPException) as exc:
        raise DatasetError(f"could not download FSDD from {url}: {type(exc).__name__}: {exc}; {fix}") from exc
    if length is not None and length.isdigit() and n != int(length):
        raise DatasetError(f"could not download FSDD from {url}: got {n} of {length} bytes (the connection "
                           f"was cut); {fix}")
    return h.hexdigest()


def _unpack(archive: Path, dest: Path, url: str) -> int:
    """Writes every ``*.wav`` under a recordings/ folder of the archive into dest; returns the count."""
    import zlib

    dest.mkdir()
    count = 0
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                parts = Path(member.name).parts
                name = parts[-1] if parts else ""
                if member.isfile() and len(parts) >= 2 and parts[-2] == "recordings" and name.lower().endswith(".wav"):
                    src = tar.extractfile(member)
                    assert src is not None
                    (dest / name).write_bytes(src.read())
                    count += 1
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise DatasetError(
            f"{url}: the downloaded archive is truncated or damaged ({type(exc).__name__}: {exc}); nothing was "
            "installed. Run again to download it anew (python -m train.data --download), or download it "
            "yourself, unpack it and pass --data-dir") from exc
    if count == 0:
        raise DatasetError(f"{url}: archive holds no recordings/*.wav files; is this FSDD's archive?")
    return count


def download_fsdd(dest: Path, *, url: str = FSDD_URL, sha256: str | None = FSDD_SHA256,
                  manifest: dict | str | Path | None = None, timeout: float = 60.0) -> Path:
    """Downloads FSDD's archive, unpacks its recordings and checks each against the manifest.

    The recordings land in ``dest/recordings`` only when every file matches
    the manifest (default: train/fsdd_manifest.json): no file missing, none
    extra, every SHA-256 equal. Otherwise nothing is installed (the unpacked
    copy is removed, and dest too when this call created it) and a
    DataMismatch names each bad file. ``sha256``, when given, is checked
    against the archive's own hash first.
    """
    dest = Path(dest)
    man = manifest if isinstance(manifest, dict) else load_manifest(manifest)
    final = dest / "recordings"
    if final.is_dir() and not any(final.iterdir()):
        final.rmdir()
    if final.exists():
        raise DatasetError(f"{final} already exists; check it with `python -m train.data --verify {dest}`, "
                           "or remove it to download again")
    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=dest, prefix=".fsdd-download-") as tmp:
            archive = Path(tmp) / "fsdd.tar.gz"
            log.info("downloading %s", url)
            digest = _fetch(url, archive, timeout)
            if sha256 and digest != sha256.lower():
                raise DatasetError(f"{url}: archive SHA-256 mismatch: got {digest}, expected {sha256} (--fsdd-sha256 / "
                                   "$FSDD_SHA256); the download is corrupt or the archive changed: run again, or "
                                   "drop the archive hash to rely on the per-file manifest")
            staging = Path(tmp) / "recordings"
            count = _unpack(archive, staging, url)
            summary = verify_recordings(staging, man)
            if not summary["ok"]:
                bad = len(summary["mismatched"]) + len(summary["missing"]) + len(summary["extra"])
                raise DataMismatch(
                    f"{url}: {bad} recording(s) differ from the manifest {summary['manifest']} "
                    f"({summary['matched']} of {summary['expected']} match); nothing was installed in {dest} "
                    "(the unpacked copy was removed). The archive changed or was tampered with: run again, "
                    "or pass --data-dir with a copy that `python -m train.data --verify DIR` accepts", summary)
            staging.rename(final)
    except BaseException:
        if created:
            shutil.rmtree(dest, ignore_errors=True)
        raise
    log.info("unpacked %d recordings into %s, all %d match %s", count, final, count, man.get("path", "the manifest"))
    return dest


# -- listing a data folder (no audio read) -----------------------------------------------
NOHASH = "_nohash_"
SPLIT_LISTS = {"test": "testing_list.txt", "validation": "validation_list.txt"}
BACKGROUND_DIR = "_background_noise_"
#: The folder layout's split when no lists are given: percent of speakers (by hash) in each.
HASH_VALIDATION_PERCENT = 10
HASH_TEST_PERCENT = 10


@dataclass(frozen=True)
class Entry:
    """One WAV of a data folder, before it is read."""

    path: Path
    label: str | None
    """Label name (FSDD: the digit as text); None for an FSDD-folder file without an FSDD name."""
    speaker: str | None
    index: int | None = None
    split: str | None = None


@dataclass
class Listing:
    """What `list_data` found: the layout, the label names (output order) and every WAV entry."""

    root: Path
    folder: Path
    layout: str
    names: tuple[str, ...]
    entries: list[Entry]
    errors: list[WavError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    background: list[Path] = field(default_factory=list)


def speaker_of(path: str | Path) -> str:
    """Speech Commands' speaker rule: the file name before ``_nohash_``, else the whole name (its own speaker)."""
    stem = Path(path).stem
    return stem.split(NOHASH, 1)[0] if NOHASH in stem else stem


def hash_split(speaker: str) -> str:
    """The folder layout's split without lists: a stable hash of the speaker (SHA-1, so it never changes
    between runs or machines) puts HASH_VALIDATION_PERCENT % of speakers in validation and
    HASH_TEST_PERCENT % in test."""
    bucket = int(hashlib.sha1(speaker.encode("utf-8")).hexdigest(), 16) % 100
    if bucket < HASH_VALIDATION_PERCENT:
        return "validation"
    return "test" if bucket < HASH_VALIDATION_PERCENT + HASH_TEST_PERCENT else "train"


def _shown(items: list[str], n: int = 5) -> str:
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def _label_dirs(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith((".", "_")))


def detect_layout(folder: Path) -> str:
    """LAYOUT_FOLDERS when ``folder`` has no WAV of its own but label subfolders, else LAYOUT_FSDD."""
    if not folder.is_dir():
        return LAYOUT_FSDD
    if any(q.suffix.lower() == ".wav" for q in folder.iterdir()):
        return LAYOUT_FSDD
    return LAYOUT_FOLDERS if _label_dirs(folder) else LAYOUT_FSDD


def list_data(data_dir: str | Path, *, labels: Sequence[str] | None = None, require_labels: bool = True) -> Listing:
    """Every WAV of a data folder with its label, speaker and split; no audio is read.

    ``labels``: keep these labels, in this order (the model's output order); in an FSDD folder they must be
    the ten digits. Problems that lose a file (an FSDD name that does not parse, with require_labels) are
    in ``errors``; things left out on purpose (other files, nested folders, empty labels) are in ``notes``.
    Raises DatasetError when the folder cannot make a dataset at all.
    """
    root = Path(data_dir)
    folder = recordings_dir(root)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: not a directory; pass --data-dir pointing at a folder of WAV files")
    if detect_layout(folder) == LAYOUT_FOLDERS:
        return _list_folders(root, folder, labels)
    entries_all = sorted(folder.iterdir())
    # every *.wav entry is listed, so a directory, FIFO or broken link named like a recording is
    # reported rather than silently left out
    paths = [q for q in entries_all if q.suffix.lower() == ".wav"]
    if not paths:
        raise DatasetError(f"{folder}: no .wav files found; expected FSDD's recordings/{{digit}}_{{speaker}}_{{index}}.wav "
                           "or a folder per label (DIR/<label>/*.wav)")
    names = FSDD_DIGITS
    if labels is not None and tuple(labels) != names:
        raise DatasetError(f"{folder} is an FSDD folder: its labels are the digits 0-9, not {list(labels)}; "
                           "use a folder per label (DIR/<label>/*.wav) for other words")
    listing = Listing(root, folder, LAYOUT_FSDD, names, [])
    ignored = [q.name for q in entries_all if q.suffix.lower() != ".wav" and not q.name.startswith(".") and q.is_file()]
    if ignored:
        listing.notes.append(f"ignored {len(ignored)} file(s) not ending in .wav: {_shown(ignored)}")
    for q in paths:
        parsed = parse_name(q.name)
        if parsed is None:
            if require_labels:
                listing.errors.append(WavError(q, "name is not {digit}_{speaker}_{index}.wav, so it has no label; "
                                                  "rename it (e.g. 7_me_0.wav) or move it out of the folder"))
            else:
                listing.entries.append(Entry(q, None, None))
            continue
        digit, speaker, index = parsed
        listing.entries.append(Entry(q, str(digit), speaker, index))
    return listing


def _read_list(path: Path, root: Path) -> set[str]:
    """A Speech Commands list file: one ``label/file.wav`` per line (forward slashes)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot be read ({exc}); it lists one label/file.wav per line") from exc
    return {ln.strip().replace("\\", "/") for ln in lines if ln.strip() and not ln.lstrip().startswith("#")}


def _list_folders(root: Path, folder: Path, keep: Sequence[str] | None) -> Listing:
    from train.labels import MAX_LABELS, Labels

    notes: list[str] = []
    dirs = _label_dirs(folder)
    found: dict[str, list[Path]] = {}
    for d in dirs:
        items = sorted(d.iterdir())
        nested = [q.name for q in items if q.is_dir() and not q.is_symlink()]
        if nested:
            notes.append(f"ignored nested folder(s) in {d.name}/: {_shown(nested)} (the layout is DIR/<label>/*.wav; "
                         "move their clips up one level to use them)")
        other = [q.name for q in items if q.suffix.lower() != ".wav" and not q.name.startswith(".") and q.is_file()]
        if other:
            notes.append(f"ignored {len(other)} file(s) not ending in .wav in {d.name}/: {_shown(other)}")
        found[d.name] = [q for q in items if q.suffix.lower() == ".wav"]
    empty = [n for n, v in found.items() if not v]
    if empty:
        notes.append(f"label folder(s) with no .wav clips left out: {', '.join(empty)}")
    available = [n for n, v in found.items() if v]
    if keep is not None:
        unknown = [n for n in keep if n not in found]
        if unknown:
            raise DatasetError(f"{folder}: no label folder named {', '.join(map(repr, unknown))}; "
                               f"its labels are {', '.join(available) or 'none'}")
        no_clips = [n for n in keep if not found[n]]
        if no_clips:
            raise DatasetError(f"{folder}: label folder(s) {', '.join(no_clips)} have no .wav clips; add clips or "
                               "leave the label out of --labels")
        names = tuple(keep)
        dropped = [n for n in available if n not in names]
        if dropped:
            notes.append(f"labels left out (not in the label list): {', '.join(dropped)}")
    else:
        names = tuple(available)
    if len(names) < 2:
        raise DatasetError(f"{folder}: a recognizer needs at least 2 labels with clips, found {len(names)} "
                           f"({', '.join(names) or 'none'}); add a folder of clips per label (DIR/<label>/*.wav)")
    if len(names) > MAX_LABELS:
        raise DatasetError(f"{folder}: {len(names)} labels, the firmware takes at most {MAX_LABELS}; "
                           "keep some with --labels a,b,c")
    try:
        Labels(names)
    except ValueError as exc:
        raise DatasetError(f"{folder}: {exc}") from exc
    lists = {split: folder / fname for split, fname in SPLIT_LISTS.items() if (folder / fname).is_file()}
    listed = {split: _read_list(path, folder) for split, path in lists.items()}
    if lists:
        notes.append(f"split from {', '.join(q.name for q in lists.values())}")
        both = sorted(set.intersection(*listed.values())) if len(listed) > 1 else []
        if both:
            raise DatasetError(f"{folder}: {_shown(both)} listed in both {' and '.join(SPLIT_LISTS.values())}; "
                               "a clip belongs to one split")
    entries = []
    for n in names:
        for q in found[n]:
            rel = f"{n}/{q.name}"
            speaker = speaker_of(q)
            if lists:
                split = next((sp for sp, members in listed.items() if rel in members), "train")
            else:
                split = hash_split(speaker)
            entries.append(Entry(q, n, speaker, None, split))
    by_speaker: dict[str, set[str]] = {}
    for e in entries:
        by_speaker.setdefault(e.speaker or "", set()).add(e.split or "")
    mixed = sorted(sp for sp, splits in by_speaker.items() if len(splits) > 1)
    if mixed:
        raise DatasetError(f"{folder}: speaker(s) {_shown(mixed)} have clips in more than one split of "
                           f"{', '.join(q.name for q in lists.values())}; a speaker's clips must all be in one list "
                           "(or none), so that no test voice is heard in training")
    bg_dir = folder / BACKGROUND_DIR
    background = sorted(q for q in bg_dir.iterdir() if q.suffix.lower() == ".wav") if bg_dir.is_dir() else []
    return Listing(root, folder, LAYOUT_FOLDERS, names, entries, [], notes, background)


def load_dataset(data_dir: str | Path, *, sr: int = 8000, strict: bool = True, require_labels: bool = True,
                 progress: bool = False, labels: Sequence[str] | None = None) -> Dataset:
    """Reads every WAV of a data folder in either layout (`list_data`).

    Bad files are collected, not fatal one by one: with strict=True a
    DatasetError listing every bad file is raised at the end; with
    strict=False they are returned in `Dataset.errors` and the rest loads
    (DatasetError all the same when no file at all could be used). Every
    ``*.wav`` entry is tried, so a directory, FIFO or broken link named like a
    recording is an error too. Conversions (resampling, stereo, other sample
    formats) are not errors; they are listed in `Dataset.notes`. With
    require_labels, FSDD-folder files whose names are not FSDD-style are
    errors. ``labels``: keep these labels in this order (see `list_data`).
    """
    listing = list_data(data_dir, labels=labels, require_labels=require_labels)
    for note in listing.notes:
        log.info(note)
    notes = list(listing.notes)
    errors = list(listing.errors)
    it = listing.entries
    if progress:
        from tqdm import tqdm

        it = tqdm(listing.entries, desc="reading wav", unit="file", leave=False)
    index = {n: i for i, n in enumerate(listing.names)}
    clips: list[Clip] = []
    for e in it:
        try:
            samples = read_wav(e.path, sr, notes=notes)
        except WavError as exc:
            errors.append(exc)
            continue
        clips.append(Clip(e.path, None if e.label is None else index[e.label], e.speaker, e.index, samples, e.split))
    total = len(listing.entries) + len(listing.errors)
    if errors and (strict or not clips):
        raise DatasetError(f"{len(errors)} of {total} files in {listing.folder} could not be used", errors)
    return Dataset(listing.root, clips, errors, notes, listing.names, listing.layout, listing.background)


def log_problems(ds: Dataset, logger: logging.Logger = log) -> None:
    """One warning line per skipped file ("skipped <file>: <problem>; <fix>") and a count."""
    for e in ds.errors:
        logger.warning("skipped %s", e)
    if ds.errors:
        logger.warning("%d file(s) skipped, %d used; the report lists them under \"skipped_files\"",
                       len(ds.errors), len(ds.clips))


def is_official_test(c: Clip) -> bool:
    """The clip is in the official test split: FSDD take 0-4, or the folder layout's "test"."""
    return c.split == "test" if c.split is not None else c.index in OFFICIAL_TEST_INDICES


def split_indices(ds: Dataset, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) index arrays for 'official' or 'loso:<speaker>'. In the folder layout the official
    train part includes the validation clips (`validation_indices` picks them out)."""
    if split == "official":
        test = np.array([i for i, c in enumerate(ds.clips) if is_official_test(c)], np.int64)
    elif split.startswith("loso:"):
        speaker = split.split(":", 1)[1]
        known = sorted({c.speaker for c in ds.clips if c.speaker})
        if speaker not in known:
            raise ValueError(f"split {split!r}: speaker {speaker!r} is not in the data; speakers: {', '.join(known)}")
        test = np.array([i for i, c in enumerate(ds.clips) if c.speaker == speaker], np.int64)
    else:
        raise ValueError(f"unknown split {split!r}; use 'official' or 'loso:<speaker>'")
    made = [i for i, c in enumerate(ds.clips) if c.origin is not None]
    if made:  # generated clips (train/reject.py) keep the part they were made for
        test = np.array(sorted(set(test.tolist()) - set(made) | {i for i in made if ds.clips[i].split == "test"}),
                        np.int64)
    mask = np.ones(len(ds), bool)
    mask[test] = False
    train = np.flatnonzero(mask)
    if len(test) == 0 or len(train) == 0:
        hint = ""
        if ds.layout == LAYOUT_FOLDERS and split == "official" and len(test) == 0:
            hint = (f"; the hash rule put none of the {len(set(ds.speakers))} speakers in test: add more speakers, "
                    f"or list test clips in {SPLIT_LISTS['test']}")
        raise ValueError(f"split {split!r} leaves an empty train or test set ({len(train)}/{len(test)}){hint}")
    return train, test


def validation_indices(ds: Dataset, train_idx: np.ndarray) -> np.ndarray | None:
    """The dataset's own validation clips among ``train_idx`` (folder layout: its "validation" split), or
    None when it has none (FSDD: the trainer holds out a stratified share of the training clips)."""
    val = np.array([i for i in train_idx if ds.clips[i].split == "validation"], np.int64)
    return val if len(val) else None


# -- CLI: python -m train.data ----------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys
    import time

    ap = argparse.ArgumentParser(
        prog="python -m train.data",
        description=f"FSDD {FSDD_TAG}: check a data folder against the committed per-file SHA-256 manifest, "
                    "download and verify the dataset, or (re)generate the manifest. Prints one JSON object on "
                    "stdout; one line per bad file on stderr. Exit status: 0 all files match, 1 a file is "
                    "missing, extra or differs, 2 usage error or failed download.")
    act = ap.add_mutually_exclusive_group(required=True)
    act.add_argument("--verify", metavar="DIR",
                     help="check every *.wav in DIR (or DIR/recordings), e.g. a --data-dir folder, against the manifest")
    act.add_argument("--download", metavar="DIR", nargs="?", const="",
                     help=f"download {FSDD_URL}, check every recording and install DIR/recordings only if all match "
                          f"(default DIR: {default_cache_dir()}, where the tools look when no --data-dir is given)")
    act.add_argument("--write-manifest", metavar="DIR",
                     help="measure every *.wav in DIR (or DIR/recordings) and write the manifest (use only with a "
                          f"copy known to be the {FSDD_TAG} tag's files)")
    ap.add_argument("--manifest", metavar="FILE", default=None,
                    help=f"manifest to check against or write (default: {MANIFEST_PATH.relative_to(MANIFEST_PATH.parents[1])})")
    ap.add_argument("--source", metavar="TEXT", default=None,
                    help="with --write-manifest: where the measured copy came from (required: it is recorded in the file)")
    ap.add_argument("--url", default=os.environ.get("FSDD_URL") or FSDD_URL,
                    help="with --download: archive URL, e.g. a mirror (default: $FSDD_URL, else the pinned tag's)")
    ap.add_argument("--fsdd-sha256", metavar="HEX", default=os.environ.get("FSDD_SHA256"),
                    help="with --download: also require this SHA-256 of the archive itself (default: $FSDD_SHA256, "
                         "else none: the per-file manifest is the check)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    t0 = time.monotonic()
    try:
        if args.write_manifest is not None:
            if not args.source:
                ap.error("--write-manifest needs --source TEXT saying where the copy came from")
            man = build_manifest(args.write_manifest, source=args.source)
            path = write_manifest(man, args.manifest or MANIFEST_PATH)
            print(json.dumps({"ok": True, "manifest": str(path), "count": man["count"], "bytes": man["bytes"],
                              "source": man["source"]}))
            return 0
        if args.download is not None:
            dest = Path(args.download) if args.download else default_cache_dir()
            if not (dest / "recordings").is_dir() or not any((dest / "recordings").iterdir()):
                download_fsdd(dest, url=args.url, sha256=args.fsdd_sha256, manifest=args.manifest)
            else:
                log.info("%s/recordings already exists: verifying it", dest)
            folder = dest
        else:
            folder = Path(args.verify)
            if not folder.is_dir():
                raise DatasetError(f"--verify {folder}: no such directory; pass the folder given as --data-dir")
        summary = verify_recordings(folder, args.manifest)
    except DataMismatch as exc:
        print(str(exc), file=sys.stderr)
        print(json.dumps({**exc.summary, "seconds": round(time.monotonic() - t0, 3)}))
        return 1
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        print(json.dumps({"ok": False, "error": str(exc)}))
        return 2
    summary["seconds"] = round(time.monotonic() - t0, 3)
    for line in mismatch_lines(summary):
        print(f"  - {line}", file=sys.stderr)
    verdict = "all match" if summary["ok"] else "MISMATCH"
    print(f"{summary['dir']}: {summary['matched']} of {summary['expected']} recordings match {summary['manifest']}"
          f" ({summary['bytes']:,} bytes, {summary['seconds']:.1f} s): {verdict}", file=sys.stderr)
    print(json.dumps(summary))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
