"""Each classic preprocessing mistake, reproduced, and caught with a message that explains it."""

from __future__ import annotations

import numpy as np
import pytest

from train import data as fsdd
from train import features as F
from train import sanity
from train.sanity import DataCheckError

CFG = F.FrontendConfig()


@pytest.fixture(scope="module")
def real_logmel(fsdd_dir):
    ds = fsdd.load_dataset(fsdd_dir)
    clips = ds.clips[:: max(1, len(ds) // 200)]
    return F.batch_logmel([c.samples for c in clips], CFG), np.array([c.digit for c in clips]), [c.path.name for c in clips]


def test_good_features_pass(real_logmel):
    x, y, names = real_logmel
    sanity.check_features(x, n_frames=16, n_mels=80, normalized=False)
    cfg = F.fit_normalization(x, CFG)
    sanity.check_features(F.normalize(x, cfg), n_frames=16, n_mels=80, normalized=True)
    sanity.check_labels(y, names)


def test_nan_features(real_logmel):
    x = real_logmel[0].copy()
    x[3, 2, 1] = np.nan
    with pytest.raises(DataCheckError, match="NaN/inf.*first: \\[3\\]"):
        sanity.check_features(x, n_frames=16, n_mels=80, normalized=False)


def test_log_of_zero_without_floor():
    with np.errstate(divide="ignore"):
        x = np.log(np.zeros((4, 16, 80), np.float32))  # -inf everywhere
    with pytest.raises(DataCheckError, match="NaN/inf"):
        sanity.check_features(x, n_frames=16, n_mels=80, normalized=False)


def test_constant_features():
    with pytest.raises(DataCheckError, match="constant"):
        sanity.check_features(np.full((8, 16, 80), -13.8, np.float32), n_frames=16, n_mels=80, normalized=False)


def test_raw_power_instead_of_log(real_logmel):
    power = np.exp(real_logmel[0])  # undo the log: what forgetting it looks like
    with pytest.raises(DataCheckError, match="raw mel power"):
        sanity.check_features(power, n_frames=16, n_mels=80, normalized=False)


def test_axes_swapped(real_logmel):
    with pytest.raises(DataCheckError, match="axes swapped.*transpose"):
        sanity.check_features(real_logmel[0].transpose(0, 2, 1), n_frames=16, n_mels=80, normalized=False)


def test_not_normalized(real_logmel):
    with pytest.raises(DataCheckError, match="not standardized"):
        sanity.check_features(real_logmel[0], n_frames=16, n_mels=80, normalized=True)


def test_labels_shuffled_apart_from_files(real_logmel):
    _, y, names = real_logmel
    rng = np.random.default_rng(0)
    with pytest.raises(DataCheckError, match="do not match the digit in the file name"):
        sanity.check_labels(rng.permutation(y), names)


def test_label_out_of_range_and_missing_class(real_logmel):
    _, y, _ = real_logmel
    with pytest.raises(DataCheckError, match="outside 0..9"):
        sanity.check_labels(np.where(y == 0, 10, y))
    with pytest.raises(DataCheckError, match=r"classes \[3\] have no examples"):
        sanity.check_labels(y[y != 3])


def test_class_imbalance_warns(real_logmel):
    _, y, _ = real_logmel
    skewed = np.concatenate([y, np.full(len(y), 7)])
    rep = sanity.check_labels(skewed)
    assert any("imbalance" in w for w in rep.warnings)


def test_training_at_chance_stops_with_causes(fsdd_dir):
    """Labels decoupled from features (shuffled separately): training must stop and say why."""
    from train.model import ModelConfig
    from train.trainer import TrainConfig, fit

    ds = fsdd.load_dataset(fsdd_dir)
    clips = ds.clips[:: max(1, len(ds) // 300)]
    x = F.batch_logmel([c.samples for c in clips], CFG)
    x = F.normalize(x, F.fit_normalization(x, CFG))
    y = np.random.default_rng(0).permutation(np.array([c.digit for c in clips]))
    idx = np.arange(len(y))
    with pytest.raises(DataCheckError) as info:
        fit(x, y, idx, idx[:30], mcfg=ModelConfig(lstm_units=32, dense_units=16),
            tcfg=TrainConfig(epochs=10, chance_epochs=3, chance_margin=0.2), progress=False)
    msg = str(info.value)
    assert "at chance" in msg and "shuffled or sorted separately" in msg and "axes swapped" in msg
