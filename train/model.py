"""The model: an unrolled 16-step LSTM over log-mel frames, then dense layers.

Trained with a free batch dimension; exported with a fixed batch of 1,
because with a free batch the LSTM's zero initial state becomes a FILL with a
dynamic shape that TFLite Micro cannot allocate (DESIGN.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import train  # noqa: F401  (selects Keras 2 before TensorFlow loads)


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Architecture hyper-parameters."""

    lstm_units: int = 128
    """Width of the LSTM state."""
    dense_units: int = 100
    """Width of the hidden dense layer after the last LSTM step (0 = none)."""
    n_classes: int = 10
    """Number of output classes (digits)."""
    dropout: float = 0.0
    """Dropout on the LSTM's inputs, training only (the exported model computes the same without it)."""


def build_model(n_frames: int, n_mels: int, mcfg: ModelConfig = ModelConfig(), *, batch_size: int | None = None):
    """Keras model: Input(n_frames, n_mels) -> LSTM(unroll=True) -> Dense(relu) -> Dense(softmax)."""
    import tf_keras as keras

    inp = keras.Input((n_frames, n_mels), batch_size=batch_size, name="logmel")
    x = keras.layers.LSTM(mcfg.lstm_units, unroll=True, dropout=mcfg.dropout, name="lstm")(inp)
    if mcfg.dense_units:
        x = keras.layers.Dense(mcfg.dense_units, activation="relu", name="dense")(x)
    out = keras.layers.Dense(mcfg.n_classes, activation="softmax", name="logits")(x)
    return keras.Model(inp, out, name="digit_lstm")


def model_config_of(model) -> ModelConfig:
    lstm = model.get_layer("lstm")
    try:
        dense_units = model.get_layer("dense").units
    except ValueError:
        dense_units = 0
    return ModelConfig(lstm_units=lstm.units, dense_units=dense_units, n_classes=model.get_layer("logits").units,
                       dropout=float(lstm.dropout))


def export_batch1(model):
    """Same weights, fixed batch of 1 (what the converter needs)."""
    shape = model.input_shape
    m = build_model(shape[1], shape[2], model_config_of(model), batch_size=1)
    m.set_weights(model.get_weights())
    return m


def load_model(path):
    """Loads a saved Keras model, naming the file on failure."""
    from pathlib import Path

    import tf_keras as keras

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: model file not found; train one with `python -m train --out DIR`")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a bad file
        raise ValueError(f"{path}: not a loadable Keras model ({type(exc).__name__}: {exc})") from exc
