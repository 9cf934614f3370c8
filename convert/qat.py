"""Quantization-aware fine-tuning of the explicit LSTM cell with tfmot.

Every layer of `convert.cell.explicit_model` is quantizable by tfmot's
default 8-bit scheme except Multiply, which gets `MultiplyQuantizeConfig`:
no weights, one moving-average 8-bit quantizer on its output (what the int8
MUL kernel produces).
"""

from __future__ import annotations

import numpy as np

import convert  # noqa: F401  (Keras 2 switch)


def _config_class():
    import tensorflow_model_optimization as tfmot

    quantizers = tfmot.quantization.keras.quantizers

    class MultiplyQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
        """Output-only 8-bit quantization for keras.layers.Multiply."""

        def get_weights_and_quantizers(self, layer):
            return []

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            pass

        def set_quantize_activations(self, layer, quantize_activations):
            pass

        def get_output_quantizers(self, layer):
            return [quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False, narrow_range=False)]

        def get_config(self):
            return {}

    return MultiplyQuantizeConfig


def quantize_model(cell_model):
    """The explicit cell model with fake-quantization inserted (tfmot quantize_apply)."""
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    qk = tfmot.quantization.keras
    cfg_cls = _config_class()

    def annotate(layer):
        if isinstance(layer, keras.layers.Multiply):
            return qk.quantize_annotate_layer(layer, cfg_cls())
        if isinstance(layer, keras.layers.InputLayer):
            return layer
        return qk.quantize_annotate_layer(layer)

    annotated = keras.models.clone_model(cell_model, clone_function=annotate)
    with qk.quantize_scope({"MultiplyQuantizeConfig": cfg_cls}):
        return qk.quantize_apply(annotated)


def fine_tune(cell_model, x_fit, y_fit, x_val, y_val, *, epochs: int = 6, learning_rate: float = 1e-4,
              batch_size: int = 32, seed: int = 0, progress: bool = True):
    """QAT fine-tuning; returns (qat_model, history). Training uses a free batch;
    the caller copies the weights into a batch-1 clone for conversion."""
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    qat = quantize_model(cell_model)
    qat.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history: dict = {}

    class Record(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            if progress:
                from tqdm import tqdm

                self.bar = tqdm(total=epochs, desc="QAT fine-tune", unit="epoch", leave=False)

        def on_epoch_end(self, epoch, logs=None):
            for k, v in (logs or {}).items():
                history.setdefault(k, []).append(float(v))
            if progress:
                self.bar.set_postfix(acc=f"{logs.get('accuracy', 0):.3f}", val_acc=f"{logs.get('val_accuracy', 0):.3f}")
                self.bar.update(1)

        def on_train_end(self, logs=None):
            if progress:
                self.bar.close()

    qat.fit(
        x_fit, y_fit, validation_data=(x_val, y_val), epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0,
        callbacks=[Record(), keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=3, restore_best_weights=True)],
    )
    return qat, history


def batch1_copy(qat_model, cell_model_batch1):
    """QAT model with a fixed batch of 1 and the fine-tuned weights (what the converter needs)."""
    q1 = quantize_model(cell_model_batch1)
    q1.set_weights(qat_model.get_weights())
    return q1


def accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(model.predict(x, batch_size=128, verbose=0).argmax(axis=1) == y))
