"""Evaluation protocols, each returning a typed result: classification (the paper's: the
Re-ID classifier trained and scored on the test sequences), retrieval (probe/gallery
matching of frozen encodings) and scoring a saved classifier (ours or the authors').

Classification training and scoring a saved classifier share one scoring path
(`score`); what reaches metrics.json and the summary is derived from the result types.
"""
import dataclasses
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from models.training import ReIDTrainer, sequence_encoding
from utils.config import RunConfig
from utils.data import ReIDData, retrieval_splits, stratified_holdout
from utils.datasets import Variant
from utils.metrics import (cmc_and_map_features, cmc_nauc, confusion, rank_n_from_scores,
                           roc_nauc)
from utils.runtime import generator
from utils.stages import progress_bar, train_classifier, training_order

NOT_SAVED = dict(saved=False)   # field metadata: kept in memory, not in metrics.json


@dataclass
class Result:
    """What every run records beside its protocol's metrics."""
    rank1: float
    rank5: float
    rank10: float
    pretext_history: List[dict] = field(default_factory=list)
    pretrain_seconds: Optional[float] = None
    parameters: Optional[int] = None
    steps_per_epoch: Optional[int] = None    # batches in one epoch of the training order
    resumed: Optional[List[dict]] = None
    backend: Optional[str] = None            # the engine, its version and the device
    run_dir: Optional[str] = field(default=None, metadata=NOT_SAVED)

    def metrics(self) -> dict:
        """metrics.json: every field but those marked not saved; unset (None) ones only where
        None means something (best_epoch: no epoch was kept)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.metadata.get("saved", True)
                and (getattr(self, f.name) is not None or f.metadata.get("keep_none"))}


@dataclass
class ClassificationResult(Result):
    nauc: float = 0.0
    loss: float = 0.0
    scored: int = 0
    total: int = 0
    confusion: Optional[np.ndarray] = None
    selection_set: str = "test"
    best_epoch: Optional[int] = field(default=None, metadata=dict(keep_none=True))
    reid_history: Optional[List[dict]] = None
    reid_seconds: Optional[float] = None
    classifier: object = field(default=None, metadata=NOT_SAVED)

    def summary(self) -> List[str]:
        lines = [f"Test ({self.scored} of {self.total} sequences scored): "
                 f"Rank-1 {100 * self.rank1:.2f}  Rank-5 {100 * self.rank5:.2f}  "
                 f"Rank-10 {100 * self.rank10:.2f}  nAUC {100 * self.nauc:.2f}  loss {self.loss:.4f}"]
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
    mAP: float = 0.0
    nauc_cmc: float = 0.0
    cmc: Optional[np.ndarray] = None
    queries: int = 0
    skipped_queries: int = 0
    gallery_size: int = 0
    cmc_title: str = field(default="CMC", metadata=NOT_SAVED)

    def summary(self) -> List[str]:
        return [f"Retrieval ({self.queries} probes, gallery {self.gallery_size}): "
                f"Rank-1 {100 * self.rank1:.2f}  Rank-5 {100 * self.rank5:.2f}  "
                f"Rank-10 {100 * self.rank10:.2f}  mAP {100 * self.mAP:.2f}  "
                f"nAUC(CMC) {100 * self.nauc_cmc:.2f}"]


def print_summary(result: Result, log=print) -> None:
    log("=" * 72)
    for line in result.summary():
        log(line)


def score(trainer: ReIDTrainer, enc: np.ndarray, labels: np.ndarray, num_classes: int,
          cfg: RunConfig, selection_set: str) -> ClassificationResult:
    """The classifier's test metrics on encodings (the one scoring path)."""
    ev = trainer.evaluate(enc, labels, cfg.batch_size, cfg.drop_last_test)
    ranks = rank_n_from_scores(ev["logits"], ev["labels"], (1, 5, 10))
    return ClassificationResult(
        rank1=ev["accuracy"], rank5=ranks[5], rank10=ranks[10], loss=ev["loss"],
        nauc=roc_nauc(ev["logits"], ev["labels"], num_classes), scored=int(len(ev["labels"])),
        total=int(len(labels)), confusion=confusion(ev["logits"].argmax(1), ev["labels"], num_classes),
        selection_set=selection_set, classifier=trainer.classifier)


