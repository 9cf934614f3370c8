"""python -m train: train the 16-step LSTM on FSDD, or on a folder per label.

Writes to --out: model.keras, frontend.json (the front-end config the device
uses), labels.json (one name per output), metrics.json, training_curve.png,
confusion_matrix.png. The summary goes to stdout as JSON; progress and
diagnostics go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

import train  # noqa: F401


def build_parser() -> argparse.ArgumentParser:
    from train.reject import NOISE_KINDS, OTHER_KINDS

    p = argparse.ArgumentParser(
        prog="python -m train",
        description="Train the unrolled 16-step LSTM on log-mel features of FSDD's digits (the default) or of your "
                    "own words: a folder per label, DIR/<label>/*.wav (docs/your-own-words.md).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d = p.add_argument_group("data")
    d.add_argument("--data-dir", help="FSDD folder (with recordings/ or the WAVs), or a folder per label (DIR/<label>/*.wav, "
                                      "Speech Commands' layout); default: $FSDD_DIR, else a cache dir (downloaded)")
    d.add_argument("--labels", metavar="A,B,C", default=None,
                   help="folder per label: keep these labels, in this output order (default: every label folder, sorted)")
    d.add_argument("--split", default="official",
                   help="'official' (FSDD: takes 0-4 test; a folder per label: testing_list.txt, else a hash of the "
                        "speaker) or 'loso:<speaker>'")
    d.add_argument("--window-rule", default="max-energy", choices=["max-energy", "first"], help="which 16 frames of a long clip the model sees")
    d.add_argument("--limit", type=int, default=None, metavar="N", help="quick runs: train on at most N clips per label and speaker")
    d.add_argument("--clip-norm", default="band-mean", choices=["band-mean", "none"],
                   help="per-clip normalization: subtract each band's mean over the clip's window, or not")
    f = p.add_argument_group("front end (train/features.py, train/intfront.py)")
    f.add_argument("--frontend", type=int, default=2, choices=[1, 2],
                   help="2: the integer front end with noise suppression (what the firmware computes); "
                        "1: the float librosa front end of the first releases (Python only)")
    f.add_argument("--noise-oversub", type=float, default=1.0,
                   help="v2 spectral subtraction: times the per-band noise floor taken away (0 = off)")
    f.add_argument("--noise-min-remaining", type=float, default=0.05,
                   help="v2: share of a band's energy always kept by the subtraction")
    f.add_argument("--frame-pool", type=int, default=1, choices=[1, 2],
                   help="v2: frames averaged into one of the model's 16 time steps: 1 (0.5 s windows) or 2 (1 s "
                        "windows, clips padded to 8000 samples; the firmware pools the same way, SD_FRAME_POOL)")
    f.add_argument("--agc-strength", type=int, default=0,
                   help="v2 per-band gain control, in 1/256 of the band's recent level (0 = off)")
    a = p.add_argument_group("augmentation (training clips only; seeded by --seed)")
    a.add_argument("--augment", type=int, default=3, metavar="COPIES", help="augmented copies per training clip (0 = off)")
    a.add_argument("--no-speed", action="store_true", help="no speed perturbation")
    a.add_argument("--no-noise", action="store_true", help="no additive noise")
    a.add_argument("--no-gain", action="store_true", help="no level change")
    a.add_argument("--no-shift", action="store_true", help="no time shift")
    a.add_argument("--shift-max", type=int, default=None, metavar="SAMPLES",
                   help="most silence put in front of an augmented copy, in samples (default: AugmentConfig's, 256; "
                        "2048 = 8 frames teaches the model windows that start before the word, as sliding windows see it)")
    a.add_argument("--stream-share", type=float, default=None, metavar="P",
                   help="share of the augmented copies cut as a sliding window sees them: leading silence trimmed, "
                        "the window from 3 frames inside the word to 8 before it, first frames not loudest "
                        "(train/augment.py; default 0)")
    a.add_argument("--no-masks", action="store_true", help="no SpecAugment time/frequency masks")
    a.add_argument("--real-rooms", action=argparse.BooleanOptionalAction, default=None,
                   help="augment with the real training noises and room responses beside the data "
                        "(../shared/data/noise, or $SD_NOISE_DIR; the held-out noise files never): a share of the noisy "
                        "copies gets a real recording instead of coloured noise, a share of the copies a real room's "
                        "reverberation (train/augment.py; default: on with --reject only)")
    a.add_argument("--reject", action=argparse.BooleanOptionalAction, default=False,
                   help="FSDD: add the classes `noise` and `other` (speech that is not a digit) after the digits, from "
                        "real noise and speech beside the data (../shared/data/noise, or $SD_NOISE_DIR), synthetic noise, "
                        "FSDD made non-digit and flite's non-digit words (train/reject.py); not in the release: on "
                        "unseen voices it calls many digits `other` (docs/rejection.md)")
    a.add_argument("--reject-clips", type=int, default=1600, metavar="N",
                   help="with --reject: N training clips of each of noise and other (and N/5 test clips of each, at least 1)")
    a.add_argument("--reject-classes", choices=("noise,other", "noise"), default="noise,other",
                   help="with --reject: the classes added after the digits; `noise` alone leaves non-digit speech to "
                        "the margin and the smoothing")
    a.add_argument("--other-kinds", default=None, metavar="KIND=SHARE,...",
                   help="with --reject: the kinds of training `other` clips and their shares, e.g. "
                        "reversed=0.6,splice=0.4 (kinds: " + ", ".join(k for k, _ in OTHER_KINDS) + "; default: "
                        + ",".join(f"{k}={w:g}" for k, w in OTHER_KINDS) + "). Test clips keep the default mix, so "
                        "rejection figures compare")
    a.add_argument("--noise-kinds", default=None, metavar="KIND=SHARE,...",
                   help="with --reject: the kinds of training `noise` clips and their shares (kinds: "
                        + ", ".join(k for k, _ in NOISE_KINDS) + "; default: "
                        + ",".join(f"{k}={w:g}" for k, w in NOISE_KINDS if w) + "). Test clips keep the default mix")
    a.add_argument("--noise-variants", type=int, default=0, metavar="N",
                   help="with --reject: N varied copies of each training noise recording (another speed, spectral "
                        "tilt and loudness contour; train/reject.py's vary_noise) join the recordings the `noise` "
                        "clips, the digits' augmentation and --stream-windows draw from (default 0 = none)")
    a.add_argument("--stream-windows", type=int, default=0, metavar="N",
                   help="with --reject: also train on the windows the streaming detector cuts from N streams of 10 "
                        "fitted training clips (clean or over training noise) and N/15 minutes of training noise alone: "
                        "windows on a word are the digit, windows the gate opens on background sounds are `noise` "
                        "(train/streamwin.py; default 0 = none)")
    a.add_argument("--stream-synthetic", type=float, default=0.0, metavar="P",
                   help="with --stream-windows: the share of its noisy streams and noise-alone minutes made over "
                        "procedural non-stationary noise instead (train/reject.py's `modulated`; default 0)")
    a.add_argument("--synth", type=int, default=0, metavar="N",
                   help="synthetic training speakers: N utterances of each digit per flite/festival voice (0 = none)")
    a.add_argument("--synth-engines", default=None, metavar="LIST",
                   help="engines of the --synth voices, comma-separated: flite, festival, piper (default: flite,festival; "
                        "piper needs the optional extra: pip install -e '.[piper]', GPL-3.0, training only)")
    t = p.add_argument_group("training")
    t.add_argument("--epochs", type=int, default=60, help="maximum epochs (early stopping on validation accuracy)")
    t.add_argument("--seed", type=int, default=0, help="random seed; same seed and data give the same metrics")
    t.add_argument("--batch-size", type=int, default=32, help="training batch size")
    t.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate")
    t.add_argument("--patience", type=int, default=10, help="early-stopping patience in epochs")
    t.add_argument("--val-speaker", default=None, metavar="NAME|auto",
                   help="nested speaker validation: this training speaker's clips (auto: one chosen by the seed) "
                        "validate early stopping and are not fitted, so the choice is made on a voice the model "
                        "has not heard (default: a stratified 10%% of the training clips)")
    m = p.add_argument_group("model")
    m.add_argument("--lstm-units", type=int, default=128, help="LSTM state size")
    m.add_argument("--dense-units", type=int, default=100, help="hidden dense layer width (0 = none)")
    m.add_argument("--dropout", type=float, default=0.0, help="dropout on the LSTM inputs while training (0 = none)")
    o = p.add_argument_group("output")
    o.add_argument("--out", default="models/run", help="output directory")
    o.add_argument("--no-progress", action="store_true", help="no progress bars")
    o.add_argument("--verbose", "-v", action="store_true", help="debug logging and full tracebacks")
    return p


def augment_config(args, cls):
    """The AugmentConfig the --augment and --no-* switches ask for."""
    off = {}
    if args.no_speed:
        off["speed"] = (1.0, 1.0)
    if args.no_noise:
        off["noise_prob"] = 0.0
    if args.no_gain:
        off["gain_db"] = (0.0, 0.0)
    if getattr(args, "shift_max", None) is not None:
        if args.shift_max < 0:
            raise SystemExit(f"error: --shift-max must be >= 0 samples, got {args.shift_max}")
        off["shift_max"] = args.shift_max
    if args.no_shift:
        off.update(shift_max=0, stream_share=0.0)
    if getattr(args, "stream_share", None) is not None:
        if not 0.0 <= args.stream_share <= 1.0:
            raise SystemExit(f"error: --stream-share is a share of the copies, in [0, 1]; got {args.stream_share}")
        off["stream_share"] = args.stream_share
    if args.no_masks:
        off.update(time_masks=0, freq_masks=0)
    return cls(copies=args.augment, seed=args.seed, **off)


def parse_kinds(text: str, flag: str) -> tuple[tuple[str, float], ...]:
    """KIND=SHARE,... as ((kind, share), ...); the kinds are checked by RejectConfig."""
    out = []
    for part in text.split(","):
        kind, eq, share = part.strip().partition("=")
        try:
            value = float(share)
        except ValueError:
            value = None
        if not eq or not kind.strip() or value is None:
            raise SystemExit(f"error: {flag} takes KIND=SHARE,... (e.g. reversed=0.6,splice=0.4); got {part.strip()!r}")
        out.append((kind.strip(), value))
    return tuple(out)


def reject_config(args, cls):
    """The RejectConfig the --reject-*, --noise-kinds, --noise-variants and --other-kinds switches ask for (None
    without --reject)."""
    if not args.reject:
        if args.noise_variants:
            raise SystemExit("error: --noise-variants varies the training noise of --reject; give both")
        return None
    n = args.reject_clips
    kinds = {f"{w}_kinds": parse_kinds(text, f"--{w}-kinds")
             for w, text in (("noise", args.noise_kinds), ("other", args.other_kinds)) if text}
    return cls(noise_train=n, other_train=n, noise_test=max(1, n // 5), other_test=max(1, n // 5), seed=args.seed,
               classes=tuple(args.reject_classes.split(",")), noise_variants=args.noise_variants, **kinds)


def synth_engines(args) -> tuple[str, ...] | None:
    """The engines --synth-engines names (None: train/synth.py's default), checked before any training."""
    if args.synth_engines is None:
        return None
    if not args.synth:
        raise SystemExit("error: --synth-engines chooses the voices of --synth N; give both")
    from train import synth

    try:
        engines = synth.parse_engines(args.synth_engines)
    except ValueError as e:
        raise SystemExit(f"error: --synth-engines: {e}") from None
    if "piper" in engines and not synth.piper_voices():
        raise SystemExit(f"error: --synth-engines piper: the piper engine is not installed: {synth.PIPER_EXTRA}")
    return engines


def stream_window_config(args):
    """The StreamWindowConfig --stream-windows asks for, or None."""
    if args.stream_windows < 0:
        raise SystemExit(f"error: --stream-windows is a number of streams (0 = none), got {args.stream_windows}")
    if not args.stream_windows:
        if args.stream_synthetic:
            raise SystemExit("error: --stream-synthetic shapes the streams of --stream-windows N; give both")
        return None
    from train.streamwin import StreamWindowConfig

    try:
        return StreamWindowConfig(streams=args.stream_windows, noise_minutes=max(1.0, args.stream_windows / 15),
                                  synthetic_share=args.stream_synthetic, seed=args.seed)
    except ValueError as e:
        raise SystemExit(f"error: --stream-synthetic: {e}") from None


def frontend_config(args, F):
    """The FrontendConfig the data and front-end switches ask for."""
    if args.frontend == 1:
        if args.frame_pool != 1:
            raise SystemExit("error: --frame-pool 2 needs the integer front end (--frontend 2)")
        return F.FrontendConfig(version=1, window_rule=args.window_rule, clip_norm=args.clip_norm)
    pooled = {} if args.frame_pool == 1 else {"frame_pool": args.frame_pool,
                                          "clip_samples": F.FrontendConfig().clip_samples * args.frame_pool}
    return F.FrontendConfig(window_rule=args.window_rule, clip_norm=args.clip_norm, noise_oversub=args.noise_oversub,
                            noise_min_remaining=args.noise_min_remaining, agc_strength=args.agc_strength, **pooled)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from train import features as F
    from train.augment import AugmentConfig
    from train.data import DatasetError
    from train.model import ModelConfig
    from train.reject import RejectConfig
    from train.sanity import DataCheckError
    from train.trainer import TrainConfig, run

    try:
        metrics = run(
            data_dir=args.data_dir,
            split=args.split,
            out=args.out,
            cfg=frontend_config(args, F),
            acfg=augment_config(args, AugmentConfig),
            synth_variants=args.synth,
            synth_engines=synth_engines(args),
            mcfg=ModelConfig(lstm_units=args.lstm_units, dense_units=args.dense_units, dropout=args.dropout),
            tcfg=TrainConfig(
                epochs=args.epochs,
                seed=args.seed,
                batch_size=args.batch_size,
                learning_rate=args.learning_rate,
                patience=args.patience,
                val_speaker=args.val_speaker,
            ),
            progress=not args.no_progress,
            limit_per_speaker=args.limit,
            labels=[n.strip() for n in args.labels.split(",")] if args.labels else None,
            rcfg=reject_config(args, RejectConfig),
            real_rooms=args.real_rooms,
            swcfg=stream_window_config(args),
        )
    except (DatasetError, DataCheckError, ValueError, FileNotFoundError) as exc:
        if args.verbose:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = {k: metrics[k] for k in ("split", "labels", "seed", "epochs", "train_accuracy", "test_accuracy", "test_errors", "n_test",
                                       "seconds", "skipped_files")}
    if metrics.get("reject"):
        summary["rejected_test_clips"] = metrics["reject"]["test"]["rejected"]
    summary["out"] = str(args.out)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
