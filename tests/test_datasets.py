"""A dataset with quirks of its own is one definition (utils/data/datasets.py): registered, it runs
through the whole pipeline with its rules applied and no other module edited."""
import dataclasses
import os
import shutil
from dataclasses import dataclass
from typing import ClassVar, Optional, Tuple

import numpy as np
import pytest

from utils.data.datasets import REGISTRY, Dataset, DataLocation, get_dataset, released_folders
from utils.orchestration.run import resolve
from tests.helpers import ROOT, source_files
from utils.foundation.errors import UserError


@dataclass(frozen=True)
class HeldOutHalves(Dataset):
    """A toy dataset with quirks of its own: its test windows live in <f>/holdout/<half>/,
    not in the released test folder, and --split picks the half (its own selector, with its
    own values); retrieval matches the chosen half's windows against the other half's (its
    own rule); its Re-ID models may be kept only from the third epoch on; both halves share
    one pre-trained encoder."""
    halves: Tuple[str, ...] = ("first", "second")
    split: Optional[str] = None
    SELECTORS: ClassVar[Tuple[str, ...]] = ("split",)

    def check_selection(self):
        if self.split not in self.halves:
            raise UserError(f"{self.name} needs --split first or --split second")

    def locate(self, length, root="Datasets", prepared_as=None):
        loc = Dataset.locate(self, length, root, prepared_as)
        holdout = os.path.join(root, self.name, str(length), "holdout", self.split)
        return DataLocation(loc.dataset, length, loc.train_dir, holdout, loc.train_tag,
                            loc.test_tag, f"{self.name}-{self.split}", loc.source)

    def pretraining_tag(self, loc):
        return "toy-shared"

    def retrieval_sets(self, loc, root):
        other = next(h for h in self.halves if h != self.split)
        gallery = dataclasses.replace(self, split=other).locate(loc.length, root)
        return (loc.test_dir, loc.test_tag), (gallery.test_dir, gallery.test_tag)


def build_toy(name, length, root):
    """The built-in demo's people under the toy's name; each person's test windows cut into
    two halves, written to holdout/first/ and holdout/second/."""
    from utils.data.demo import write_demo
    from utils.data.reid_data import read_split, write_split
    base = os.path.join(root, name, str(length))
    if os.path.isdir(os.path.join(base, "holdout")):
        return
    write_demo(name, length, root)
    test_dir = released_folders(base, name)[1]
    test = read_split(test_dir, name, length, 25, True, name)   # centring again later is a no-op
    halves = {"first": [], "second": []}
    for person in np.unique(test.person_ids):
        mine = np.flatnonzero(test.person_ids == person)
        halves["first"] += mine[: len(mine) // 2].tolist()
        halves["second"] += mine[len(mine) // 2:].tolist()
    for half, rows in halves.items():
        write_split(os.path.join(base, "holdout", half), name, length,
                    test.sequences[rows], test.person_ids[rows], True)
    shutil.rmtree(test_dir)


TOY = HeldOutHalves(name="toy", layout="kinect_v2", batch_size=128, lstm_size=64,
                    pretrain_lr=0.0005, pretrain_epochs=1, reid_lr=0.0025,
                    source="the toy of tests/test_datasets.py", min_save_epoch=2,
                    build="tests.test_datasets:build_toy")


@pytest.fixture
def toy(monkeypatch, tmp_path):
    monkeypatch.setitem(REGISTRY, TOY.name, TOY)   # what a newcomer's definition does
    monkeypatch.chdir(tmp_path)
    return TOY


@pytest.mark.slow
def test_a_registered_dataset_runs_with_its_settings_row_selector_and_rules(toy):
    from utils.orchestration import pipeline
    from utils.orchestration.cli import training_options, training_parser
    # its own selector through the ordinary flag
    opts = training_options(training_parser().parse_args(
        ["--dataset", "toy", "--split", "first", "--length", "4", "--max_reid_epochs", "4",
         "--patience", "10", "--xla", "0", "--no_progress"]))
    run = resolve(opts)
    cfg, variant = run.cfg, run.variant
    assert (cfg.batch_size, cfg.lstm_size, cfg.pre_epochs, cfg.min_save_epoch) == (128, 64, 1, 2)
    lines = []
    result = pipeline.run_training(opts, log=lines.append)
    assert variant.files.test_dir == os.path.join("Datasets", "toy", "4", "holdout", "first")
    assert not os.path.exists(released_folders(os.path.join("Datasets", "toy", "4"), "toy")[1])
    assert result.run_dir.startswith(os.path.join("RN", "toy-first", "4"))
    # its rules: the shared pre-training folder, and no model kept before the third epoch
    assert os.path.isfile(os.path.join(run.pretrained_dir(), "encoder.npz"))
    assert run.pretrained_dir().startswith(os.path.join("Pre-Trained", "toy-shared", "4"))
    assert result.best_epoch is None or result.best_epoch >= 3
    assert len(result.reid_history) == 4
    from utils.data.reid_data import load_variant
    first = load_variant(variant).test_labels
    assert result.total == len(first) > 0
    assert any(line.startswith("Dataset toy-first, f=4") for line in lines)
    # its retrieval rule: the other half is the gallery; the other half's variant reuses
    # the encoder the first one pre-trained
    lines = []
    second = pipeline.run_training(opts.replace(split="second", protocol="retrieval",
                                                pre_train=False), log=lines.append)
    assert any(line.startswith("Loaded pre-trained encoder from " + run.pretrained_dir())
               for line in lines)
    assert second.gallery_size == len(first) and 0 < second.queries
    assert second.run_dir.startswith(os.path.join("RN", "toy-second", "4"))


def test_each_dataset_takes_its_own_selectors_and_values(toy):
    with pytest.raises(UserError, match="--split applies to IAS and toy only, not to KS20; drop it"):
        get_dataset("KS20").select(split="A")
    with pytest.raises(UserError, match="toy needs --split first or --split second"):
        get_dataset("toy").select(split="A")
    with pytest.raises(UserError, match=r"IAS needs --split A or --split B \(got 'first'\)"):
        get_dataset("IAS").select(split="first")
    with pytest.raises(UserError, match="--view applies to CASIA_B only, not to toy"):
        get_dataset("toy").select(view=3)
    with pytest.raises(UserError, match="--probe_type applies to CASIA_B only, not to toy"):
        get_dataset("toy").select(probe_type="nm.nm")
    assert get_dataset("toy").select(split="second").locate(4, "D").test_dir == \
        os.path.join("D", "toy", "4", "holdout", "second")


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
