"""Training run: data -> features -> checks -> LSTM -> metrics, plots, saved model."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

import train  # noqa: F401  (Keras 2 switch)
from train import data as fsdd
from train import features as F
from train.labels import Labels
from train import sanity
from train.augment import NO_AUGMENT, AugmentConfig, augment_copy, spec_masks
from train.model import ModelConfig, build_model
from train.reject import NOISE, RejectConfig

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
CONFIG_FILE = "frontend.json"
METRICS_FILE = "metrics.json"


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Optimisation settings."""

    epochs: int = 60
    """Upper bound on epochs; early stopping usually ends sooner."""
    batch_size: int = 32
    """Training batch (the exported model has batch 1)."""
    learning_rate: float = 1e-3
    """Adam step size."""
    patience: int = 10
    """Epochs without a better validation loss before stopping."""
    monitor: str = "val_loss"
    """What early stopping watches: 'val_loss' (finer than accuracy on 270 clips, which ties early) or 'val_accuracy'."""
    val_fraction: float = 0.1
    """Share of the training split held out for early stopping, stratified by digit."""
    val_speaker: str | None = None
    """Nested speaker validation (issue 21): this training speaker's clips are the validation set (early
    stopping, checkpoint, thresholds) and are never fitted; "auto" picks the training speakers' sorted
    names[seed % n], so seeds rotate it. None: a stratified `val_fraction` of the training clips."""
    seed: int = 0
    """Seeds Python, NumPy and TensorFlow; same seed + data -> same metrics."""
    chance_epochs: int = 5
    """After this many epochs, training accuracy still under `chance_margin` stops the run."""
    chance_margin: float = 0.2
    """Training accuracy below this after `chance_epochs` means nothing is learned (chance is 0.1)."""


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit, val) indices: `fraction` of every class, chosen by a seeded permutation."""
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        val.extend(idx[: max(1, int(round(fraction * len(idx))))])
    val = np.sort(np.array(val, np.int64))
    fit = np.setdiff1d(np.arange(len(labels)), val)
    return rng.permutation(fit), val


def limit_training_clips(ds: fsdd.Dataset, n: int) -> list[int]:
    """Indices keeping every official test clip and the first n others of each
    label and speaker, so a quick run still sees every voice."""
    keep, seen = [], {}
    for i, c in enumerate(ds.clips):
        if fsdd.is_official_test(c):
            keep.append(i)
            continue
        key = (c.label, c.speaker)
        if seen.get(key, 0) < n:
            seen[key] = seen.get(key, 0) + 1
            keep.append(i)
    return keep


def prepare(ds: fsdd.Dataset, split: str, cfg: F.FrontendConfig, *, progress: bool = True):
    """Features and labels for a split, with the normalization fitted on its training part."""
    train_idx, test_idx = fsdd.split_indices(ds, split)
    labels = ds.labels
    # FSDD names carry the digit: check_labels compares; folder names carry no label
    names = [c.path.name for c in ds.clips] if ds.layout == fsdd.LAYOUT_FSDD else None
    # the balance check covers the labels read from files (the generated rejection classes are larger on purpose)
    n_file_labels = len({c.label for c in ds.clips if c.origin is None}) or None
    for part, idx in (("train", train_idx), ("test", test_idx)):
        rep = sanity.check_labels(labels[idx], None if names is None else [names[i] for i in idx],
                                  n_classes=len(ds.names), name=f"{part} labels", balanced=n_file_labels)
        for w in rep.warnings:
            log.warning(w)
    logmel = F.batch_logmel((c.samples for c in ds.clips), cfg, progress=progress, desc="log-mel")
    sanity.check_features(logmel[train_idx], n_frames=cfg.n_frames, n_mels=cfg.n_mels, normalized=False, name="train log-mel")
    cfg = F.fit_normalization(logmel[train_idx], cfg)
    x = F.normalize(logmel, cfg)
    sanity.check_features(x[train_idx], n_frames=cfg.n_frames, n_mels=cfg.n_mels, normalized=True, name="train features")
    return cfg, x, labels, train_idx, test_idx


SYNTH_KEY_BASE = 1_000_000
"""Augmentation keys of synthetic clips start here, apart from the real clips' indices."""


