"""Conversion side: int8 quantization, TFLite Micro checks, C generation.

Importing the package selects Keras 2 (tf-keras) for TensorFlow, which
tensorflow-model-optimization needs; see train/__init__.py.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow's C++ start-up lines (no CUDA driver, cuInit, the tf.data NodeDef notice) are noise on a
# CPU machine; real failures still raise Python exceptions. Set TF_CPP_MIN_LOG_LEVEL to see them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# TensorFlow 2.21 logs its start-up lines through absl before they can be silenced: train/quiet.py
# drops them (SD_TF_LOGS=1 shows them).
from train import quiet as _quiet  # noqa: E402

_quiet.install()
