"""The trained Keras LSTM written out as layers that tfmot can quantize.

tensorflow-model-optimization cannot quantize `keras.layers.LSTM`. The same
computation, unrolled over the 16 steps, is expressed here with layers it
can: per gate g in (i, f, c, o) one Dense over the input frame (kernel and
bias) and one Dense over the previous state (no bias), each *shared* by all
steps, then Add, Activation and Multiply, also one layer each shared by all
steps:

    i = sigmoid(Wi x + Ui h + bi)   f = sigmoid(Wf x + Uf h + bf)
    g = tanh(Wc x + Uc h + bc)      o = sigmoid(Wo x + Uo h + bo)
    c' = f * c + i * g              h' = o * tanh(c')

Separate Dense layers per gate give every gate its own quantization scale.
Step 0 starts from h = c = 0, so its recurrent terms and forget gate are left
out instead of multiplying constant zeros (which is also where the converter
used to leave a float island, DESIGN.md). The weights are copied from the
trained model, and `check_equivalent` proves the two compute the same thing.
"""

from __future__ import annotations

import numpy as np

import convert  # noqa: F401  (Keras 2 switch)

GATES = ("i", "f", "c", "o")  # Keras LSTM's kernel column order


class UnsupportedModelError(ValueError):
    """A model the conversion pipeline cannot handle; the message names the layer."""


def describe_layers(model) -> str:
    return ", ".join(f"{l.name} ({type(l).__name__})" for l in model.layers)


def check_supported(model) -> None:
    """Accepts Input -> LSTM(unroll=True) -> [Dense(relu)] -> Dense(softmax) only, naming what else it finds."""
    import tf_keras as keras

    allowed = (keras.layers.InputLayer, keras.layers.LSTM, keras.layers.Dense)
    for layer in model.layers:
        if not isinstance(layer, allowed):
            raise UnsupportedModelError(
                f"layer {layer.name!r} ({type(layer).__name__}) is not supported; the pipeline converts "
                f"Input -> LSTM(unroll=True) -> Dense -> Dense(softmax). Model layers: {describe_layers(model)}"
            )
        if isinstance(layer, keras.layers.LSTM):
            cfg = layer.get_config()
            if not cfg.get("unroll"):
                raise UnsupportedModelError(f"layer {layer.name!r}: LSTM with unroll=False; retrain with LSTM(..., unroll=True)")
            if cfg.get("return_sequences") or cfg.get("go_backwards") or cfg.get("stateful"):
                raise UnsupportedModelError(f"layer {layer.name!r}: return_sequences/go_backwards/stateful LSTMs are not supported")
            if cfg.get("activation") != "tanh" or cfg.get("recurrent_activation") != "sigmoid":
                raise UnsupportedModelError(f"layer {layer.name!r}: only tanh/sigmoid LSTM activations are supported")
    lstms = [l for l in model.layers if isinstance(l, keras.layers.LSTM)]
    if len(lstms) != 1:
        raise UnsupportedModelError(f"expected exactly one LSTM layer, found {len(lstms)}: {describe_layers(model)}")
    last = model.layers[-1]
    if not isinstance(last, keras.layers.Dense) or last.get_config().get("activation") != "softmax":
        raise UnsupportedModelError(f"last layer {last.name!r} must be Dense(activation='softmax')")


def explicit_model(model, *, batch_size: int | None = 1):
    """Functional model of shared Dense/Add/Activation/Multiply layers with the weights of `model`."""
    import tf_keras as keras
    from tf_keras import layers as L

    check_supported(model)
    lstm = next(l for l in model.layers if isinstance(l, keras.layers.LSTM))
    dense_layers = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
    kernel, recurrent, bias = lstm.get_weights()
    units = lstm.units
    n_steps, n_feat = model.input_shape[1], model.input_shape[2]
    sl = {g: slice(k * units, (k + 1) * units) for k, g in enumerate(GATES)}
    act = {"i": "sigmoid", "f": "sigmoid", "c": "tanh", "o": "sigmoid"}

    dx = {g: L.Dense(units, name=f"lstm_x_{g}") for g in GATES}
    dh = {g: L.Dense(units, use_bias=False, name=f"lstm_h_{g}") for g in GATES}
    # One layer per role, called at every step: under QAT each role then has
    # one output quantizer, so all steps share their int8 scales. The firmware
    # needs one activation table per role instead of one per step.
    pre = {g: L.Add(name=f"pre_{g}") for g in GATES}
    gate_act = {g: L.Activation(act[g], name=f"act_{g}") for g in GATES}
    mul_ig, mul_fc, mul_h = L.Multiply(name="mul_ig"), L.Multiply(name="mul_fc"), L.Multiply(name="mul_h")
    add_cell, tanh_c = L.Add(name="add_cell"), L.Activation("tanh", name="tanh_c")
    inp = keras.Input((n_steps, n_feat), batch_size=batch_size, name="logmel")
    h = c = None
    for t in range(n_steps):
        xt = L.Reshape((n_feat,), name=f"x{t}")(L.Cropping1D((t, n_steps - 1 - t), name=f"step{t}")(inp))
        gate = {}
        for g in GATES:
            if g == "f" and c is None:
                continue  # forget gate times a zero state
            z = dx[g](xt)
            if h is not None:
                z = pre[g]([z, dh[g](h)])
            gate[g] = gate_act[g](z)
        ig = mul_ig([gate["i"], gate["c"]])
        c = ig if c is None else add_cell([mul_fc([gate["f"], c]), ig])
        h = mul_h([gate["o"], tanh_c(c)])
    x = h
    for k, d in enumerate(dense_layers):
        cfg = d.get_config()
        if k == len(dense_layers) - 1:
            x = L.Dense(cfg["units"], name=cfg["name"])(x)
            x = L.Activation("softmax", name="softmax")(x)
        else:
            x = L.Dense(cfg["units"], activation=cfg["activation"], name=cfg["name"])(x)
    out = keras.Model(inp, x, name="digit_lstm_cell")
    for g in GATES:
        out.get_layer(f"lstm_x_{g}").set_weights([kernel[:, sl[g]], bias[sl[g]]])
        out.get_layer(f"lstm_h_{g}").set_weights([recurrent[:, sl[g]]])
    for d in dense_layers:
        out.get_layer(d.name).set_weights(d.get_weights())
    return out


def check_equivalent(model, cell_model, x: np.ndarray, *, atol: float = 1e-4) -> float:
    """Largest |difference| of the two models' softmax outputs on x; raises if above atol."""
    a = model.predict(x, batch_size=64, verbose=0)
    b = np.concatenate([cell_model.predict(x[i : i + 1], verbose=0) for i in range(len(x))]) if cell_model.input_shape[0] == 1 else cell_model.predict(x, verbose=0)
    diff = float(np.max(np.abs(a - b)))
    if diff > atol:
        raise AssertionError(f"explicit LSTM cell differs from the Keras LSTM by {diff:.3g} (> {atol}); weight mapping is wrong")
    return diff