def augmented_features(ds: fsdd.Dataset, idx: np.ndarray, cfg: F.FrontendConfig, acfg: AugmentConfig,
                       *, progress: bool = True, key_base: int = 0, pool=None) -> tuple[np.ndarray, np.ndarray]:
    """Normalized features and labels of ``acfg.copies`` augmented copies of clips ``idx``
    [shapes (len(idx) * copies, n_frames, n_mels) and (len(idx) * copies,)], copy-major.
    Copy k of clip i is drawn with key ``key_base + i``; ``pool``: real noises and rooms (train/augment.py)."""
    if acfg.copies == 0 or len(idx) == 0:
        return np.zeros((0, cfg.n_frames, cfg.n_mels), np.float32), np.zeros(0, np.int64)
    keys = [(int(i), k) for k in range(acfg.copies) for i in idx]
    made = [augment_copy(ds.clips[i].samples, acfg, clip=key_base + i, copy=k, pool=pool) for i, k in keys]
    aligned = np.array([a for _, a in made], bool)
    logmel = np.empty((len(keys), cfg.n_frames, cfg.n_mels), np.float32)
    # stream-aligned copies: the model sees their first frames, as a sliding window does (train/augment.py)
    for rows, rule in ((np.flatnonzero(~aligned), cfg.window_rule), (np.flatnonzero(aligned), "first")):
        if len(rows):
            logmel[rows] = F.batch_logmel((made[j][0] for j in rows), replace(cfg, window_rule=rule), progress=progress,
                                          desc=f"augmented log-mel (x{acfg.copies}{', first frames' if rule == 'first' else ''})")
    x = F.normalize(logmel, cfg)
    for j, (i, k) in enumerate(keys):
        x[j] = spec_masks(x[j], acfg, clip=key_base + i, copy=k)
    return x, ds.labels[[i for i, _ in keys]]


