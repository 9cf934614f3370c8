"""FSDD loader: formats, bad files, splits, and the download path (offline, local HTTP server)."""

from __future__ import annotations

import hashlib
import http.server
import io
import struct
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from conftest import synth_clip, write_wav
from train import data as fsdd


def test_reads_int16_8bit_24bit_float_stereo_and_resamples(tmp_path):
    base = synth_clip(3, 0, 0)
    ref = base.astype(np.int32)
    # 8-bit unsigned
    write_wav(tmp_path / "a8.wav", ((ref >> 8) + 128).astype(np.uint8))
    got = fsdd.read_wav(tmp_path / "a8.wav")
    assert np.max(np.abs(got.astype(np.int32) - ref)) < 256
    # 32-bit int (scipy writes int32; 24-bit is read into the same left-justified form)
    write_wav(tmp_path / "a32.wav", (ref << 16).astype(np.int32))
    assert np.array_equal(fsdd.read_wav(tmp_path / "a32.wav"), base)
    # float
    write_wav(tmp_path / "af.wav", (ref / 32767.0).astype(np.float32))
    assert np.max(np.abs(fsdd.read_wav(tmp_path / "af.wav").astype(np.int32) - ref)) <= 1
    # stereo: mixed to mono
    write_wav(tmp_path / "st.wav", np.stack([base, base], axis=1))
    notes: list[str] = []
    assert np.array_equal(fsdd.read_wav(tmp_path / "st.wav", notes=notes), base)
    assert any("mono" in n for n in notes)
    # 16 kHz: resampled to 8 kHz, said so
    t = np.arange(16000) / 16000
    write_wav(tmp_path / "hi.wav", np.round(8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16), sr=16000)
    notes = []
    y = fsdd.read_wav(tmp_path / "hi.wav", 8000, notes=notes)
    assert abs(len(y) - 8000) <= 1 and any("resampled from 16000 Hz" in n for n in notes)


def _wav24(path: Path, samples: np.ndarray, sr: int = 8000) -> None:
    raw = b"".join(int(s).to_bytes(3, "little", signed=True) for s in samples.astype(np.int32) << 8)
    fmt = struct.pack("<HHIIHH", 1, 1, sr, sr * 3, 3, 24)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(raw)) + raw
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def test_reads_24bit_pcm(tmp_path):
    base = synth_clip(1, 1, 1)[:800]
    _wav24(tmp_path / "a24.wav", base)
    assert np.array_equal(fsdd.read_wav(tmp_path / "a24.wav"), base)


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", "empty"),
        (b"this is not audio at all, just text" * 4, "not a WAV"),
        (30, "truncated|damaged"),
        (2000, "damaged WAV.*EOF"),
    ],
)
def test_bad_files_name_file_and_problem(tmp_path, content, problem):
    p = tmp_path / "0_bad_0.wav"
    if isinstance(content, int):  # a real WAV cut after `content` bytes
        write_wav(p, synth_clip(0, 0, 0))
        p.write_bytes(p.read_bytes()[:content])
    else:
        p.write_bytes(content)
    with pytest.raises(fsdd.WavError, match=problem) as info:
        fsdd.read_wav(p)
    assert "0_bad_0.wav" in str(info.value)


def test_dataset_reports_every_bad_file(tmp_path):
    rec = tmp_path / "recordings"
    for d in range(3):
        write_wav(rec / f"{d}_sam_0.wav", synth_clip(d, 0, 0))
    (rec / "4_sam_0.wav").write_bytes(b"")
    (rec / "5_sam_0.wav").write_bytes(b"garbage" * 10)
    write_wav(rec / "hello.wav", synth_clip(0, 0, 1))
    with pytest.raises(fsdd.DatasetError) as info:
        fsdd.load_dataset(tmp_path)
    msg = str(info.value)
    assert "3 of 6 files" in msg
    for name in ("4_sam_0.wav", "5_sam_0.wav", "hello.wav"):
        assert name in msg
    ds = fsdd.load_dataset(tmp_path, strict=False)
    assert len(ds) == 3 and len(ds.errors) == 3


