"""Protocols are objects with one interface, run(encode, data) -> a typed result: the
bone-length baseline runs through them with its own encode function, a new protocol is one
class, and the printed summary and metrics.json follow from the result's fields."""
import dataclasses
import os
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pytest

from tools.bone_baseline import main as bone_baseline, mean_bone_lengths
from utils.data.reid_data import ReIDData, load_variant
from utils.orchestration.config import RunConfig
from utils.orchestration.run import resolve
from tests.helpers import ROOT, source_files
from utils.foundation.errors import UserError
from utils.foundation.metrics import DISTANCES, cmc_and_map_features
from utils.orchestration.protocols import (PROTOCOLS, ClassificationResult, NearestNeighbour,
                                           Protocol, Result, Retrieval, scores_result, shown)


@pytest.fixture
def demo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    variant = resolve(RunConfig(length=4)).variant
    return variant, load_variant(variant)


def bones(variant):
    return lambda sequences: mean_bone_lengths(sequences, variant.layout.bones)


def test_nearest_neighbour_is_the_one_nearest_training_window_of_each_identity(demo):
    variant, data = demo
    result = NearestNeighbour().run(bones(variant), data)
    test, train = bones(variant)(data.test.sequences), bones(variant)(data.train.sequences)
    # written out the slow way: the identity of the single nearest training window
    nearest = [data.train_labels[np.argmin(np.linalg.norm(train - t, axis=1))] for t in test]
    assert result.rank1 == pytest.approx(np.mean(np.array(nearest) == data.test_labels))
    assert result.scored == result.total == len(data.test_labels)
    assert result.rank1 <= result.rank5 <= result.rank10 <= 1 and 0.5 < result.nauc <= 1


def test_retrieval_distance_is_chosen_by_name():
    """The named distance reaches the ranking: each result equals the CMC and mAP of that
    distance's matrix computed independently (scipy), on features with no near ties."""
    from types import SimpleNamespace
    from scipy.spatial.distance import cdist
    from utils.foundation.metrics import cmc_and_map
    rng = np.random.default_rng(1)
    ids = np.repeat(np.arange(6), 3)
    probe = SimpleNamespace(sequences=rng.normal(size=(18, 5)) + ids[:, None], person_ids=ids)
    gallery = SimpleNamespace(sequences=rng.normal(size=(18, 5)) * 3 + ids[:, None], person_ids=ids)
    results = {}
    for name, scipy_name in (("euclidean", "euclidean"), ("cosine", "cosine")):
        results[name] = Retrieval(name).run(lambda x: x, (probe, gallery))
        cmc, mean_ap, _, _ = cmc_and_map(cdist(probe.sequences, gallery.sequences, scipy_name),
                                         ids, ids)
        np.testing.assert_allclose(results[name].cmc, cmc)
        assert results[name].mAP == pytest.approx(mean_ap) and results[name].distance == name
    assert results["euclidean"].mAP != pytest.approx(results["cosine"].mAP)
    assert set(DISTANCES) == set(RunConfig.__dataclass_fields__["distance"].metadata["choices"])
    with pytest.raises(UserError, match="unknown distance 'manhattan'; choose one of euclidean, cosine"):
        Retrieval("manhattan").run(lambda x: x, (probe, gallery))


