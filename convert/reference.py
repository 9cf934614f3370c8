"""The Python reference every later part is checked against.

audio (int16) -> reference front end (librosa) -> int8 input tensor ->
TFLite Micro interpreter -> int8 output -> label. TFLite Micro, not
tf.lite/LiteRT, is the int8 reference: the two round some int8 kernels
differently (DESIGN.md; convert.quantize measures it for each model).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

import convert  # noqa: F401
from train import features as F
from train.labels import Labels


@dataclass
class ReferenceResult:
    features: np.ndarray  # int8 [shape=(n, n_frames, n_mels)]
    outputs: np.ndarray  # int8 [shape=(n, n_classes)]
    labels: np.ndarray  # int64 [shape=(n,)], argmax of outputs (first max on a tie)


class Reference:
    """A released int8 model and its front-end config, ready to run clips.

    Parameters
    ----------
    tflite : path or bytes of the int8 model
    cfg : the front-end config the model was trained with (frontend.json)
    """

    def __init__(self, tflite, cfg: F.FrontendConfig, labels: Labels | None = None):
        from convert.tflite_info import inspect

        self.model_bytes = Path(tflite).read_bytes() if not isinstance(tflite, (bytes, bytearray)) else bytes(tflite)
        self.cfg = cfg
        info = inspect(self.model_bytes)
        self.input_shape = info.input_shape
        self.output_shape = info.output_shape
        self.input_scale, self.input_zero_point = info.input_quant
        self.output_scale, self.output_zero_point = info.output_quant
        self._mel = F.mel_filterbank(cfg)
        self._interp = None
        if labels is None:  # unnamed (e.g. convert.quantize's checks): FSDD's digits, or the output numbers
            labels = Labels() if self.n_outputs == 10 else Labels(tuple(f"output{i}" for i in range(self.n_outputs)))
        self.labels = labels
        self.labels.check_outputs(self.n_outputs, "the int8 model")

    @classmethod
    def from_dir(cls, model_dir: str | Path, tflite_name: str = "model_int8.tflite") -> "Reference":
        model_dir = Path(model_dir)
        path = model_dir / tflite_name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no int8 model; run `python -m convert.quantize --model {model_dir}`")
        try:
            return cls(path, F.FrontendConfig.load(model_dir / "frontend.json"), Labels.load(model_dir))
        except ValueError as exc:
            raise ValueError(f"{model_dir}: {exc}") from exc

    @property
    def n_outputs(self) -> int:
        """Outputs of the int8 model (one per label)."""
        return int(np.prod(self.output_shape))

    @property
    def sha256(self) -> str:
        import hashlib

        return hashlib.sha256(self.model_bytes).hexdigest()

    # -- front end -----------------------------------------------------------
    def logmel(self, samples: np.ndarray) -> np.ndarray:
        return F.clip_logmel(samples, self.cfg, self._mel)

    def features(self, samples: np.ndarray) -> np.ndarray:
        """int8 input tensor [shape=(n_frames, n_mels)] for one clip of int16 samples."""
        return F.quantize_logmel(self.logmel(samples), self.cfg, self.input_scale, self.input_zero_point)

    # -- model -----------------------------------------------------------------
    def _interpreter(self):
        if self._interp is None:
            from tflite_micro.python.tflite_micro import runtime

            self._interp = runtime.Interpreter.from_bytes(self.model_bytes, arena_size=4 * 1024 * 1024)
        return self._interp

    def infer(self, features: np.ndarray) -> np.ndarray:
        """int8 outputs [shape=(n, n_classes)] for int8 inputs [shape=(n, n_frames, n_mels)] (or one input)."""
        x = np.asarray(features, np.int8)
        single = x.ndim == 2
        x = x[None] if single else x
        interp = self._interpreter()
        outs = []
        for k in range(len(x)):
            interp.set_input(np.ascontiguousarray(x[k].reshape(self.input_shape)), 0)
            interp.invoke()
            outs.append(np.array(interp.get_output(0), copy=True).reshape(-1))
        y = np.stack(outs) if outs else np.zeros((0, self.n_outputs), np.int8)
        return y[0] if single else y

    def dequantize(self, outputs: np.ndarray) -> np.ndarray:
        return (np.asarray(outputs, np.float32) - self.output_zero_point) * np.float32(self.output_scale)

    def run(self, clips) -> ReferenceResult:
        """Front end + model over many clips of int16 samples."""
        feats = np.stack([self.features(c) for c in clips]) if len(clips) else np.zeros((0, self.cfg.n_frames, self.cfg.n_mels), np.int8)
        outs = self.infer(feats) if len(feats) else np.zeros((0, self.n_outputs), np.int8)
        return ReferenceResult(feats, outs, outs.argmax(axis=1) if len(outs) else np.zeros(0, np.int64))
