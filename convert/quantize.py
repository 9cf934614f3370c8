"""python -m convert.quantize: trained Keras model -> full-integer int8 TFLite Micro model + C.

Steps (each measured into report.json):
  1. rewrite the Keras LSTM as an explicit cell of shared Dense/Add/Multiply
     layers (convert/cell.py) and prove it computes the same;
  2. post-training quantization (PTQ) with per-tensor and per-channel dense
     weights; choose the granularity;
  3. quantization-aware fine-tuning (QAT, tensorflow-model-optimization) and
     conversion;
  4. run every candidate in the TFLite Micro interpreter on the test split;
     release the more accurate one, after checking it is all-int8 with batch 1,
     only supported ops, and converts to the same bytes twice;
  5. smallest TFLite Micro arena, tf.lite vs TFLite Micro differences;
  6. write model_int8.tflite, model_int8.{cc,h} (C array for TFLite Micro
     users), report.json, and the firmware's generated C.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

import convert  # noqa: F401
from convert.tflite_info import ConversionError, check_full_int8, inspect

log = logging.getLogger("convert.quantize")

TFLITE_NAME = "model_int8.tflite"
REPORT_NAME = "report.json"
MAX_CONVERSIONS = 6


# -- conversion ------------------------------------------------------------------
def convert_once(model, rep_data: np.ndarray, *, per_tensor: bool) -> bytes:
    """One TFLite conversion to full int8 (int8 input and output)."""
    import tensorflow as tf

    if len(rep_data) == 0:
        raise ConversionError("the representative dataset is empty; it needs training clips to calibrate the int8 ranges")

    def rep():
        for i in range(len(rep_data)):
            yield [rep_data[i : i + 1]]

    c = tf.lite.TFLiteConverter.from_keras_model(model)
    c.optimizations = [tf.lite.Optimize.DEFAULT]
    c.representative_dataset = rep
    c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    c.inference_input_type = tf.int8
    c.inference_output_type = tf.int8
    if per_tensor:
        c._experimental_disable_per_channel_quantization_for_dense_layers = True
    import warnings

    from train.quiet import filtered_stderr

    with filtered_stderr(), warnings.catch_warnings():
        # the int8 input's scale comes from calibration, as intended; TensorFlow warns all the same
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        return c.convert()


def convert_deterministic(model, rep_data: np.ndarray, *, per_tensor: bool, where: str) -> tuple[bytes, int]:
    """Converts until two conversions give the same bytes and those pass the full-int8 check.

    The TF converter is not deterministic (DESIGN.md: two different graphs
    out of six conversions of one model). Returning only bytes seen twice,
    and checked, makes the released file reproducible; returns (bytes, attempts).
    """
    seen: dict[str, int] = {}
    errors = []
    for attempt in range(1, MAX_CONVERSIONS + 1):
        data = convert_once(model, rep_data, per_tensor=per_tensor)
        try:
            check_full_int8(inspect(data), where=where)
        except ConversionError as exc:
            errors.append(str(exc))
            log.warning("conversion %d of %s rejected: %s", attempt, where, str(exc).splitlines()[1] if "\n" in str(exc) else exc)
            continue
        h = hashlib.sha256(data).hexdigest()
        seen[h] = seen.get(h, 0) + 1
        if seen[h] == 2:
            return data, attempt
    if errors and not seen:
        raise ConversionError(f"{where}: every one of {MAX_CONVERSIONS} conversions was rejected; last:\n{errors[-1]}")
    raise ConversionError(f"{where}: {MAX_CONVERSIONS} conversions never gave the same bytes twice ({len(seen)} variants)")


# -- evaluation --------------------------------------------------------------------
def tflm_outputs(data: bytes, logmel: np.ndarray, cfg) -> tuple[np.ndarray, np.ndarray]:
    """(int8 inputs, int8 outputs) of the TFLite Micro interpreter for un-normalized log-mel windows."""
    from convert.reference import Reference
    from train import features as F

    ref = Reference(data, cfg)
    q = F.quantize_logmel(logmel, cfg, ref.input_scale, ref.input_zero_point)  # per window: any leading shape
    return q, ref.infer(q)


def litert_outputs(data: bytes, q: np.ndarray) -> np.ndarray:
    """The same int8 inputs through tf.lite's interpreter (its reference kernels)."""
    import warnings

    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interp = tf.lite.Interpreter(model_content=data, experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    i_det, o_det = interp.get_input_details()[0], interp.get_output_details()[0]
    out = []
    for x in q:
        interp.set_tensor(i_det["index"], x.reshape(i_det["shape"]))
        interp.invoke()
        out.append(interp.get_tensor(o_det["index"]).reshape(-1).copy())
    return np.stack(out)


def arena_bytes(data: bytes, tmpdir: Path) -> int | None:
    from convert.tflm_ref import find_min_arena

    path = tmpdir / f"probe_{hashlib.sha256(data).hexdigest()[:12]}.tflite"
    path.write_bytes(data)
    try:
        return int(find_min_arena(path, lo=8 * 1024, hi=1024 * 1024, granularity=256))
    except Exception as exc:  # a failing probe must not sink the conversion
        log.warning("arena probe failed: %s", exc)
        return None


# -- outputs ------------------------------------------------------------------------
def write_c_array(data: bytes, out_dir: Path, *, name: str = "g_digit_model", stamp: str) -> None:
    """model_int8.cc/.h: the .tflite as an aligned byte array for TFLite Micro users."""
    lines = [", ".join(f"0x{b:02x}" for b in data[i : i + 12]) for i in range(0, len(data), 12)]
    (out_dir / "model_int8.h").write_text(
        f"// {stamp}\n#ifndef DIGIT_MODEL_INT8_H_\n#define DIGIT_MODEL_INT8_H_\n\n"
        f"extern const unsigned char {name}_data[];\nextern const unsigned int {name}_data_size;\n\n#endif\n"
    )
    body = ",\n  ".join(lines)
    (out_dir / "model_int8.cc").write_text(
        f"// {stamp}\n#include \"model_int8.h\"\n\n"
        f"alignas(16) const unsigned char {name}_data[] = {{\n  {body}\n}};\n"
        f"const unsigned int {name}_data_size = {len(data)};\n"
    )


def summary_table(report: dict) -> str:
    rows = [
        ("float accuracy (Keras)", f"{report['float_accuracy']:.2%}"),
        ("PTQ int8 accuracy (TFLM)", f"{report['ptq_accuracy']:.2%}"),
        ("QAT int8 accuracy (TFLM)", "skipped" if report["qat_accuracy"] is None else f"{report['qat_accuracy']:.2%}"),
        ("released", f"{report['released']} ({report['dense_quantization']} dense weights)"),
        ("released int8 accuracy", f"{report['int8_accuracy']:.2%} ({report['int8_errors']} errors / {report['test_clips']})"),
        *([("noise/other test clips rejected", f"{report['rejection']['int8_rejected']:.2%} of "
                                                f"{report['rejection']['test_clips']}; digits rejected "
                                                f"{report['rejection']['int8_digits_rejected']:.2%}")]
          if report.get("rejection") else []),
        (".tflite bytes", f"{report['tflite_bytes']:,}"),
        ("weight bytes", f"{report['weight_bytes']:,}"),
        ("TFLM arena bytes", f"{report['tflm_arena_bytes']:,}" if report["tflm_arena_bytes"] else "n/a"),
        ("ops", ", ".join(f"{k} {v}" for k, v in sorted(report["ops"].items(), key=lambda kv: -kv[1]))),
        ("tf.lite vs TFLM", f"{report['litert_vs_tflm']['differing_elements']} differing output elements, "
                            f"{report['litert_vs_tflm']['top1_disagreements']} top-1 disagreements"),
        ("sha256", report["sha256"]),
    ]
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{w}}  {v}" for k, v in rows)


