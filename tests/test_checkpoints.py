import os

import numpy as np
import pytest

from models.layers import Module, variable
from utils.data.reid_data import retrieval_splits
from utils.foundation.checkpoints import load_module, save_module
from utils.foundation.errors import UserError
from utils.orchestration.config import RunConfig
from utils.orchestration.run import resolve
from utils.orchestration.storage import load_config, save_config


class Tiny(Module):
    def __init__(self, n):
        super().__init__()
        self.w = variable(np.arange(n, dtype=np.float32), "w")


def test_weights_round_trip_and_mismatch(tmp_path):
    path = str(tmp_path / "w.npz")
    save_module(path, Tiny(3))
    target = Tiny(3)
    target.w.assign(np.zeros(3, np.float32))
    load_module(path, target)
    np.testing.assert_array_equal(target.w.numpy(), [0, 1, 2])
    with pytest.raises(UserError, match="do not fit the model"):
        load_module(path, Tiny(4))
    with pytest.raises(UserError, match="not found"):
        load_module(str(tmp_path / "missing.npz"), Tiny(3))
    with open(path, "wb") as fh:
        fh.write(b"garbage")
    with pytest.raises(UserError, match="damaged"):
        load_module(path, Tiny(3))
    assert [f for f in os.listdir(tmp_path) if f.startswith(".tmp")] == []


def test_config_errors(tmp_path):
    with pytest.raises(UserError, match="holds no config.json"):
        load_config(str(tmp_path))
    save_config(str(tmp_path), {"dataset": "demo"})
    assert load_config(str(tmp_path)) == {"dataset": "demo"}
    (tmp_path / "config.json").write_text("{broken")
    with pytest.raises(UserError, match="not valid JSON"):
        load_config(str(tmp_path))


def test_retrieval_without_probe_gallery_folders_is_explained(tmp_path, monkeypatch):
    from utils.data.reid_data import write_split
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    for sub, test in (("KGBD_train_npy_data", False), ("KGBD_test_npy_data", True)):
        write_split(os.path.join("Datasets", "KGBD", "4", sub), "KGBD", 4,
                    rng.normal(size=(4, 4, 20, 3)).astype(np.float32), np.array([1, 1, 2, 2]), test)
    cfg = RunConfig(dataset="KGBD", length=4, batch_size=2)
    variant = resolve(cfg).variant
    with pytest.raises(UserError, match="retrieval needs .*probe.*gallery"):
        retrieval_splits(variant.files, variant.layout, variant.retrieval_sets())


def test_ias_retrieval_uses_the_other_split_as_gallery(tmp_path, monkeypatch):
    from tests.helpers import write_ias
    monkeypatch.chdir(tmp_path)
    write_ias("Datasets")
    cfg = RunConfig(dataset="IAS", length=4, split="B")
    variant = resolve(cfg).variant
    probe, gallery = retrieval_splits(variant.files, variant.layout, variant.retrieval_sets())
    b = np.load(os.path.join("Datasets", "IAS", "4", "IAS_test_npy_data", "t_source_x_IAS-B_4.npy"))
    a = np.load(os.path.join("Datasets", "IAS", "4", "IAS_test_npy_data", "t_source_x_IAS-A_4.npy"))
    # sequences are centred on load: compare joint 1 relative to joint 0 of the first frame
    np.testing.assert_allclose(probe.sequences[0, 0, 1, 0], b[0, 1] - b[0, 0], rtol=1e-6)
    np.testing.assert_allclose(gallery.sequences[0, 0, 1, 0], a[0, 1] - a[0, 0], rtol=1e-6)
