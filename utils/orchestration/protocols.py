"""Evaluation protocols: objects with one interface, each returning a typed result.

    protocol.run(encode, data, log) -> Result

`encode` turns sequences [N, f, V, 3] into features; `data` is what the protocol scores.
- `Retrieval(distance)`: probe/gallery matching of one vector per sequence (CMC, mAP);
  data = (probe Split, gallery Split).
- `NearestNeighbour(distance)`: classification by each identity's nearest training
  sequence (no training); data = ReIDData. The bone-length baseline uses it.
- `Classification(batch_size, ...)`: classification by a trained Re-ID classifier, scored
  with no optimiser (evaluate.py, and the end of training); encode gives prefix encodings.

A protocol a run is trained and scored with (--protocol NAME) is registered in PROTOCOLS
and also says which data it scores (`data`), how the encoder feeds it (`encoding`), whether
the run trains a Re-ID classifier for it (the training stays in utils/orchestration/stages.py)
and what its runs are named and ranked by. A new one is one class and its registration;
what reaches metrics.json and the printed summary is derived from the result types' fields.
"""
import dataclasses
from dataclasses import dataclass, field
from typing import Callable, ClassVar, List, Optional, Tuple

import numpy as np

from utils.data.reid_data import ReIDData, Split, load_variant, retrieval_splits
from utils.foundation.metrics import (cmc_and_map_features, cmc_nauc, confusion, distance_named,
                           rank_n_from_scores, roc_nauc)
from utils.foundation.errors import UserError
from utils.orchestration.config import ResolvedConfig

NOT_SAVED = dict(saved=False)   # field metadata: kept in memory, not in metrics.json


def shown(label: str, percent: bool = True, **meta) -> dict:
    """Field metadata: the field is printed in the summary line as `label value`."""
    return dict(label=label, percent=percent, **meta)


@dataclass
class Result:
    """What every run records beside its protocol's metrics."""
    rank1: Optional[float] = field(default=None, metadata=shown("Rank-1"))
    rank5: Optional[float] = field(default=None, metadata=shown("Rank-5"))
    rank10: Optional[float] = field(default=None, metadata=shown("Rank-10"))
    pretext_history: List[dict] = field(default_factory=list)
    pretrain_seconds: Optional[float] = None
    parameters: Optional[int] = None
    steps_per_epoch: Optional[int] = None    # batches in one epoch of the training order
    resumed: Optional[List[dict]] = None
    # the engine, its version and the device; "backend" in metrics.json, as runs have it
    device: Optional[str] = field(default=None, metadata=dict(key="backend"))
    # every process that worked on the run: when, from which stage and epoch, on which engine
    parts: Optional[List[dict]] = None
    # evaluate.py --allow_seen_walks: which scored walks the encoder was pre-trained on
    seen_walks: Optional[str] = None
    run_dir: Optional[str] = field(default=None, metadata=NOT_SAVED)

    def metrics(self) -> dict:
        """metrics.json: every field but those marked not saved; unset (None) ones only where
        None means something (best_epoch: no epoch was kept)."""
        return {f.metadata.get("key", f.name): getattr(self, f.name) for f in dataclasses.fields(self)
                if f.metadata.get("saved", True)
                and (getattr(self, f.name) is not None or f.metadata.get("keep_none"))}

    def headline(self) -> str:
        return "Result"

    def notes(self) -> List[str]:
        return []

    def summary(self) -> List[str]:
        """The headline and every shown field that is set, then the type's notes."""
        values = []
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if "label" in f.metadata and v is not None:
                values.append(f"{f.metadata['label']} " + (f"{100 * v:.2f}" if f.metadata["percent"]
                                                           else f"{v:.4f}"))
        marked = [f"(not a clean result: {self.seen_walks})"] if self.seen_walks else []
        return [f"{self.headline()}: " + "  ".join(values)] + self.notes() + marked


@dataclass
class ClassificationResult(Result):
    nauc: float = field(default=0.0, metadata=shown("nAUC"))
    loss: Optional[float] = field(default=None, metadata=shown("loss", percent=False))
    scored: int = 0
    total: int = 0
    confusion: Optional[np.ndarray] = None
    selection_set: Optional[str] = None      # where the Re-ID model was chosen: test or val
    best_epoch: Optional[int] = field(default=None, metadata=dict(keep_none=True))
    reid_history: Optional[List[dict]] = None
    reid_seconds: Optional[float] = None
    classifier: object = field(default=None, metadata=NOT_SAVED)

    def headline(self) -> str:
        return f"Test ({self.scored} of {self.total} sequences scored)"

    def notes(self) -> List[str]:
        lines = []
        if self.reid_history is not None:
            epochs = len(self.reid_history)
            lines.append(f"Re-ID model of epoch {self.best_epoch} of {epochs} (chosen on the "
                         f"{self.selection_set} set)" if self.best_epoch else
                         f"No Re-ID epoch was kept; the last of {epochs} epochs is reported")
        if self.selection_set == "test":
            lines.append("(model chosen on the test set, as in the reference: an optimistic estimate)")
        return lines