def test_official_split(fsdd_dir):
    ds = fsdd.load_dataset(fsdd_dir)
    tr, te = fsdd.split_indices(ds, "official")
    assert set(np.concatenate([tr, te])) == set(range(len(ds))) and not set(tr) & set(te)
    assert all(ds.clips[i].index < 5 for i in te) and all(ds.clips[i].index >= 5 for i in tr)
    if len(ds) == 3000:
        assert (len(tr), len(te)) == (2700, 300)
    keys_tr = {(ds.clips[i].speaker, ds.clips[i].index) for i in tr}
    keys_te = {(ds.clips[i].speaker, ds.clips[i].index) for i in te}
    assert not keys_tr & keys_te


def test_loso_split(fsdd_dir):
    ds = fsdd.load_dataset(fsdd_dir)
    speaker = ds.clips[0].speaker
    tr, te = fsdd.split_indices(ds, f"loso:{speaker}")
    assert all(ds.clips[i].speaker == speaker for i in te)
    assert all(ds.clips[i].speaker != speaker for i in tr)
    with pytest.raises(ValueError, match="nobody"):
        fsdd.split_indices(ds, "loso:nobody")
    with pytest.raises(ValueError, match="unknown split"):
        fsdd.split_indices(ds, "random")


def _serve(directory: Path):
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(directory), **k)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def _small_archive(path: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for d in range(2):
            wav = io.BytesIO()
            from scipy.io import wavfile

            wavfile.write(wav, 8000, synth_clip(d, 0, 0))
            info = tarfile.TarInfo(f"free-spoken-digit-dataset-1.0.10/recordings/{d}_sam_0.wav")
            info.size = len(wav.getvalue())
            tar.addfile(info, io.BytesIO(wav.getvalue()))
        readme = b"not a recording"
        info = tarfile.TarInfo("free-spoken-digit-dataset-1.0.10/README.md")
        info.size = len(readme)
        tar.addfile(info, io.BytesIO(readme))
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def test_download_checks_hash_and_unpacks(tmp_path):
    served = tmp_path / "srv"
    served.mkdir()
    blob = _small_archive(served / "fsdd.tar.gz")
    srv = _serve(served)
    url = f"http://127.0.0.1:{srv.server_port}/fsdd.tar.gz"
    try:
        good = hashlib.sha256(blob).hexdigest()
        dest = fsdd.download_fsdd(tmp_path / "cache", url=url, sha256=good)
        assert sorted(p.name for p in (dest / "recordings").iterdir()) == ["0_sam_0.wav", "1_sam_0.wav"]
        assert len(fsdd.load_dataset(dest)) == 2
        with pytest.raises(fsdd.DatasetError, match="SHA-256 mismatch"):
            fsdd.download_fsdd(tmp_path / "bad", url=url, sha256="0" * 64)
        assert not (tmp_path / "bad" / "recordings").exists()
        with pytest.raises(fsdd.DatasetError, match=f"SHA-256 {good}"):
            fsdd.download_fsdd(tmp_path / "nohash", url=url, sha256=None)
        with pytest.raises(fsdd.DatasetError, match="could not download"):
            fsdd.download_fsdd(tmp_path / "gone", url=url.replace("fsdd.tar", "missing.tar"), sha256=good)
    finally:
        srv.shutdown()


def test_resolve_data_dir_errors(tmp_path, monkeypatch):
    with pytest.raises(fsdd.DatasetError, match="does not exist"):
        fsdd.resolve_data_dir(tmp_path / "nope")
    monkeypatch.setenv("FSDD_DIR", str(tmp_path / "nope2"))
    with pytest.raises(fsdd.DatasetError, match="FSDD_DIR"):
        fsdd.resolve_data_dir(None)