def test_bone_baseline_prints_the_protocol_s_own_summary(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert bone_baseline(["--length", "4"]) == 0
    out = capsys.readouterr().out
    variant = resolve(RunConfig(length=4)).variant
    expected = NearestNeighbour().run(bones(variant), load_variant(variant))
    assert expected.summary()[0] in out
    assert bone_baseline(["--length", "4", "--protocol", "retrieval", "--distance", "cosine"]) == 0
    assert "Retrieval (" in capsys.readouterr().out


@dataclass
class CentroidResult(ClassificationResult):
    """A result type with one more metric: it reaches both outputs by being a field."""
    spread: float = field(default=0.0, metadata=shown("spread", percent=False))


class Centroid(Protocol):
    """A new protocol is one class: classify by the nearest identity mean."""

    def run(self, encode, data: ReIDData, log=print) -> CentroidResult:
        train, test = encode(data.train.sequences), encode(data.test.sequences)
        means = np.stack([train[data.train_labels == c].mean(0) for c in range(data.num_classes)])
        scores = -np.linalg.norm(test[:, None] - means[None], axis=-1)
        result = scores_result(scores, data.test_labels, data.num_classes)
        return CentroidResult(**{f.name: getattr(result, f.name)
                                 for f in dataclasses.fields(result)},
                              spread=float(np.mean(np.std(train, axis=0))))


def test_a_new_protocol_is_one_class_and_its_fields_reach_summary_and_metrics(demo):
    variant, data = demo
    result = Centroid().run(bones(variant), data)
    assert 0 < result.rank1 <= 1
    (line,) = [l for l in result.summary() if l.startswith("Test (")]
    assert f"Rank-1 {100 * result.rank1:.2f}" in line and f"spread {result.spread:.4f}" in line
    assert "loss" not in line                 # unset shown fields are left out
    metrics = result.metrics()
    assert metrics["spread"] == result.spread and "classifier" not in metrics
    assert "selection_set" not in metrics     # no model was selected


def test_scoring_a_classifier_needs_no_optimiser():
    from models.sm_sge import ReIDClassifier
    from models.training import ClassifierScorer, ReIDTrainer
    from utils.orchestration.protocols import Classification
    rng = np.random.default_rng(0)
    classifier = ReIDClassifier(16, 5)
    enc = rng.normal(size=(23, 3, 16)).astype(np.float32)
    labels = rng.integers(0, 5, 23)
    scorer = ClassifierScorer(classifier)
    assert not hasattr(scorer, "opt")
    got = scorer.evaluate(enc, labels, 8, drop_last=False)
    want = ReIDTrainer(classifier, 0.001).evaluate(enc, labels, 8, drop_last=False)
    assert got["accuracy"] == want["accuracy"] and got["loss"] == pytest.approx(want["loss"])
    result = Classification(8, drop_last=True).with_classifier(classifier).score(enc, labels, 5)
    assert (result.scored, result.total) == (16, 23)    # the reference's full batches only
    options = np.get_printoptions()
    assert result.confusion.sum() == 16 and np.get_printoptions() == options


def test_no_module_sets_numpy_print_options_for_the_process():
    sources = source_files("utils", "models", "tools")
    assert "utils/orchestration/protocols.py" in sources
    for path in sources:
        with open(os.path.join(ROOT, path)) as fh:
            assert "set_printoptions" not in fh.read(), path


# ----------------------------------------------------------------------------------------
# A protocol a run trains and scores with: one class and its registration, nothing else


@dataclass
class MAPResult(Result):
    """Retrieval reported by mAP alone: no ranks."""
    mAP: float = field(default=0.0, metadata=shown("mAP"))
    queries: int = 0

    def headline(self) -> str:
        return f"mAP-only retrieval ({self.queries} probes)"


@dataclass
class CosineMAP(Retrieval):
    """Probe/gallery retrieval by cosine distance, reported and ranked by mAP only."""
    distance: str = "cosine"
    name: ClassVar[str] = "cosine_map"
    ranked_by: ClassVar[str] = "mAP"

    @classmethod
    def configured(cls, cfg, variant):
        return cls()

    def run(self, encode, data, log=print) -> MAPResult:
        probe, gallery = data
        _, mean_ap, valid, _ = cmc_and_map_features(
            encode(probe.sequences), encode(gallery.sequences), probe.person_ids,
            gallery.person_ids, distance=self.distance)
        return MAPResult(mAP=mean_ap, queries=valid)


@pytest.mark.slow
def test_a_registered_protocol_trains_scores_and_is_found_end_to_end(tmp_path, monkeypatch):
    import json
    from evaluate import main as evaluate_main
    from utils.orchestration import pipeline
    from utils.orchestration.cli import training_options, training_parser
    from tests.helpers import small_demo
    monkeypatch.setitem(PROTOCOLS, CosineMAP.name, CosineMAP)
    monkeypatch.chdir(small_demo(tmp_path))
    # the flag takes it like a built-in protocol
    opts = training_options(training_parser().parse_args(
        ["--protocol", "cosine_map", "--length", "4", "--batch_size", "128", "--pre_epochs",
         "1", "--xla", "0", "--no_progress"]))
    lines = []
    result = pipeline.run_training(opts, log=lines.append)
    assert isinstance(result, MAPResult) and 0 < result.mAP <= 1 and result.queries > 0
    assert "mAP-only retrieval (" in "\n".join(lines)
    (folder,) = (tmp_path / "RN" / "demo" / "4").iterdir()
    assert folder.name.endswith("_cosine_map_seed0")
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["mAP"] == result.mAP and "rank1" not in metrics
    assert not (folder / "classifier.npz").exists()          # it trains no classifier
    # evaluate.py finds the best run of this protocol by its own metric, and scores it again
    assert evaluate_main(["--protocol", "cosine_map", "--length", "4", "--no_progress"]) == 0
    with pytest.raises(UserError, match="unknown --protocol 'nearest'; choose one of "
                                        "classification, retrieval, cosine_map"):
        training_options(training_parser().parse_args(["--protocol", "nearest"]))


def test_an_unregistered_protocol_is_one_line():
    with pytest.raises(UserError, match="unknown --protocol 'cosine_map'; choose one of classification, retrieval"):
        resolve(RunConfig(length=4, protocol="cosine_map"), build=False)


def test_no_module_below_the_entry_scripts_asks_which_protocol_it_is():
    """Protocol rules live in the protocol classes (utils/orchestration/protocols.py): elsewhere
    no code compares a protocol's name with a registered one's. The preparation tool's
    protocols (which walks go to training, test, probe and gallery) are the data's own."""
    sources = source_files("utils", "models")
    found = []
    for path in sources:
        if path in ("utils/orchestration/protocols.py", "utils/data/prepare_dataset.py"):
            continue
        with open(os.path.join(ROOT, path)) as fh:
            for number, line in enumerate(fh, 1):
                for name in PROTOCOLS:
                    if any(f'{op} "{name}"' in line for op in ("==", "!=", "in (")) or \
                            f'["{name}"]' in line:
                        found.append(f"{path}:{number}: {line.strip()}")
    assert found == []