@dataclass
class RetrievalResult(Result):
    mAP: float = field(default=0.0, metadata=shown("mAP"))
    nauc_cmc: float = field(default=0.0, metadata=shown("nAUC(CMC)"))
    cmc: Optional[np.ndarray] = None
    queries: int = 0
    skipped_queries: int = 0
    gallery_size: int = 0
    distance: str = "euclidean"
    cmc_title: str = field(default="CMC", metadata=NOT_SAVED)

    def headline(self) -> str:
        return f"Retrieval ({self.queries} probes, gallery {self.gallery_size})"


def metric_label(name: str) -> str:
    """How the summary labels a metrics.json field ("rank1" -> "Rank-1"), for any result type."""
    types, seen = [Result], []
    while types:
        cls = types.pop()
        seen.append(cls)
        types += cls.__subclasses__()
    for cls in seen:
        for f in dataclasses.fields(cls):
            if f.name == name and "label" in f.metadata:
                return f.metadata["label"]
    return name


def print_summary(result: Result, log=print) -> None:
    log("=" * 72)
    for line in result.summary():
        log(line)


Encode = Callable[[np.ndarray], np.ndarray]


class Protocol:
    """One evaluation protocol: run(encode, data, log) -> a Result. The class attributes and
    the methods below run() matter only for a protocol registered in PROTOCOLS."""
    name: ClassVar[str] = ""
    # the prepared protocol whose walks it reads (a prepared dataset's manifest key, and its
    # <f>/<name>/ folder where that protocol's training walks differ)
    prepared_as: ClassVar[str] = "classification"
    scored_roles: ClassVar[Tuple[str, ...]] = ("test",)   # the manifest roles of the walks it scores
    trains_classifier: ClassVar[bool] = False   # the run trains a Re-ID classifier to score with
    ranked_by: ClassVar[str] = "rank1"          # the metric that picks the best run (--model_dir best)

    def run(self, encode: Encode, data, log=print) -> Result:
        raise NotImplementedError

    @classmethod
    def configured(cls, cfg: ResolvedConfig, variant) -> "Protocol":
        """The protocol as a run's settings make it."""
        raise NotImplementedError

    def data(self, variant):
        """What run() scores, read from the variant's files."""
        raise NotImplementedError

    def encoding(self, encoder, batch_size: int, progress=None) -> Encode:
        """sequences -> what run() takes, from the run's encoder (models/training.Encoder)."""
        raise NotImplementedError

    def run_name(self) -> str:
        """The part of a run folder's name (RN/...) that names the protocol."""
        return f"_{self.name}"

    def made(self, saved: dict) -> bool:
        """Whether a run folder's config.json was trained for this protocol."""
        return saved.get("protocol", "classification") == self.name


@dataclass
class Retrieval(Protocol):
    """Every probe sequence ranks the gallery by the named distance between one feature
    vector per sequence (encode: sequences -> [N, D]). data: (probe, gallery) Splits."""
    distance: str = "euclidean"
    title: str = "CMC"
    name: ClassVar[str] = "retrieval"
    prepared_as: ClassVar[str] = "retrieval"
    scored_roles: ClassVar[Tuple[str, ...]] = ("probe", "gallery")

    @classmethod
    def configured(cls, cfg, variant):
        return cls(cfg.distance, f"CMC, {variant.run_tag} f={cfg.length}")

    def data(self, variant) -> Tuple[Split, Split]:
        return retrieval_splits(variant.files, variant.layout, variant.retrieval_sets())

    def encoding(self, encoder, batch_size, progress=None):
        """One vector per sequence: the mean of its prefix encodings."""
        from models.training import sequence_encoding
        return lambda x: sequence_encoding(encoder.encode_all(x, batch_size, progress))

    def run(self, encode: Encode, data: Tuple[Split, Split], log=print) -> RetrievalResult:
        probe, gallery = data
        cmc, mean_ap, valid, skipped = cmc_and_map_features(
            encode(probe.sequences), encode(gallery.sequences), probe.person_ids,
            gallery.person_ids, distance=self.distance)
        if skipped:
            log(f"{skipped} probe sequences have no true match in the gallery and are skipped")
        pick = lambda n: float(cmc[min(n, len(cmc)) - 1])   # noqa: E731
        return RetrievalResult(rank1=pick(1), rank5=pick(5), rank10=pick(10), mAP=mean_ap,
                               nauc_cmc=cmc_nauc(cmc), cmc=cmc, queries=valid,
                               skipped_queries=skipped, gallery_size=int(len(gallery.person_ids)),
                               distance=self.distance, cmc_title=self.title)


