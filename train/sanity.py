"""Data sanity checks that catch the classic preprocessing bugs before they
cost an afternoon.

The failure these exist for: an LSTM on FSDD mel spectrograms whose train and
validation accuracy wander between 0.09 and 0.11 for every learning rate.
That pattern means the labels carry no information about the features: a
shuffle applied to one array and not the other, labels parsed from the wrong
part of the file name, or features that are all the same. Each check raises
`DataCheckError` with what it saw and the likely fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CHANCE_CAUSES = (
    "labels shuffled or sorted separately from the features (shuffle both with one permutation)",
    "labels parsed from the wrong part of the file name ({digit}_{speaker}_{index}.wav: the digit is first)",
    "features identical for every clip (a window taken from the silent padding, or a bug zeroing them)",
    "raw mel power instead of log-mel, or features not normalized (values spanning many decades)",
    "time and feature axes swapped (the LSTM must step over 16 time frames of 80 mel values)",
    "a learning rate far too high or too low",
)


class DataCheckError(ValueError):
    """Training data that would not train; the message says why and what to do."""


@dataclass
class CheckReport:
    warnings: list[str] = field(default_factory=list)
    facts: dict = field(default_factory=dict)


def check_features(x: np.ndarray, *, n_frames: int, n_mels: int, normalized: bool, name: str = "features") -> CheckReport:
    """Shape, orientation, finiteness, variation and scale of a feature array [shape=(n, n_frames, n_mels)].

    `normalized` says whether x should already be standardized (mean ~0,
    std ~1) or still be log-mel (roughly -14 .. +10).
    """
    rep = CheckReport()
    if x.ndim != 3:
        raise DataCheckError(f"{name}: expected shape (clips, {n_frames}, {n_mels}), got {x.shape}")
    if x.shape[1:] == (n_mels, n_frames) and n_mels != n_frames:
        raise DataCheckError(
            f"{name}: shape {x.shape} has time and feature axes swapped; rows must be time steps: "
            f"use x.transpose(0, 2, 1) to get (clips, {n_frames}, {n_mels})"
        )
    if x.shape[1:] != (n_frames, n_mels):
        raise DataCheckError(f"{name}: expected (clips, {n_frames}, {n_mels}), got {x.shape}")
    bad = ~np.isfinite(x)
    if bad.any():
        clips = np.unique(np.nonzero(bad)[0])
        raise DataCheckError(
            f"{name}: {int(bad.sum())} NaN/inf values in {len(clips)} clips (first: {clips[:5].tolist()}); "
            "a log of zero power without a floor, or a division by a zero std"
        )
    per_clip_range = np.ptp(x.reshape(len(x), -1), axis=1)
    if np.ptp(x) == 0:
        raise DataCheckError(f"{name}: features are constant (every value {x.flat[0]:.4g}); the front end produced no signal")
    dup = float(np.mean(np.all(np.isclose(x, x[:1]), axis=(1, 2))))
    if dup > 0.5:
        raise DataCheckError(f"{name}: {dup:.0%} of clips have identical features; check the window rule and padding")
    const_clips = int(np.sum(per_clip_range == 0))
    if const_clips:
        rep.warnings.append(f"{name}: {const_clips} clips have constant features (silent recordings?)")
    lo, hi = float(x.min()), float(x.max())
    med = float(np.median(x))
    rep.facts.update(min=lo, max=hi, median=med, mean=float(x.mean()), std=float(x.std()))
    if lo >= 0 and (hi > 1e2 or (med > 0 and hi / med > 1e4) or (med == 0 and hi > 1)):
        raise DataCheckError(
            f"{name}: values from {lo:.3g} to {hi:.3g} (median {med:.3g}) look like raw mel power, not log-mel; "
            "apply log(mel + floor) before normalizing"
        )
    if normalized:
        if abs(x.mean()) > 1.0 or not 0.2 < x.std() < 5.0:
            raise DataCheckError(
                f"{name}: mean {x.mean():.3g}, std {x.std():.3g}: not standardized; "
                "use the training split's per-band mean and std"
            )
    elif hi > 50 or lo < -50:
        raise DataCheckError(f"{name}: log-mel outside [-50, 50] (min {lo:.3g}, max {hi:.3g}); is the audio scaled to [-1, 1)?")
    return rep


def check_labels(labels: np.ndarray, names: list[str] | None = None, *, n_classes: int = 10, name: str = "labels",
                 balanced: int | None = None) -> CheckReport:
    """Label range, agreement with FSDD file names, and class balance (of the first ``balanced`` classes
    only, when given: the rejection classes of train/reject.py are larger on purpose)."""
    from train.data import parse_name

    rep = CheckReport()
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise DataCheckError(f"{name}: expected one integer label per clip, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise DataCheckError(f"{name}: labels outside 0..{n_classes - 1} (min {labels.min()}, max {labels.max()})")
    if names is not None:
        if len(names) != len(labels):
            raise DataCheckError(f"{name}: {len(labels)} labels for {len(names)} files")
        parsed = [parse_name(n) for n in names]
        pairs = [(i, p[0]) for i, p in enumerate(parsed) if p is not None]
        wrong = [i for i, d in pairs if labels[i] != d]
        if wrong:
            ex = ", ".join(f"{names[i]} -> {labels[i]}" for i in wrong[:3])
            raise DataCheckError(
                f"{name}: {len(wrong)} of {len(pairs)} labels do not match the digit in the file name (e.g. {ex}); "
                "labels were shuffled or sorted apart from the features"
            )
    counts = np.bincount(labels.astype(np.int64), minlength=n_classes)
    rep.facts["class_counts"] = counts.tolist()
    missing = [c for c in range(n_classes) if counts[c] == 0]
    if missing:
        raise DataCheckError(f"{name}: classes {missing} have no examples (counts {counts.tolist()})")
    bal = counts[: balanced or n_classes]
    ratio = bal.max() / bal.min()
    if ratio > 1.5:
        rep.warnings.append(
            f"{name}: class imbalance, largest/smallest class = {ratio:.1f} (counts {counts.tolist()}); "
            "accuracy will favour the large classes"
        )
    return rep


def chance_error(epoch: int, accuracy: float, n_classes: int = 10) -> DataCheckError:
    causes = "\n".join(f"  - {c}" for c in CHANCE_CAUSES)
    return DataCheckError(
        f"training accuracy is {accuracy:.3f} after {epoch} epochs, at chance (1/{n_classes} = {1 / n_classes:.2f}); "
        f"the model is learning nothing. Likely causes:\n{causes}"
    )
