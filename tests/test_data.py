"""FSDD loader: formats, bad files, splits, and the download path (offline, local HTTP server)."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import struct
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from conftest import real_fsdd, synth_clip, write_wav
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


def _small_archive(path: Path, *, change: str | None = None, add: str | None = None) -> bytes:
    """A gzipped tar shaped like FSDD's: two recordings and a README under the tag's folder.

    change: a recording whose bytes are altered (one sample flipped); add: an extra recording.
    """
    from scipy.io import wavfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        names = ["0_sam_0.wav", "1_sam_0.wav"] + ([add] if add else [])
        for d, name in enumerate(names):
            wav = io.BytesIO()
            wavfile.write(wav, 8000, synth_clip(d, 0, 0))
            body = bytearray(wav.getvalue())
            if name == change:
                body[-2] ^= 0x01
            info = tarfile.TarInfo(f"free-spoken-digit-dataset-1.0.10/recordings/{name}")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(bytes(body)))
        readme = b"not a recording"
        info = tarfile.TarInfo("free-spoken-digit-dataset-1.0.10/README.md")
        info.size = len(readme)
        tar.addfile(info, io.BytesIO(readme))
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def _manifest_of(blob: bytes) -> dict:
    """The manifest of an archive's recordings, measured the way --write-manifest measures a folder."""
    files = {}
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        for m in tar.getmembers():
            if m.name.endswith(".wav"):
                data = tar.extractfile(m).read()
                files[Path(m.name).name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return {"tag": "test", "files": files, "path": "test-manifest"}


@pytest.fixture()
def served(tmp_path):
    """A local HTTP server over tmp_path/srv holding good, tampered, extra and truncated archives."""
    root = tmp_path / "srv"
    root.mkdir()
    good = _small_archive(root / "fsdd.tar.gz")
    _small_archive(root / "tampered.tar.gz", change="1_sam_0.wav")
    _small_archive(root / "extra.tar.gz", add="2_eve_0.wav")
    (root / "truncated.tar.gz").write_bytes(good[: len(good) // 2])
    (root / "noise.tar.gz").write_bytes(b"<html>rate limited</html>")
    srv = _serve(root)
    try:
        yield f"http://127.0.0.1:{srv.server_port}", good, _manifest_of(good)
    finally:
        srv.shutdown()


def test_download_verifies_every_file_and_unpacks(tmp_path, served):
    base, blob, manifest = served
    dest = fsdd.download_fsdd(tmp_path / "cache", url=f"{base}/fsdd.tar.gz", sha256=None, manifest=manifest)
    assert sorted(p.name for p in (dest / "recordings").iterdir()) == ["0_sam_0.wav", "1_sam_0.wav"]
    assert sorted(p.name for p in dest.iterdir()) == ["recordings"]  # no download left-overs
    assert len(fsdd.load_dataset(dest)) == 2
    assert fsdd.verify_recordings(dest, manifest)["ok"]
    # the archive hash is an optional extra check on top of the manifest
    good = hashlib.sha256(blob).hexdigest()
    fsdd.download_fsdd(tmp_path / "hashed", url=f"{base}/fsdd.tar.gz", sha256=good, manifest=manifest)
    with pytest.raises(fsdd.DatasetError, match="archive SHA-256 mismatch: got " + good):
        fsdd.download_fsdd(tmp_path / "bad", url=f"{base}/fsdd.tar.gz", sha256="0" * 64, manifest=manifest)
    assert not (tmp_path / "bad").exists()
    # a second download into an installed folder is refused, not merged
    with pytest.raises(fsdd.DatasetError, match="already exists.*--verify"):
        fsdd.download_fsdd(dest, url=f"{base}/fsdd.tar.gz", manifest=manifest)


def test_tampered_archive_names_the_file_and_installs_nothing(tmp_path, served):
    base, _, manifest = served
    want = manifest["files"]["1_sam_0.wav"]["sha256"]
    existing = tmp_path / "mine"
    existing.mkdir()
    (existing / "notes.txt").write_text("keep me")
    for dest in (tmp_path / "new", existing):
        with pytest.raises(fsdd.DataMismatch) as info:
            fsdd.download_fsdd(dest, url=f"{base}/tampered.tar.gz", manifest=manifest)
        msg = str(info.value)
        assert "tampered.tar.gz: 1 recording(s) differ" in msg and "1 of 2 match" in msg
        bad = info.value.summary["mismatched"]
        assert [m["file"] for m in bad] == ["1_sam_0.wav"] and bad[0]["expected_sha256"] == want
        assert f"1_sam_0.wav: SHA-256 {bad[0]['actual_sha256']}" in msg and f"expected {want}" in msg
        assert bad[0]["actual_sha256"] != want
        assert not (dest / "recordings").exists()
    assert not (tmp_path / "new").exists()  # created by the call, removed with the half-installed copy
    assert sorted(p.name for p in existing.iterdir()) == ["notes.txt"]  # the user's folder is left as it was

    with pytest.raises(fsdd.DataMismatch, match="2_eve_0.wav: extra") as info:
        fsdd.download_fsdd(tmp_path / "x", url=f"{base}/extra.tar.gz", manifest=manifest)
    assert info.value.summary["extra"] == ["2_eve_0.wav"]
    short = {**manifest, "files": {**manifest["files"], "3_sam_0.wav": {"bytes": 1, "sha256": "a" * 64}}}
    with pytest.raises(fsdd.DataMismatch, match="3_sam_0.wav: missing"):
        fsdd.download_fsdd(tmp_path / "y", url=f"{base}/fsdd.tar.gz", manifest=short)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


@pytest.mark.parametrize("name", ["truncated.tar.gz", "noise.tar.gz"])
def test_truncated_or_bogus_archive_is_a_clear_error(tmp_path, served, name):
    base, _, manifest = served
    with pytest.raises(fsdd.DatasetError) as info:
        fsdd.download_fsdd(tmp_path / "c", url=f"{base}/{name}", manifest=manifest)
    msg = str(info.value)
    assert f"{base}/{name}: the downloaded archive is truncated or damaged" in msg
    assert "nothing was installed" in msg and "--data-dir" in msg
    assert not (tmp_path / "c").exists()


def test_cut_connection_and_missing_url(tmp_path, served):
    base, blob, manifest = served

    class Liar(http.server.BaseHTTPRequestHandler):  # promises the whole archive, sends half, hangs up
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(blob)))
            self.end_headers()
            self.wfile.write(blob[: len(blob) // 2])

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Liar)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_port}/fsdd.tar.gz"
        with pytest.raises(fsdd.DatasetError, match=f"could not download FSDD from {url}"):
            fsdd.download_fsdd(tmp_path / "cut", url=url, manifest=manifest)
    finally:
        srv.shutdown()
    with pytest.raises(fsdd.DatasetError, match="could not download FSDD from .*missing.tar.gz.*404"):
        fsdd.download_fsdd(tmp_path / "gone", url=f"{base}/missing.tar.gz", manifest=manifest)
    assert not (tmp_path / "cut").exists() and not (tmp_path / "gone").exists()


def test_cli_verify(tmp_path, served, capsys):
    base, _, manifest = served
    man_path = fsdd.write_manifest(manifest, tmp_path / "m.json")
    dest = fsdd.download_fsdd(tmp_path / "d", url=f"{base}/fsdd.tar.gz", manifest=manifest)
    assert fsdd.main(["--verify", str(dest), "--manifest", str(man_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True and out["matched"] == out["expected"] == 2
    rec = dest / "recordings"
    (rec / "0_sam_0.wav").write_bytes((rec / "0_sam_0.wav").read_bytes()[:-1])
    (rec / "1_sam_0.wav").unlink()
    (rec / "5_me_0.wav").write_bytes(b"RIFF")
    assert fsdd.main(["--verify", str(rec), "--manifest", str(man_path)]) == 1
    cap = capsys.readouterr()
    out = json.loads(cap.out)
    assert out["ok"] is False and out["matched"] == 0
    assert out["missing"] == ["1_sam_0.wav"] and out["extra"] == ["5_me_0.wav"]
    assert out["mismatched"][0]["file"] == "0_sam_0.wav"
    assert out["mismatched"][0]["actual_bytes"] == out["mismatched"][0]["expected_bytes"] - 1
    assert "0_sam_0.wav: SHA-256" in cap.err and "1_sam_0.wav: missing" in cap.err and "MISMATCH" in cap.err
    assert fsdd.main(["--verify", str(tmp_path / "nope")]) == 2
    assert "no such directory" in json.loads(capsys.readouterr().out)["error"]
    (tmp_path / "broken.json").write_text("{")
    assert fsdd.main(["--verify", str(dest), "--manifest", str(tmp_path / "broken.json")]) == 2
    assert "broken.json: the FSDD manifest is not valid JSON" in capsys.readouterr().err
    # --download into an existing folder verifies it
    assert fsdd.main(["--download", str(dest), "--manifest", str(man_path)]) == 1


def test_write_manifest_round_trip(tmp_path, capsys):
    rec = tmp_path / "data" / "recordings"
    for d in range(3):
        write_wav(rec / f"{d}_sam_0.wav", synth_clip(d, 0, 0))
    out = tmp_path / "m.json"
    assert fsdd.main(["--write-manifest", str(tmp_path / "data"), "--manifest", str(out), "--source", "unit test"]) == 0
    man = fsdd.load_manifest(out)
    assert man["source"] == "unit test" and man["count"] == 3 and sorted(man["files"]) == [f"{d}_sam_0.wav" for d in range(3)]
    assert man["files"]["2_sam_0.wav"]["sha256"] == hashlib.sha256((rec / "2_sam_0.wav").read_bytes()).hexdigest()
    assert sum('"sha256"' in line for line in out.read_text().splitlines()) == 3  # one line per recording
    assert fsdd.verify_recordings(tmp_path / "data", out)["ok"]
    with pytest.raises(SystemExit):
        fsdd.main(["--write-manifest", str(tmp_path / "data")])  # --source is required
    assert "--source" in capsys.readouterr().err


def test_committed_manifest_pins_the_tag():
    man = fsdd.load_manifest()
    assert man["tag"] == fsdd.FSDD_TAG and man["url"] == fsdd.FSDD_URL and man["count"] == len(man["files"]) == 3000
    parsed = [fsdd.parse_name(n) for n in man["files"]]
    assert all(parsed) and sum(p[2] in fsdd.OFFICIAL_TEST_INDICES for p in parsed) == 300
    assert man["bytes"] == sum(e["bytes"] for e in man["files"].values())


def test_first_run_refuses_wrong_data_in_the_cache(tmp_path, served, monkeypatch):
    """The path `make demo` takes with no --data-dir: download into the cache, checked against the
    committed manifest; the small test archive is not FSDD, so nothing lands in the cache."""
    base, _, _ = served
    monkeypatch.delenv("FSDD_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("FSDD_URL", f"{base}/fsdd.tar.gz")
    with pytest.raises(fsdd.DataMismatch) as info:
        fsdd.resolve_data_dir(None)
    s = info.value.summary
    assert s["expected"] == 3000 and s["matched"] == 0 and len(s["missing"]) == 3000
    assert s["extra"] == ["0_sam_0.wav", "1_sam_0.wav"] and "nothing was installed" in str(info.value)
    assert not fsdd.default_cache_dir().exists()


@pytest.mark.skipif(real_fsdd() is None, reason="FSDD not found (../shared/data/fsdd or $FSDD_DIR)")
def test_first_run_downloads_verifies_and_installs_real_fsdd(tmp_path, monkeypatch):
    """An archive of the real recordings, served locally, shaped like the tag's: resolve_data_dir()
    downloads it into the cache, all 3,000 files match the committed manifest; one changed byte
    and it installs nothing, naming that file."""
    srv_dir = tmp_path / "srv"
    srv_dir.mkdir()
    rec = fsdd.recordings_dir(real_fsdd())
    with tarfile.open(srv_dir / "fsdd.tar.gz", "w:gz", compresslevel=1) as tar:
        tar.add(rec, arcname="free-spoken-digit-dataset-1.0.10/recordings")
        victim = sorted(rec.glob("*.wav"))[1234]
        body = bytearray(victim.read_bytes())
        body[100] ^= 0xFF
    with tarfile.open(srv_dir / "tampered.tar.gz", "w:gz", compresslevel=1) as tar:
        for p in sorted(rec.glob("*.wav")):
            data = bytes(body) if p == victim else p.read_bytes()
            info = tarfile.TarInfo(f"free-spoken-digit-dataset-1.0.10/recordings/{p.name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    srv = _serve(srv_dir)
    monkeypatch.delenv("FSDD_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    try:
        monkeypatch.setenv("FSDD_URL", f"http://127.0.0.1:{srv.server_port}/tampered.tar.gz")
        with pytest.raises(fsdd.DataMismatch, match=f"{victim.name}: SHA-256 .* expected ") as info:
            fsdd.resolve_data_dir(None)
        assert info.value.summary["matched"] == 2999 and not fsdd.default_cache_dir().exists()
        monkeypatch.setenv("FSDD_URL", f"http://127.0.0.1:{srv.server_port}/fsdd.tar.gz")
        root = fsdd.resolve_data_dir(None)
    finally:
        srv.shutdown()
    assert root == fsdd.default_cache_dir() and len(list((root / "recordings").glob("*.wav"))) == 3000
    assert fsdd.verify_recordings(root)["ok"]
    assert fsdd.resolve_data_dir(None) == root  # the second run uses the cache


@pytest.mark.skipif(real_fsdd() is None, reason="FSDD not found (../shared/data/fsdd or $FSDD_DIR)")
def test_committed_manifest_matches_the_real_data():
    summary = fsdd.verify_recordings(real_fsdd())
    assert summary["ok"], fsdd.mismatch_lines(summary)[:10]
    assert summary["matched"] == 3000


def test_resolve_data_dir_errors(tmp_path, monkeypatch):
    with pytest.raises(fsdd.DatasetError, match="does not exist"):
        fsdd.resolve_data_dir(tmp_path / "nope")
    monkeypatch.setenv("FSDD_DIR", str(tmp_path / "nope2"))
    with pytest.raises(fsdd.DatasetError, match="FSDD_DIR"):
        fsdd.resolve_data_dir(None)


def test_mismatch_message_is_bounded_but_the_summary_is_complete():
    summary = {"mismatched": [], "extra": [], "missing": [f"{d}_x_{i}.wav" for d in range(10) for i in range(30)]}
    exc = fsdd.DataMismatch("bad", summary)
    lines = str(exc).splitlines()
    assert len(lines) == 1 + fsdd.DataMismatch.MAX_LINES + 1 and "and 200 more" in lines[-1]
    assert exc.summary["missing"] == summary["missing"]
