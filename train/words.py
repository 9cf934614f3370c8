"""A small vocabulary made offline, for the your-own-words example (docs/your-own-words.md).

flite's voices say each word in several "speakers": a speaker is one voice at
one drawn pitch and speaking rate, saying each word a few times with a little
jitter. The clips go into a folder per label, Speech Commands' layout, which
`python -m train --data-dir` reads:

    words/yes/slt-3_nohash_0.wav    # label "yes", speaker "slt-3", take 0
    words/testing_list.txt          # speaker profile 0 of every voice
    words/validation_list.txt       # speaker profile 1 of every voice

The test speakers are the same five synthetic voices at pitches and rates the
training clips do not have, not new people: accuracy on them says that the
chain works for a vocabulary, not how well it generalizes to real voices.

    python -m train.words --out words/                      # the dataset (prints a JSON summary)
    python -m train.words --phrase "yes stop go" --out phrase.wav   # a test speaker says a phrase

The default words avoid homophones of digits (to/too, for, won, ate), so the
same list could later sit beside FSDD's digits.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from train.synth import FLITE_VOICES, SynthError, flite_say, flite_voices

log = logging.getLogger(__name__)

DEFAULT_WORDS = ("yes", "no", "up", "down", "left", "right", "stop", "go")
TEST_PROFILE = 0
VALIDATION_PROFILE = 1
SAMPLE_RATE = 8000


@dataclass(frozen=True, kw_only=True)
class WordsConfig:
    words: tuple[str, ...] = DEFAULT_WORDS
    profiles: int = 6
    """Speakers per voice: profile 0 is the test split, 1 validation, the rest training."""
    repeats: int = 3
    """Takes of each word per speaker."""
    pitch: tuple[float, float] = (0.8, 1.25)
    """A speaker's mean-pitch factor, around the voice's own."""
    stretch: tuple[float, float] = (0.85, 1.25)
    """A speaker's duration stretch (> 1 is slower)."""
    jitter: float = 0.04
    """Take-to-take variation of pitch and stretch (relative)."""
    seed: int = 0


