"""python -m train.evaluate: float accuracy of a trained model on a split.

Uses the model's own frontend.json (its normalization statistics), so the
numbers are those of the released artefact, not of a retrained one.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

import train  # noqa: F401


def evaluate(model_dir: str | Path, *, data_dir=None, split: str = "official", progress: bool = True) -> dict:
    from train import data as fsdd
    from train import features as F
    from train.model import load_model
    from train.trainer import CONFIG_FILE, MODEL_FILE, confusion

    model_dir = Path(model_dir)
    cfg = F.FrontendConfig.load(model_dir / CONFIG_FILE)
    model = load_model(model_dir / MODEL_FILE)
    from train.labels import Labels

    from train.reject import file_labels
    from train.trainer import METRICS_FILE

    labels = Labels.load(model_dir)
    # a model trained with --reject is scored on the files' labels: its noise and other clips are made, not read
    # (convert.quantize and metrics.json report them)
    metrics = json.loads((model_dir / METRICS_FILE).read_text()) if (model_dir / METRICS_FILE).is_file() else {}
    ds = fsdd.load_dataset(fsdd.resolve_data_dir(data_dir), sr=cfg.sr, strict=False, progress=progress,
                           labels=file_labels(labels.names, metrics))
    fsdd.log_problems(ds, logging.getLogger("train.evaluate"))
    _, test_idx = fsdd.split_indices(ds, split)
    test = ds.subset(test_idx)
    x = F.normalize(F.batch_logmel((c.samples for c in test.clips), cfg, progress=progress), cfg)
    pred = model.predict(x, batch_size=256, verbose=0).argmax(axis=1)
    y = test.labels
    wrong = [{"file": test.clips[i].path.name, "label": int(y[i]), "predicted": int(pred[i]),
              "label_name": labels.name(y[i]), "predicted_name": labels.name(pred[i])} for i in np.flatnonzero(pred != y)]
    return {
        "model": str(model_dir),
        "split": split,
        "labels": list(labels.names),
        "clips": len(test),
        "accuracy": float(np.mean(pred == y)),
        "errors": wrong,
        "skipped_files": [str(e) for e in ds.errors],
        "data_notes": ds.notes,
        "confusion_matrix": confusion(y, pred, len(labels)).tolist(),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.evaluate", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default="models/released", help="trained model directory (model.keras + frontend.json)")
    p.add_argument("--data-dir", help="FSDD folder, or a folder per label (DIR/<label>/*.wav); default $FSDD_DIR or the cache")
    p.add_argument("--split", default="official", help="'official' or 'loso:<speaker>'")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        res = evaluate(args.model, data_dir=args.data_dir, split=args.split, progress=not args.no_progress)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{res['model']}: float accuracy on the {res['split']} test split: {res['accuracy']:.2%} "
          f"({res['clips'] - len(res['errors'])}/{res['clips']})", file=sys.stderr)
    res.pop("confusion_matrix")
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
