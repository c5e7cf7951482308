"""A dataset with quirks of its own is one definition (utils/data/datasets.py): registered, it runs
through the whole pipeline with its rules applied and no other module edited."""
import os
import shutil

import pytest

from utils.data.datasets import REGISTRY, Dataset, DataLocation, get_dataset, released_folders
from utils.orchestration.config import RunConfig, resolve
from tests.helpers import ROOT, source_files
from utils.foundation.errors import UserError


class HeldOutFolder(Dataset):
    """A toy dataset whose test windows live in <f>/holdout/ rather than in the released
    test folder, whose Re-ID models may be kept only from the third epoch on, and whose
    encoder is shared with any other variant of the same name."""

    def locate(self, length, split=None, view=None, probe_type=None, root="Datasets",
               protocol="classification"):
        loc = Dataset.locate(self, length, split, view, probe_type, root, protocol)
        holdout = os.path.join(root, self.name, str(length), "holdout")
        return DataLocation(loc.dataset, length, loc.train_dir, holdout, loc.train_tag,
                            loc.test_tag, loc.run_tag)

    def pretraining_tag(self, loc):
        return "toy-shared"


def build_toy(name, length, root):
    """The built-in demo's people under the toy's name, its test folder moved to holdout/."""
    from utils.data.demo import write_demo
    base = os.path.join(root, name, str(length))
    if not os.path.isdir(os.path.join(base, "holdout")):
        write_demo(name, length, root)
        shutil.move(released_folders(base, name)[1], os.path.join(base, "holdout"))


TOY = HeldOutFolder(name="toy", layout="kinect_v2", batch_size=128, lstm_size=64,
                    pretrain_lr=0.0005, pretrain_epochs=1, reid_lr=0.0025,
                    source="the toy of tests/test_datasets.py", min_save_epoch=2,
                    build="tests.test_datasets:build_toy")


@pytest.fixture
def toy(monkeypatch, tmp_path):
    monkeypatch.setitem(REGISTRY, TOY.name, TOY)   # what a newcomer's definition does
    monkeypatch.chdir(tmp_path)
    return TOY


@pytest.mark.slow
def test_a_registered_dataset_runs_with_its_settings_row_and_its_quirks(toy):
    from utils.orchestration import pipeline
    from utils.orchestration.storage import pretrained_dir, variant_of
    opts = RunConfig(dataset="toy", length=4, progress=False, gpu=-1, save_flag=True,
                     max_reid_epochs=4, patience=10, selection="test", xla=False)
    cfg = resolve(opts)
    assert (cfg.batch_size, cfg.lstm_size, cfg.pre_epochs, cfg.min_save_epoch) == (128, 64, 1, 2)
    lines = []
    result = pipeline.run_training(opts, log=lines.append)
    variant = variant_of(cfg)
    assert variant.files.test_dir == os.path.join("Datasets", "toy", "4", "holdout")
    assert not os.path.exists(released_folders(os.path.join("Datasets", "toy", "4"), "toy")[1])
    # its rules: the shared pre-training folder, and no model kept before the third epoch
    assert os.path.isfile(os.path.join(pretrained_dir(cfg, variant), "encoder.npz"))
    assert pretrained_dir(cfg, variant).startswith(os.path.join("Pre-Trained", "toy-shared", "4"))
    assert result.best_epoch is None or result.best_epoch >= 3
    assert len(result.reid_history) == 4
    from utils.data.reid_data import load_reid_data
    assert result.total == len(load_reid_data(variant.files, variant.layout).test_labels) > 0
    assert any(line.startswith("Dataset toy, f=4") for line in lines)


def test_the_generic_rules_refuse_flags_of_other_datasets(toy):
    with pytest.raises(UserError, match="--split applies to IAS only, not to toy"):
        get_dataset("toy").locate(4, split="A")
    with pytest.raises(UserError, match="--view and --probe_type apply to CASIA_B only"):
        get_dataset("toy").locate(4, view=3)


def test_no_module_outside_the_dataset_definitions_asks_which_dataset_it_is():
    """Dataset quirks live in utils/data/datasets.py: elsewhere no code compares a dataset's
    name with a registered one's."""
    names = [n for n in REGISTRY if n != "toy"]
    sources = source_files("utils", "models", "tools")
    assert "utils/data/reid_data.py" in sources       # the walk reaches the sub-packages
    found = []
    for path in sources:
        if path == "utils/data/datasets.py":
            continue
        with open(os.path.join(ROOT, path)) as fh:
            for number, line in enumerate(fh, 1):
                for ds in names:
                    if any(f'{op} "{ds}"' in line for op in ("==", "!=", "in (")):
                        found.append(f"{path}:{number}: {line.strip()}")
    assert found == []