def _rng(cfg: WordsConfig, *key: object) -> np.random.Generator:
    text = "/".join(map(str, (cfg.seed, *key)))
    return np.random.default_rng(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little"))


def _profile(cfg: WordsConfig, voice: str, g: int) -> tuple[float, float]:
    r = _rng(cfg, "profile", voice, g)
    return float(r.uniform(*cfg.pitch)), float(r.uniform(*cfg.stretch))


def _check_words(words: tuple[str, ...]) -> None:
    from train.labels import Labels

    Labels(words)  # 2..32 distinct names; raises ValueError with the reason
    for w in words:
        if not all(c.isalpha() or c in " '-" for c in w):
            raise ValueError(f"word {w!r}: letters, spaces, apostrophes and hyphens only (flite speaks it)")


def _to_8k(src: Path, dst: Path) -> None:
    from train.data import read_wav, write_wav

    write_wav(dst, read_wav(src, SAMPLE_RATE, notes=[]), SAMPLE_RATE)  # flite speaks at 16 kHz (kal at 8)


def generate(cfg: WordsConfig, out: Path, *, progress: bool = True) -> dict:
    """Writes the dataset into ``out`` (a folder per word, and the split lists); returns a summary."""
    _check_words(cfg.words)
    if cfg.profiles < 3:
        raise ValueError(f"profiles must be >= 3 (test, validation, training), got {cfg.profiles}")
    voices = flite_voices()
    if not voices:
        raise SynthError("flite not found: install Debian's flite (`apt-get install flite`, or make setup)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(w, v, g, k) for w in cfg.words for v in voices for g in range(cfg.profiles) for k in range(cfg.repeats)]
    it = jobs
    if progress:
        from tqdm import tqdm

        it = tqdm(jobs, desc="speaking words", unit="clip", leave=False)
    lists: dict[int, list[str]] = {TEST_PROFILE: [], VALIDATION_PROFILE: []}
    with tempfile.TemporaryDirectory(prefix="sd-words-") as tmp:
        for w, v, g, k in it:
            pitch, stretch = _profile(cfg, v, g)
            j = _rng(cfg, "take", w, v, g, k).uniform(-cfg.jitter, cfg.jitter, 2)
            folder = out / w
            folder.mkdir(exist_ok=True)
            name = f"{v}-{g}_nohash_{k}.wav"
            raw = Path(tmp) / "raw.wav"
            flite_say(v, w, raw, stretch=stretch * (1 + j[1]), pitch=pitch * (1 + j[0]))
            _to_8k(raw, folder / name)
            if g in lists:
                lists[g].append(f"{w}/{name}")
    (out / "testing_list.txt").write_text("\n".join(lists[TEST_PROFILE]) + "\n")
    (out / "validation_list.txt").write_text("\n".join(lists[VALIDATION_PROFILE]) + "\n")
    summary = {"dir": str(out), "words": list(cfg.words), "voices": voices, "clips": len(jobs),
               "speakers": len(voices) * cfg.profiles, "test_clips": len(lists[TEST_PROFILE]),
               "validation_clips": len(lists[VALIDATION_PROFILE]), "config": asdict(cfg)}
    (out / "words.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def phrase(words: list[str], out: Path, *, cfg: WordsConfig = WordsConfig(), voice: str = "slt", gap_s: float = 0.7,
           noise_dbfs: float = -60.0) -> dict:
    """A test-split speaker (profile 0 of ``voice``) says ``words`` with ``gap_s`` of quiet between them and
    around them, over faint white noise (seeded), at 8 kHz; returns where each word is."""
    from train.data import read_wav, write_wav

    if voice not in flite_voices():
        raise SynthError(f"flite voice {voice!r} not available; have: {', '.join(flite_voices()) or 'none'}")
    pitch, stretch = _profile(cfg, voice, TEST_PROFILE)
    gap = np.zeros(int(gap_s * SAMPLE_RATE), np.int16)
    parts, truth, pos = [gap], [], len(gap)
    with tempfile.TemporaryDirectory(prefix="sd-phrase-") as tmp:
        for i, w in enumerate(words):
            raw = Path(tmp) / f"{i}.wav"
            flite_say(voice, w, raw, stretch=stretch, pitch=pitch)
            x = read_wav(raw, SAMPLE_RATE, notes=[])
            truth.append({"word": w, "start": pos, "end": pos + len(x) - 1})
            parts += [x, gap]
            pos += len(x) + len(gap)
    y = np.concatenate(parts).astype(np.float64)
    y += np.random.default_rng(cfg.seed).normal(0.0, 32768.0 * 10 ** (noise_dbfs / 20), len(y))
    write_wav(out, np.clip(np.round(y), -32768, 32767).astype(np.int16), SAMPLE_RATE)
    return {"file": str(out), "voice": f"{voice}-{TEST_PROFILE}", "words": truth, "samples": len(y)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.words", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", required=True, help="dataset folder (or, with --phrase, the WAV to write)")
    p.add_argument("--words", default=",".join(DEFAULT_WORDS), help="comma-separated words, one label each")
    p.add_argument("--profiles", type=int, default=WordsConfig.profiles, help="speakers per voice (>= 3)")
    p.add_argument("--repeats", type=int, default=WordsConfig.repeats, help="takes of each word per speaker")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--phrase", default=None, metavar="TEXT",
                   help="instead of a dataset: one test-split speaker says these words (space-separated) into --out")
    p.add_argument("--voice", default="slt", choices=FLITE_VOICES, help="with --phrase: the flite voice")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("train.data").setLevel(logging.WARNING)  # flite's 16 kHz clips are resampled on purpose
    words = tuple(w.strip() for w in args.words.split(",") if w.strip())
    cfg = WordsConfig(words=words, profiles=args.profiles, repeats=args.repeats, seed=args.seed)
    try:
        if args.phrase is not None:
            res = phrase(args.phrase.split(), Path(args.out), cfg=cfg, voice=args.voice)
        else:
            res = generate(cfg, Path(args.out), progress=not args.no_progress)
    except (SynthError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