def classification(cfg: RunConfig, data: ReIDData, encoder, batches: list, log=print,
                   run=None, pretraining: Optional[dict] = None) -> ClassificationResult:
    """Train the Re-ID classifier and score it. batches: the run's training order (the one
    pre-training used); with --selection val the order is rebuilt, the same way, on the
    training sequences that remain."""
    bs = cfg.batch_size
    train_x, train_y = data.train.sequences, data.train_labels
    if cfg.selection == "val":
        tr, va = stratified_holdout(train_y, cfg.val_fraction, generator(cfg.seed, "holdout"))
        sel_x, sel_y = train_x[va], train_y[va]
        train_x, train_y = train_x[tr], train_y[tr]
        batches = training_order(cfg, train_y)
        log(f"Model selection on a validation split of the training data ({len(va)} "
            f"sequences); the test set is scored once, at the end.")
    else:
        # Test labels are only read here, in the reference's test-set selection mode.
        sel_x, sel_y = data.test.sequences, data.test_labels
        log("NOTE: model selection uses the TEST set (reference behaviour, --selection test); "
            "use --selection val for a clean estimate.")
    if cfg.cache:
        log("Encoding sequences once with the frozen encoder ...")
        train_x = encoder.encode_all(train_x, bs, lambda it: progress_bar(it, cfg, desc="encode train"))
        sel_x = encoder.encode_all(sel_x, bs, lambda it: progress_bar(it, cfg, desc="encode selection"))
    trainer, history, best_epoch, reid_seconds = train_classifier(
        cfg, encoder, train_x, train_y, batches, sel_x, sel_y, data.num_classes, cfg.selection,
        log, run, pretraining)
    if cfg.selection == "val":
        test_enc = encoder.encode_all(data.test.sequences, bs)
    else:
        test_enc = sel_x if cfg.cache else encoder.encode_all(sel_x, bs)
    result = score(trainer, test_enc, data.test_labels, data.num_classes, cfg, cfg.selection)
    return dataclasses.replace(result, reid_history=history, best_epoch=best_epoch,
                               reid_seconds=reid_seconds)


def score_saved_classifier(cfg: RunConfig, encoder, classifier, data: ReIDData,
                           log=print) -> ClassificationResult:
    """evaluate.py: a trained classifier (ours or the authors') on the test sequences,
    with the confusion matrix printed."""
    enc = encoder.encode_all(data.test.sequences, cfg.batch_size,
                             lambda it: progress_bar(it, cfg, desc="encode test"))
    result = score(ReIDTrainer(classifier, cfg.reid_lr), enc, data.test_labels,
                   data.num_classes, cfg, cfg.selection)
    np.set_printoptions(linewidth=200, threshold=100000)
    log("Confusion matrix (rows: true identity, columns: predicted):")
    log(str(result.confusion))
    return result


def retrieval(cfg: RunConfig, variant: Variant, encoder, log=print) -> RetrievalResult:
    """Probe/gallery matching of the mean prefix encodings (no classifier)."""
    probe, gallery = retrieval_splits(variant.files, variant.layout, variant.retrieval_sets())
    bs = cfg.batch_size
    q = sequence_encoding(encoder.encode_all(
        probe.sequences, bs, lambda it: progress_bar(it, cfg, desc="encode probe")))
    g = sequence_encoding(encoder.encode_all(
        gallery.sequences, bs, lambda it: progress_bar(it, cfg, desc="encode gallery")))
    cmc, mean_ap, valid, skipped = cmc_and_map_features(q, g, probe.person_ids, gallery.person_ids)
    if skipped:
        log(f"{skipped} probe sequences have no true match in the gallery and are skipped")
    pick = lambda n: float(cmc[min(n, len(cmc)) - 1])   # noqa: E731
    return RetrievalResult(rank1=pick(1), rank5=pick(5), rank10=pick(10), mAP=mean_ap,
                           nauc_cmc=cmc_nauc(cmc), cmc=cmc, queries=valid,
                           skipped_queries=skipped, gallery_size=int(len(gallery.person_ids)),
                           cmc_title=f"CMC, {variant.run_tag} f={cfg.length}")