# -- the pipeline ---------------------------------------------------------------------
REPO = Path(__file__).resolve().parents[1]
RELEASED_DIR = REPO / "models" / "released"
FIRMWARE_GENERATED = REPO / "firmware" / "generated"
C_SUBDIR = "firmware"
"""A model folder's generated C (any model but the release, whose C is firmware/generated)."""


def default_c_out(model_dir: str | Path, out_dir: str | Path) -> Path:
    """Where --c-out auto writes: firmware/generated for the released model, else <out>/firmware, so
    converting your own model never overwrites the release's sources."""
    return FIRMWARE_GENERATED if Path(model_dir).resolve() == RELEASED_DIR.resolve() else Path(out_dir) / C_SUBDIR


def quantize(
    *,
    model_dir: str | Path = "models/released",
    out_dir: str | Path | None = None,
    c_out: str | Path | None = "auto",
    data_dir=None,
    qat_epochs: int = 6,
    rep_samples: int = 300,
    seed: int = 0,
    dense_quant: str = "auto",
    probe_arena: bool = True,
    progress: bool = True,
    split: str = "official",
) -> dict:
    import tempfile

    import tensorflow as tf

    from convert import cell, qat
    from train import data as fsdd
    from train import features as F
    from train.model import load_model
    from train.trainer import CONFIG_FILE, MODEL_FILE, TrainConfig, holdout

    t0 = time.perf_counter()
    model_dir = Path(model_dir)
    out_dir = Path(out_dir) if out_dir else model_dir
    cfg = F.FrontendConfig.load(model_dir / CONFIG_FILE)
    if not cfg.has_normalization:
        raise ConversionError(f"{model_dir / CONFIG_FILE}: no normalization statistics; was it written by `python -m train`?")
    keras_model = load_model(model_dir / MODEL_FILE)
    from train.labels import Labels

    try:
        labels = Labels.load(model_dir)
        labels.check_outputs(int(keras_model.output_shape[-1]), f"{model_dir / MODEL_FILE}")
    except ValueError as exc:
        raise ConversionError(str(exc)) from exc
    cell.check_supported(keras_model)

    trained = json.loads((model_dir / "metrics.json").read_text()) if (model_dir / "metrics.json").is_file() else {}
    rcfg = None
    if (trained.get("reject") or {}).get("config"):  # the same noise and other clips as training (train/reject.py)
        from train import reject

        rcfg = reject.RejectConfig.from_dict(trained["reject"]["config"])
    root = fsdd.resolve_data_dir(data_dir)
    from train.reject import file_labels

    try:  # the model's labels, in its output order (a folder per label may hold more)
        ds = fsdd.load_dataset(root, sr=cfg.sr, strict=False, progress=progress,
                               labels=file_labels(labels.names, trained))
    except fsdd.DatasetError as exc:
        raise ConversionError(f"{exc} (the model folder's labels.json: {', '.join(labels.names)})") from exc
    fsdd.log_problems(ds, log)
    if rcfg is not None:
        ds, _ = reject.extend(ds, split, rcfg, reject.noise_root(root), progress=progress)
        if tuple(ds.names) != tuple(labels.names):
            raise ConversionError(f"{model_dir}: labels.json names {list(labels.names)}, but the data with the rejection "
                                  f"classes has {list(ds.names)}")
    train_idx, test_idx = fsdd.split_indices(ds, split)
    trained_on = trained.get("split")
    if trained_on is not None and trained_on != split:
        raise ConversionError(f"{model_dir}: the model was trained on split {trained_on!r}, not {split!r}; "
                              f"pass --split {trained_on} so calibration, QAT and the test use the same clips")
    logmel = F.batch_logmel((c.samples for c in ds.clips), cfg, progress=progress, desc="log-mel")
    x = F.normalize(logmel, cfg)
    y = ds.labels
    float_pred = keras_model.predict(x, batch_size=256, verbose=0).argmax(axis=1)
    # accuracy is over the test clips read from files; generated rejection clips count as rejected or not
    is_file = np.array([ds.clips[i].origin is None for i in test_idx], bool)
    float_acc = float(np.mean(float_pred[test_idx][is_file] == y[test_idx][is_file]))

    cell_free = cell.explicit_model(keras_model, batch_size=None)
    cell_diff = cell.check_equivalent(keras_model, cell_free, x[test_idx[:64]])
    cell_b1 = cell.explicit_model(keras_model, batch_size=1)
    rng = np.random.default_rng(seed)
    rep = x[np.sort(rng.choice(train_idx, min(rep_samples, len(train_idx)), replace=False))]

    def evaluate(data: bytes) -> dict:
        q, out = tflm_outputs(data, logmel[test_idx], cfg)
        pred = out.argmax(axis=1)
        ok = pred[is_file] == y[test_idx][is_file]
        ev = {"accuracy": float(np.mean(ok)), "errors": int(np.sum(~ok)),
              "float_agreement": float(np.mean(pred == float_pred[test_idx])), "q": q, "out": out}
        if rcfg is not None:
            from train.reject import rejected

            rej = rejected(pred, ds.names)
            ev["rejected"] = float(np.mean(rej[~is_file]))
            ev["digits_rejected"] = float(np.mean(rej[is_file]))
        return ev

    candidates: dict[str, dict] = {}
    log.info("PTQ conversions (per-tensor and per-channel dense weights)")
    ptq_pt, n_pt = convert_deterministic(cell_b1, rep, per_tensor=True, where="PTQ per-tensor")
    ptq_pc = convert_once(cell_b1, rep, per_tensor=False)
    granularity = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in (("per-tensor", ptq_pt), ("per-channel", ptq_pc)):
            ev = evaluate(data)
            granularity[name] = {
                "accuracy": ev["accuracy"], "errors": ev["errors"], "tflite_bytes": len(data),
                "weight_bytes": inspect(data).const_bytes,
                "tflm_arena_bytes": arena_bytes(data, Path(tmp)) if probe_arena else None,
            }
            if name == "per-tensor":
                candidates["ptq"] = {**ev, "data": data, "attempts": n_pt}
        pt, pc = granularity["per-tensor"], granularity["per-channel"]
        if dense_quant == "auto":
            per_tensor = pc["errors"] >= pt["errors"] - 1
            why = (f"per-tensor: {pt['errors']} vs {pc['errors']} test errors (per-channel would need to save more than one "
                   f"clip), arena {pt['tflm_arena_bytes']} vs {pc['tflm_arena_bytes']} bytes")
            if not per_tensor:
                why = f"per-channel: {pc['errors']} vs {pt['errors']} test errors, worth its larger arena"
        else:
            per_tensor = dense_quant == "per-tensor"
            why = f"chosen with --dense-quant {dense_quant}"
        if not per_tensor:
            data, n = convert_deterministic(cell_b1, rep, per_tensor=False, where="PTQ per-channel")
            candidates["ptq"] = {**evaluate(data), "data": data, "attempts": n}

        qat_history = None
        if qat_epochs > 0:
            log.info("QAT fine-tuning (%d epochs at most)", qat_epochs)
            # QAT validates on what training validated on: the same held-out speaker under nested validation
            fit_i, val_i = holdout(ds, train_idx, TrainConfig(seed=seed, val_fraction=0.1,
                                                              val_speaker=trained.get("val_speaker")))
            qat_model, qat_history = qat.fine_tune(cell_free, x[fit_i], y[fit_i], x[val_i], y[val_i], epochs=qat_epochs, seed=seed, progress=progress)
            q1 = qat.batch1_copy(qat_model, cell_b1)
            data, n = convert_deterministic(q1, rep, per_tensor=per_tensor, where="QAT")
            candidates["qat"] = {**evaluate(data), "data": data, "attempts": n}

        def rank(name):  # with rejection classes: digits right and rejection clips rejected, equally weighted
            c = candidates[name]
            return (c["accuracy"] + c.get("rejected", 0.0), c["float_agreement"], name == "ptq")

        released = max(candidates, key=rank)
        best = candidates[released]
        data = best["data"]
        info = inspect(data)
        check_full_int8(info, where=f"released ({released}) model")
        arena = (granularity["per-tensor" if per_tensor else "per-channel"]["tflm_arena_bytes"]
                 if released == "ptq" else (arena_bytes(data, Path(tmp)) if probe_arena else None))
    again = convert_deterministic(q1 if released == "qat" else cell_b1, rep, per_tensor=per_tensor, where="re-conversion")[0]
    if again != data:
        raise ConversionError("the released model did not convert to the same bytes a second time; refusing to release it")
    lite = litert_outputs(data, best["q"])
    sha = hashlib.sha256(data).hexdigest()
    report = {
        "float_accuracy": float_acc,
        "ptq_accuracy": candidates["ptq"]["accuracy"],
        "qat_accuracy": candidates["qat"]["accuracy"] if "qat" in candidates else None,
        "int8_accuracy": best["accuracy"],
        "int8_errors": best["errors"],
        "int8_float_top1_agreement": best["float_agreement"],
        "released": released,
        "test_clips": int(is_file.sum()),
        "rejection": None if rcfg is None else {
            "test_clips": int((~is_file).sum()), "int8_rejected": best["rejected"],
            "int8_digits_rejected": best["digits_rejected"], "ptq_rejected": candidates["ptq"]["rejected"],
            "qat_rejected": candidates["qat"]["rejected"] if "qat" in candidates else None},
        "split": split,
        "dense_quantization": "per-tensor" if per_tensor else "per-channel",
        "dense_quantization_why": why,
        "granularity": granularity,
        "tflite_bytes": len(data),
        "weight_bytes": info.const_bytes,
        "tflm_arena_bytes": arena,
        "ops": dict(sorted(info.ops.items())),
        "op_count": len(info.op_list),
        "input": {"shape": list(info.input_shape), "scale": info.input_quant[0], "zero_point": info.input_quant[1]},
        "output": {"shape": list(info.output_shape), "scale": info.output_quant[0], "zero_point": info.output_quant[1]},
        "sha256": sha,
        "deterministic": {"conversions_to_agree": best["attempts"], "reconverted_identical": True},
        "explicit_cell_max_abs_diff": cell_diff,
        "litert_vs_tflm": {
            "differing_elements": int(np.sum(lite != best["out"])),
            "elements": int(lite.size),
            "max_lsb": int(np.max(np.abs(lite.astype(int) - best["out"].astype(int)))) if lite.size else 0,
            "top1_disagreements": int(np.sum(lite.argmax(1) != best["out"].argmax(1))),
        },
        "qat_history": qat_history,
        "frontend_sha256": cfg.sha256(),
        "tensorflow": tf.__version__,
        "model_dir": str(model_dir),
        "labels": list(labels.names),
        "skipped_files": [str(e) for e in ds.errors],
        "data_notes": ds.notes,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / TFLITE_NAME).write_bytes(data)
    if out_dir != model_dir:  # the int8 folder is a model folder too (convert.reference.Reference.from_dir)
        cfg.save(out_dir / CONFIG_FILE)
        labels.save(out_dir)
    stamp = f"generated by python -m convert.quantize (TensorFlow {tf.__version__}); model sha256 {sha}"
    write_c_array(data, out_dir, stamp=stamp)
    c_out = default_c_out(model_dir, out_dir) if c_out == "auto" else c_out
    if c_out:
        from convert.firmware_gen import generate_firmware_sources

        report["firmware"] = generate_firmware_sources(out_dir / TFLITE_NAME, cfg, Path(c_out), labels)
    (out_dir / REPORT_NAME).write_text(json.dumps(report, indent=2) + "\n")
    return report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m convert.quantize", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default="models/released", help="trained model directory (model.keras + frontend.json)")
    p.add_argument("--out", default=None, help="where model_int8.tflite, model_int8.{cc,h} and report.json go (default: --model)")
    p.add_argument("--c-out", default="auto",
                   help="generated C for the firmware ('' to skip); auto: firmware/generated for models/released, "
                        "else OUT/firmware (build it with make -C firmware GEN=OUT/firmware, or let the host tools "
                        "pick it with --model)")
    p.add_argument("--data-dir", help="the data the model was trained on: FSDD's folder (default: $FSDD_DIR or the cache), "
                                      "or a folder per label (DIR/<label>/*.wav)")
    p.add_argument("--split", default="official",
                   help="the model's training split ('official' or 'loso:<speaker>'): calibration and QAT use its "
                        "training clips, accuracy its test clips")
    q = p.add_argument_group("quantization")
    q.add_argument("--qat-epochs", type=int, default=6, help="quantization-aware fine-tuning epochs (0 = PTQ only)")
    q.add_argument("--rep-samples", type=int, default=300, help="training clips in the representative dataset")
    q.add_argument("--dense-quant", choices=["auto", "per-tensor", "per-channel"], default="auto",
                   help="dense weight granularity; auto picks per-tensor unless per-channel saves more than one test clip")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--no-arena", action="store_true", help="skip the TFLite Micro arena probe")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--verbose", "-v", action="store_true", help="debug logging and full tracebacks")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not args.verbose:  # "Assets written to <tmp>" once per conversion
        logging.getLogger("tensorflow").setLevel(logging.WARNING)
    from convert.cell import UnsupportedModelError
    from train.data import DatasetError

    try:
        report = quantize(model_dir=args.model, out_dir=args.out, c_out=args.c_out or None, data_dir=args.data_dir,
                          qat_epochs=args.qat_epochs, rep_samples=args.rep_samples, seed=args.seed,
                          dense_quant=args.dense_quant, probe_arena=not args.no_arena, progress=not args.no_progress,
                          split=args.split)
    except (ConversionError, UnsupportedModelError, DatasetError, FileNotFoundError, ValueError) as exc:
        if args.verbose:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary_table(report), file=sys.stderr)
    print(json.dumps({k: report[k] for k in ("float_accuracy", "ptq_accuracy", "qat_accuracy", "int8_accuracy", "released",
                                             "tflite_bytes", "weight_bytes", "tflm_arena_bytes", "sha256",
                                             "skipped_files")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
