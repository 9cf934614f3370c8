"""Training side of the spoken-digit toolkit: FSDD loading, the reference
log-mel front end and the unrolled LSTM.

tensorflow-model-optimization needs Keras 2 (tf-keras). TensorFlow picks its
Keras at import time, so the switch is set here, before anything imports it;
users never have to set it themselves.
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
