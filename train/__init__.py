"""Training side of the spoken-digit toolkit: FSDD loading, the reference
log-mel front end and the unrolled LSTM.

tensorflow-model-optimization needs Keras 2 (tf-keras). TensorFlow picks its
Keras at import time, so the switch is set here, before anything imports it;
users never have to set it themselves.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