def holdout(ds: fsdd.Dataset, train_idx: np.ndarray, tcfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """(fit, validation) indices into the dataset: its own validation split when it has one (a folder
    per label), else a stratified ``tcfg.val_fraction`` of the training clips."""
    if tcfg.val_speaker:
        return speaker_holdout(ds, train_idx, tcfg)
    val = fsdd.validation_indices(ds, train_idx)
    if val is not None:
        fit = np.setdiff1d(train_idx, val)
        if len(fit):
            return np.random.default_rng(tcfg.seed).permutation(fit), val
    fit_rel, val_rel = stratified_holdout(ds.labels[train_idx], tcfg.val_fraction, tcfg.seed)
    return train_idx[fit_rel], train_idx[val_rel]


def validation_speaker(ds: fsdd.Dataset, train_idx: np.ndarray, tcfg: TrainConfig) -> str:
    """The training speaker `tcfg.val_speaker` names ("auto": sorted names[seed % n]); a clear error when the
    training part has fewer than two speakers or not that one."""
    speakers = sorted({ds.clips[i].speaker for i in train_idx if ds.clips[i].origin is None and ds.clips[i].speaker})
    if len(speakers) < 2:
        raise ValueError(f"nested speaker validation holds one training speaker out for validation, so it needs at "
                         f"least two training speakers; the training part has {len(speakers)} "
                         f"({', '.join(speakers) or 'none'}): add speakers, or drop --val-speaker")
    if tcfg.val_speaker == "auto":
        return speakers[tcfg.seed % len(speakers)]
    if tcfg.val_speaker not in speakers:
        raise ValueError(f"--val-speaker {tcfg.val_speaker!r} is not a training speaker of this split; training "
                         f"speakers: {', '.join(speakers)}")
    return tcfg.val_speaker


def speaker_holdout(ds: fsdd.Dataset, train_idx: np.ndarray, tcfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """(fit, validation) for nested speaker validation: the validation speaker's clips, plus a stratified
    `val_fraction` of the generated clips (train/reject.py's `noise` and `other`, which have no speaker)."""
    speaker = validation_speaker(ds, train_idx, tcfg)
    made = np.array([i for i in train_idx if ds.clips[i].origin is not None], np.int64)
    val = [i for i in train_idx if ds.clips[i].origin is None and ds.clips[i].speaker == speaker]
    if len(made):
        _, val_rel = stratified_holdout(ds.labels[made], tcfg.val_fraction, tcfg.seed)
        val.extend(made[val_rel].tolist())
    val = np.array(sorted(val), np.int64)
    fit = np.setdiff1d(train_idx, val)
    return np.random.default_rng(tcfg.seed).permutation(fit), val


def _callbacks(tcfg: TrainConfig, progress: bool, history: dict, n_classes: int = 10):
    import tf_keras as keras

    class ChanceGuard(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            acc = (logs or {}).get("accuracy", 1.0)
            for k, v in (logs or {}).items():
                history.setdefault(k, []).append(float(v))
            if epoch + 1 == tcfg.chance_epochs and acc < tcfg.chance_margin:
                raise sanity.chance_error(epoch + 1, acc, n_classes)

    cbs = [
        ChanceGuard(),
        keras.callbacks.EarlyStopping(monitor=tcfg.monitor, patience=tcfg.patience, restore_best_weights=True),
    ]
    if progress:
        from tqdm import tqdm

        class Bar(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.bar = tqdm(total=tcfg.epochs, desc="training", unit="epoch", leave=False)

            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                self.bar.set_postfix(
                    loss=f"{logs.get('loss', 0):.3f}", acc=f"{logs.get('accuracy', 0):.3f}", val_acc=f"{logs.get('val_accuracy', 0):.3f}"
                )
                self.bar.update(1)

            def on_train_end(self, logs=None):
                self.bar.close()

        cbs.append(Bar())
    return cbs


def fit(x, y, fit_idx, val_idx, *, mcfg: ModelConfig, tcfg: TrainConfig, progress: bool = True, extra=None):
    """Trains the model on x[fit_idx] (plus ``extra`` = (x, y) arrays, e.g. augmented
    copies), early-stopping on x[val_idx]; returns (model, history dict)."""
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(tcfg.seed)
    tf.config.experimental.enable_op_determinism()
    model = build_model(x.shape[1], x.shape[2], mcfg)
    model.compile(
        optimizer=keras.optimizers.Adam(tcfg.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history: dict = {}
    x_fit, y_fit = x[fit_idx], y[fit_idx]
    if extra is not None and len(extra[0]):
        x_fit, y_fit = np.concatenate([x_fit, extra[0]]), np.concatenate([y_fit, extra[1]])
    model.fit(
        x_fit,
        y_fit,
        validation_data=(x[val_idx], y[val_idx]),
        epochs=tcfg.epochs,
        batch_size=tcfg.batch_size,
        shuffle=True,
        verbose=0,
        callbacks=_callbacks(tcfg, progress, history, mcfg.n_classes),
    )
    return model, history


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int = 10) -> np.ndarray:
    m = np.zeros((n, n), np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def rejection_report(ds: fsdd.Dataset, made: np.ndarray, digits: np.ndarray, pred: np.ndarray) -> dict:
    """Share of the generated noise/other test clips whose top-1 is not a digit, by kind, and share of the
    digit test clips whose top-1 is (wrongly) a rejection label."""
    from train.reject import rejected

    rej = rejected(pred, ds.names)
    by: dict[str, list[int]] = {}
    for i in made:
        kind = ds.clips[i].origin.split(":", 1)[1]
        for key in (kind.split(":")[0], kind):
            b = by.setdefault(key, [0, 0])
            b[0] += int(rej[i])
            b[1] += 1
    return {"rejected": float(np.mean(rej[made])) if len(made) else None,
            "by_kind": {k: {"rejected": v[0], "clips": v[1]} for k, v in sorted(by.items())},
            "digits_rejected": float(np.mean(rej[digits])) if len(digits) else None}


def run(
    *,
    data_dir: str | Path | None,
    split: str = "official",
    out: str | Path = "models/run",
    cfg: F.FrontendConfig = F.DEFAULT_CONFIG,
    mcfg: ModelConfig = ModelConfig(),
    tcfg: TrainConfig = TrainConfig(),
    acfg: AugmentConfig = NO_AUGMENT,
    synth_variants: int = 0,
    synth_engines: tuple[str, ...] | None = None,
    progress: bool = True,
    save: bool = True,
    limit_per_speaker: int | None = None,
    labels: Sequence[str] | None = None,
    rcfg: RejectConfig | None = None,
    real_rooms: bool | None = None,
    swcfg=None,
) -> dict:
    """One training run; writes the model, config, labels, metrics and plots to `out`; returns the metrics.
    ``labels``: keep these labels of a folder-per-label dataset, in this order (default: all, sorted).
    ``rcfg``: add the `noise` and `other` classes (train/reject.py) to FSDD's digits.
    ``real_rooms``: augment with the real training noises and room responses beside the data (train/augment.py's
    Pool; default: with ``rcfg`` only); True without such a folder is an error.
    ``synth_engines``: the engines of the ``synth_variants`` synthetic voices (train/synth.py; default flite and
    festival).
    ``swcfg``: add windows the streaming detector cuts from streams of the fitted clips (train/streamwin.py;
    needs the `noise` class)."""
    t0 = time.perf_counter()
    root = fsdd.resolve_data_dir(data_dir)
    ds = fsdd.load_dataset(root, sr=cfg.sr, strict=False, progress=progress, labels=labels)
    fsdd.log_problems(ds, log)
    if synth_variants and ds.layout != fsdd.LAYOUT_FSDD:
        raise ValueError(f"--synth adds synthetic voices saying FSDD's digits; {root} has the labels "
                         f"{', '.join(ds.names)}: drop --synth")
    if limit_per_speaker:
        ds = ds.subset(limit_training_clips(ds, limit_per_speaker))
    reject_counts, pool = None, None
    if rcfg is not None or real_rooms:
        from train import reject

        noise_dir = reject.noise_root(root)
        if real_rooms and noise_dir is None:
            raise ValueError(f"--real-rooms needs the real noise and room-response folder (a `noise` folder beside "
                             f"{root}, or $SD_NOISE_DIR): none found; drop --real-rooms or point SD_NOISE_DIR at it")
        if rcfg is not None:  # `noise` and `other` after the digits (train/reject.py)
            ds, reject_counts = reject.extend(ds, split, rcfg, noise_dir, progress=progress)
        if real_rooms is not False:
            pool = reject.augment_pool(noise_dir, rcfg.noise_variants if rcfg is not None else 0,
                                       rcfg.seed if rcfg is not None else 0)
    names = Labels(ds.names)
    if swcfg is not None and NOISE not in names.names:
        raise ValueError("--stream-windows labels the detector's windows on background sounds `noise`: add the "
                         "class with --reject")
    mcfg = replace(mcfg, n_classes=len(names))
    cfg, x, y, train_idx, test_idx = prepare(ds, split, cfg, progress=progress)
    fit_idx, val_idx = holdout(ds, train_idx, tcfg)
    extra = augmented_features(ds, fit_idx, cfg, acfg, progress=progress, pool=pool)
    n_synth = 0
    if synth_variants:
        # Synthetic voices join the training part only, never the test or validation clips or
        # the normalization statistics (fitted above on the real training speakers).
        from train import synth

        scfg = synth.SynthConfig(variants=synth_variants, **({"engines": synth_engines} if synth_engines else {}))
        sds = fsdd.load_dataset(synth.generate(scfg, progress=progress),
                                sr=cfg.sr, strict=False, progress=False)
        n_synth = len(sds)
        xs = F.normalize(F.batch_logmel((c.samples for c in sds.clips), cfg, progress=progress, desc="synthetic log-mel"), cfg)
        xa, ya = augmented_features(sds, np.arange(n_synth), cfg, acfg, progress=progress, key_base=SYNTH_KEY_BASE,
                                    pool=pool)
        extra = (np.concatenate([extra[0], xs, xa]), np.concatenate([extra[1], sds.labels, ya]))
    stream_counts = None
    if swcfg is not None:
        from train import streamwin

        words = [i for i in fit_idx if ds.clips[i].origin is None]  # the fitted clips read from files, no made ones
        xw, yw, stream_counts = streamwin.stream_windows([ds.clips[i].samples for i in words], y[words], cfg, swcfg,
                                                         names.names.index(NOISE), pool=pool, progress=progress)
        extra = (np.concatenate([extra[0], xw]), np.concatenate([extra[1], yw]))
    model, history = fit(x, y, fit_idx, val_idx, mcfg=mcfg, tcfg=tcfg, progress=progress, extra=extra)
    pred = model.predict(x, batch_size=256, verbose=0).argmax(axis=1)
    cm = confusion(y[test_idx], pred[test_idx], len(names))
    # accuracy is over the test clips read from files (FSDD's digits); the generated rejection clips are scored
    # by how many come out as a non-digit
    file_test = np.array([i for i in test_idx if ds.clips[i].origin is None], np.int64)
    made_test = np.array([i for i in test_idx if ds.clips[i].origin is not None], np.int64)
    metrics = {
        "split": split,
        "seed": tcfg.seed,
        "epochs": len(history.get("loss", [])),
        "best_epoch": (int(np.argmin(history[tcfg.monitor]) if tcfg.monitor.endswith("loss") else np.argmax(history[tcfg.monitor])) + 1
                       if history.get(tcfg.monitor) else None),
        "train_accuracy": float(np.mean(pred[train_idx] == y[train_idx])),
        "val_accuracy": float(np.mean(pred[val_idx] == y[val_idx])),
        "n_val": int(len(val_idx)),
        "val_speaker": validation_speaker(ds, train_idx, tcfg) if tcfg.val_speaker else None,
        "labels": list(names.names),
        "data_layout": ds.layout,
        "test_accuracy": float(np.mean(pred[file_test] == y[file_test])),
        "test_errors": int(np.sum(pred[file_test] != y[file_test])),
        "n_train": int(len(train_idx)),
        "n_extra": int(len(extra[1])),
        "n_synthetic_clips": n_synth,
        "augment": acfg.to_dict(),
        "real_rooms": pool is not None,
        "stream_windows": None if swcfg is None else {"config": swcfg.to_dict(), "windows": stream_counts},
        "clip_norm": cfg.clip_norm,
        "n_test": int(len(file_test)),
        "reject": None if rcfg is None else {"config": rcfg.to_dict(), "clips": reject_counts,
                                             "test": rejection_report(ds, made_test, file_test, pred)},
        "seconds": round(time.perf_counter() - t0, 2),
        "window_rule": cfg.window_rule,
        "model": {"lstm_units": mcfg.lstm_units, "dense_units": mcfg.dense_units, "n_classes": mcfg.n_classes, "dropout": mcfg.dropout},
        "train_config": {k: getattr(tcfg, k) for k in tcfg.__dataclass_fields__},
        "frontend_sha256": cfg.sha256(),
        "confusion_matrix": cm.tolist(),
        "skipped_files": [str(e) for e in ds.errors],
        "data_notes": ds.notes,
        "history": history,
    }
    if save:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        model.save(out / MODEL_FILE)
        cfg.save(out / CONFIG_FILE)
        names.save(out)  # one name per output (train/labels.py)
        (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
        from train.plots import plot_confusion, plot_history

        plot_history(history, out / "training_curve.png")
        plot_confusion(cm, out / "confusion_matrix.png", title=f"test split ({split}), accuracy {metrics['test_accuracy']:.1%}",
                       labels=list(names.names))
    return metrics