@dataclass
class NearestNeighbour(Protocol):
    """Classification with no training: a test sequence's score for an identity is minus
    the distance to that identity's nearest training sequence (Rank-1: 1-NN). encode:
    sequences -> [N, D]; data: ReIDData."""
    distance: str = "euclidean"
    chunk: int = 512

    def run(self, encode: Encode, data: ReIDData, log=print) -> ClassificationResult:
        measure = distance_named(self.distance)
        test, train = encode(data.test.sequences), encode(data.train.sequences)
        scores = np.empty((len(test), data.num_classes))
        for s in range(0, len(test), self.chunk):
            d = measure(test[s:s + self.chunk], train)
            for c in range(data.num_classes):
                scores[s:s + self.chunk, c] = -d[:, data.train_labels == c].min(axis=1)
        return scores_result(scores, data.test_labels, data.num_classes)


def scores_result(scores: np.ndarray, labels: np.ndarray, num_classes: int,
                  accuracy: Optional[float] = None, **fields) -> ClassificationResult:
    """Classification metrics from per-class scores of every scored test sequence; Rank-1
    is `accuracy` where the protocol defines it otherwise (the reference's batch mean)."""
    ranks = rank_n_from_scores(scores, labels, (1, 5, 10))
    fields.setdefault("scored", int(len(labels)))
    fields.setdefault("total", int(len(labels)))
    return ClassificationResult(
        rank1=ranks[1] if accuracy is None else accuracy, rank5=ranks[5], rank10=ranks[10],
        nauc=roc_nauc(scores, labels, num_classes),
        confusion=confusion(scores.argmax(1), labels, num_classes), **fields)


@dataclass
class Classification(Protocol):
    """The paper's protocol: classification by a trained Re-ID classifier (ours or the
    authors'), scored with no optimiser: the logits of a sequence's prefixes summed
    (docs/method.md §5). encode: sequences -> prefix encodings [N, K, E]; data: ReIDData.
    The run trains the classifier first (utils/orchestration/stages.py) and scores with it
    (with_classifier)."""
    batch_size: int
    drop_last: bool = True            # the reference scores full batches only
    selection_set: Optional[str] = None
    classifier: object = None
    name: ClassVar[str] = "classification"
    trains_classifier: ClassVar[bool] = True

    @classmethod
    def configured(cls, cfg, variant):
        return cls(cfg.batch_size, cfg.drop_last_test, cfg.selection)

    def with_classifier(self, classifier) -> "Classification":
        return dataclasses.replace(self, classifier=classifier)

    def data(self, variant) -> ReIDData:
        return load_variant(variant)

    def encoding(self, encoder, batch_size, progress=None):
        return lambda x: encoder.encode_all(x, batch_size, progress)

    def run_name(self) -> str:
        return f"_{self.name}_sel-{self.selection_set}"

    def run(self, encode: Encode, data: ReIDData, log=print) -> ClassificationResult:
        return self.score(encode(data.test.sequences), data.test_labels, data.num_classes)

    def score(self, encodings: np.ndarray, labels: np.ndarray, num_classes: int
              ) -> ClassificationResult:
        """The one scoring path, on encodings already made (the training stage's cache)."""
        from models.training import ClassifierScorer
        ev = ClassifierScorer(self.classifier).evaluate(encodings, labels, self.batch_size,
                                                        self.drop_last)
        # Rank-1 is the reference's accuracy: the mean of per-batch accuracies
        return scores_result(ev["logits"], ev["labels"], num_classes, accuracy=ev["accuracy"],
                             loss=ev["loss"], total=int(len(labels)),
                             selection_set=self.selection_set, classifier=self.classifier)


# The protocols a run can be trained and scored with, by --protocol name.
PROTOCOLS = {p.name: p for p in (Classification, Retrieval)}


def protocol_named(name: str) -> type:
    """The registered protocol class --protocol names."""
    if name not in PROTOCOLS:
        raise UserError(f"unknown --protocol '{name}'; choose one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]
