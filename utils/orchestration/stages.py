"""The two training stages: self-supervised pre-training (docs/method.md §4) and the Re-ID
classifier with the reference's early stopping (§5). Both checkpoint every epoch when the
run has a folder, and continue a resumed run from its checkpoint (utils/orchestration/resume.py).
"""
import os
import time
from typing import Optional, Tuple

import numpy as np

from models.factory import build_classifier
from utils.data.reid_data import ReIDData, full_batches, reference_epoch_order, stratified_holdout
from utils.foundation.checkpoints import load_module, save_module
from utils.foundation.errors import UserError
from utils.foundation.io import remove_leftovers
from utils.foundation.metrics import roc_nauc
from utils.foundation.progress import progress_bar
from utils.foundation.runtime import generator
from utils.foundation.train_loop import (Call, Checkpoint, PretrainState, ReIDState, StopWhen,
                                         assign, run_epochs)
from utils.orchestration.config import ResolvedConfig
from utils.orchestration.resume import RunFolder, first_difference
from utils.orchestration.storage import ENCODER_FILE, PRETRAIN_KEYS, load_config, save_config


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, int(round(seconds)))} s"
    minutes = int(round(seconds / 60))
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def _order_arrays(batches: list) -> dict:
    """The run's training order, as the checkpoint records it."""
    return dict(order=[np.concatenate(batches)], order_sizes=[np.array([len(b) for b in batches])])


def _values(variables) -> list:
    return [v.numpy() for v in variables]


def training_order(cfg: ResolvedConfig, labels: np.ndarray) -> list:
    """The reference's epoch order, cut into full batches: built once per run (seeded),
    used by pre-training and by the Re-ID stage, every epoch."""
    order = reference_epoch_order(labels, cfg.batch_size, generator(cfg.seed, "training order"))
    return full_batches(order, cfg.batch_size)


def time_left(total: int, state: PretrainState, since: Tuple[int, float]) -> float:
    """Seconds the epochs left should take, at the pace of this process's epochs (since:
    epochs and seconds done when it started). A resumed run's earlier epochs may have run
    on another machine: a GPU's 4 s an epoch against a CPU's 2 minutes."""
    return (total - state.epoch) * (state.seconds - since[1]) / (state.epoch - since[0])


def pretrain(cfg: ResolvedConfig, model, sequences: np.ndarray, batches: list, log=print,
             run_folder: Optional[RunFolder] = None, after_epoch=None):
    """Pre-train `model`; with a run folder, checkpoint after every epoch and continue a
    resumed run's pre-training from its checkpoint. after_epoch(epochs_done), if given, is
    called after every epoch. Returns (loss history, seconds)."""
    from models.training import Pretrainer
    trainer = Pretrainer(model, cfg.pre_lr, cfg.length, cfg.loss, cfg.sample_num,
                         cfg.optimizers, jit=cfg.xla,
                         rng=generator(cfg.seed, "draws"), margin=cfg.pred_margin,
                         ordered=cfg.ord_sample, s_range=cfg.s_range,
                         fresh_draws=cfg.fresh_draws, steps_per_call=cfg.steps_per_call)
    state = PretrainState(draws=trainer.draws, rng=trainer.rng.bit_generator.state)
    saved = run_folder.state if run_folder is not None else None
    if saved is not None and saved.stage == PretrainState.STAGE:
        state = PretrainState.from_checkpoint(saved.info, saved.arrays)
        assign(model.trainable_variables, saved.arrays["encoder"], run_folder.path)
        assign(trainer.optimiser_variables(), saved.arrays["optimisers"], run_folder.path)
        trainer.use_draws(state.draws)
        trainer.rng.bit_generator.state = state.rng
    if not cfg.fresh_draws:
        log("Subsequence draws (fixed for the whole run, as the reference): "
            + " ".join("[" + ",".join(map(str, d)) + "]" for d in trainer.draws))
    total = cfg.pre_epochs
    since = (state.epoch, state.seconds)

    def one_epoch(state: PretrainState) -> None:
        start = time.time()
        sums = dict.fromkeys(model.scales, 0.0)
        bar = lambda items: progress_bar(items, cfg, desc=f"pre-train {state.epoch + 1}/{total}")  # noqa: E731
        for losses in trainer.epoch(sequences, batches, bar):
            for s, v in losses.items():
                sums[s] += v
        means = {s: v / len(batches) for s, v in sums.items()}
        took = time.time() - start
        state.history.append(means)
        state.epoch, state.seconds = state.epoch + 1, state.seconds + took
        state.rng, state.draws = trainer.rng.bit_generator.state, trainer.draws
        losses = " | ".join(f"{s} {means[s]:.5f}" for s in model.scales)
        left = total - state.epoch
        log(f"[{state.epoch}/{total}] pretext loss  {losses}  ({took:.1f}s"
            + (f"; about {_duration(time_left(total, state, since))} left)" if left else ")"))

    hooks = [Call(lambda s: after_epoch(s.epoch))] if after_epoch is not None else []
    if run_folder is not None:
        hooks.append(Checkpoint(run_folder, lambda: dict(
            encoder=_values(model.trainable_variables),
            optimisers=_values(trainer.optimiser_variables()), **_order_arrays(batches))))
    run_epochs(state, total, one_epoch, hooks)
    return state.history, state.seconds


def training_data_digest(sequences: np.ndarray) -> str:
    """A short digest of the pre-training sequences: two datasets of one name and length
    (another split, seed or set of held-out people) never share an encoder unnoticed."""
    import hashlib
    digest = hashlib.sha256(str(sequences.shape).encode())
    digest.update(np.ascontiguousarray(sequences, dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


def save_pretrained(cfg: ResolvedConfig, model, folder: str, data_digest: str) -> None:
    """The encoder, the settings it was pre-trained with and a digest of its training data
    (both checked when it is reloaded). Temporary files of an earlier save of this encoder
    that was killed are removed first."""
    if os.path.isdir(folder):
        remove_leftovers(folder)
    save_module(os.path.join(folder, ENCODER_FILE), model)
    save_config(folder, dict({k: getattr(cfg, k) for k in PRETRAIN_KEYS},
                             training_data=data_digest))


def pretrain_or_load(run, data: ReIDData, model, batches: list, log=print, reference=None,
                     run_folder: Optional[RunFolder] = None):
    """Pre-train `model` and save it in run.pretrained_dir(), or load its saved weights from
    there, or those of the authors' checkpoint `reference` (--encoder_ckpt). With
    --snapshot_epochs, the encoder after each of those epochs is saved where a run with that
    many --pre_epochs would save it: pre-training does not depend on the number of epochs
    still to come, so it is that run's encoder. run: utils/orchestration/run.Run. Returns
    (loss history, seconds)."""
    cfg, folder_for = run.cfg, run.pretrained_dir
    if reference is not None:
        from models.reference_checkpoint import load_reference_encoder
        load_reference_encoder(reference, model)
        log(f"Loaded the authors' pre-trained encoder from {reference.prefix}")
        return [], 0.0
    history, seconds = [], 0.0
    if cfg.pre_train:
        log(f"Self-supervised pre-training: {cfg.pre_epochs} epochs, batch "
            f"{cfg.batch_size}, lr {cfg.pre_lr}"
            + (" (--task none: the encoder stays randomly initialised)" if cfg.task == "none" else ""))
        reference_epochs = run.dataset.setting("pretrain_epochs")
        if cfg.task != "none" and cfg.pre_epochs < reference_epochs:
            log(f"NOTE: {cfg.pre_epochs} pre-training epochs, fewer than the reference's "
                f"{reference_epochs} for {cfg.dataset}: a shortened run")
        digest = training_data_digest(data.train.sequences)

        def snapshot(epochs_done):
            if epochs_done in cfg.snapshot_epochs:
                at = cfg.replace(pre_epochs=epochs_done)
                save_pretrained(at, model, folder_for(at), digest)
                log(f"Encoder after {epochs_done} pre-training epochs saved to {folder_for(at)}")

        saved = run_folder.state if run_folder is not None else None
        done = saved.info["epoch"] if saved is not None else 0
        missed = [e for e in cfg.snapshot_epochs if e <= done and not os.path.isfile(
            os.path.join(folder_for(cfg.replace(pre_epochs=e)), ENCODER_FILE))]
        if missed:
            log(f"NOTE: no snapshot after epoch(s) {', '.join(map(str, missed))}: the resumed "
                f"run had passed them without --snapshot_epochs")
        history, seconds = pretrain(cfg, model, data.train.sequences, batches, log, run_folder, snapshot)
        save_pretrained(cfg, model, folder_for(cfg), digest)
        log(f"Pre-trained encoder saved to {folder_for(cfg)}")
    else:
        folder = folder_for(cfg)
        path = os.path.join(folder, ENCODER_FILE)
        if not os.path.isfile(path):
            raise UserError(f"no pre-trained model at {folder}; run once with --pre_train 1 "
                            f"(and the same dataset, length and architecture flags)")
        # The folder's name does not hold every setting (the layout, data of another joint
        # order under the same name): what the encoder was trained with must match.
        saved = load_config(folder)
        difference = first_difference(saved, {k: getattr(cfg, k) for k in PRETRAIN_KEYS if k in saved})
        if difference:
            key, old, new = difference
            raise UserError(f"the pre-trained encoder in {folder} was trained with {key}={old!r}, "
                            f"this run has {new!r}; pre-train again (--pre_train 1) or run from "
                            f"another folder")
        recorded = saved.get("training_data")   # encoders saved by earlier versions have none
        if recorded is not None and recorded != training_data_digest(data.train.sequences):
            raise UserError(f"the pre-trained encoder in {folder} was trained on other training "
                            f"data than this run's (another split, seed or set of held-out "
                            f"people under the same dataset name); pre-train again "
                            f"(--pre_train 1) or run from another folder")
        load_module(path, model)
        log(f"Loaded pre-trained encoder from {folder}")
    return history, seconds


def reid_progress(acc: float, loss: float, best_acc: float, best_loss: float, epoch: int,
                  min_save_epoch: int = 0):
    """The reference's rule for one Re-ID epoch: (progress, keep). Progress (which resets
    the patience) when the accuracy reaches the best so far or the loss the lowest so far;
    keep the model only when the accuracy beats the best so far (which starts at 0) and the
    0-based epoch is at least min_save_epoch (IAS: 10)."""
    progress = acc >= best_acc or loss <= best_loss
    return progress, progress and acc > best_acc and epoch >= min_save_epoch


def train_classifier(cfg: ResolvedConfig, encoder, train_x, train_y, batches, sel_x, sel_y,
                     num_classes: int, selection_name: str, log=print,
                     run_folder: Optional[RunFolder] = None, pretraining: Optional[dict] = None):
    """Train the Re-ID MLP with the reference's early stopping on (sel_x, sel_y).

    Every epoch walks the same `batches` (the run's training order). An epoch counts as
    progress when the selection accuracy reaches its best so far or the loss its lowest
    so far; the classifier is kept only when the accuracy beats the best seen so far
    (earlier epochs included; the best starts at 0) and, on IAS, the epoch is >= 10 (0-based,
    as the reference counts). Training stops after `patience` epochs without progress.
    With the cache, train_x and sel_x are encodings; without it, raw sequences.
    Returns (trainer, history, kept epoch or None when no epoch was kept, seconds).
    With a run folder, a checkpoint is written after every epoch (`pretraining`: the
    finished pre-training's pretext_history and pretrain_seconds, which it also carries),
    and a resumed run continues from its own.
    """
    from models.training import ReIDTrainer
    classifier = build_classifier(cfg, encoder.model, num_classes)
    trainer = ReIDTrainer(classifier, cfg.reid_lr, encoder)
    raw = not cfg.cache
    state = ReIDState(**(pretraining or {}))
    saved = run_folder.state if run_folder is not None else None
    if saved is not None and saved.stage == ReIDState.STAGE:
        state = ReIDState.from_checkpoint(saved.info, saved.arrays)
        assign(encoder.model.trainable_variables, saved.arrays["encoder"], run_folder.path)
        assign(trainer.state_variables(), saved.arrays["classifier"], run_folder.path)
    max_epochs = cfg.max_reid_epochs or 10 ** 9
    bar = progress_bar(range(state.epoch, max_epochs), cfg, desc="Re-ID epochs")

    def one_epoch(state: ReIDState) -> None:
        start = time.time()
        losses, correct, seen = [], 0, 0
        for idx in batches:
            loss, logits = trainer.train_batch(train_x[idx], train_y[idx], raw=raw)
            losses.append(loss)
            correct += int(np.sum(logits.argmax(1) == train_y[idx]))
            seen += len(idx)
        # Uncached, the reference's way: the frozen encoder runs on the selection set again
        # every epoch. Cached: its encodings were computed once.
        sel_enc = encoder.encode_all(sel_x, cfg.batch_size) if raw else sel_x
        ev = trainer.evaluate(sel_enc, sel_y, cfg.batch_size, cfg.drop_last_test)
        record = dict(epoch=state.epoch + 1, train_loss=float(np.mean(losses)),
                      train_acc=correct / seen, sel_loss=ev["loss"], sel_acc=ev["accuracy"],
                      sel_nauc=roc_nauc(ev["logits"], ev["labels"], num_classes))
        state.history.append(record)
        took = time.time() - start
        state.seconds += took
        log(f"Re-ID epoch {state.epoch + 1}: train loss {record['train_loss']:.4f} Rank-1 "
            f"{record['train_acc']:.4f} | {selection_name} loss {ev['loss']:.4f} Rank-1 "
            f"{ev['accuracy']:.4f} nAUC {record['sel_nauc']:.4f}  ({took:.1f}s)")
        progress, keep = reid_progress(ev["accuracy"], ev["loss"], state.best_acc,
                                       state.best_loss, state.epoch, cfg.min_save_epoch)
        if progress:
            if keep:
                state.best_weights = [np.array(v.numpy()) for v in classifier.trainable_variables]
                state.best_epoch = state.epoch + 1
            state.best_acc = max(state.best_acc, ev["accuracy"])
            state.best_loss = min(state.best_loss, ev["loss"])
            state.waited = 0
        else:
            state.waited += 1
        state.epoch += 1
        bar.update(1)

    hooks = [StopWhen(lambda s: s.waited == cfg.patience, lambda s: log(
        f"Early stop after epoch {s.epoch}: best {selection_name} Rank-1 "
        f"{s.best_acc:.4f}, lowest loss {s.best_loss:.4f}"))]
    if run_folder is not None:
        hooks.append(Checkpoint(run_folder, lambda: dict(
            encoder=_values(encoder.model.trainable_variables),
            classifier=_values(trainer.state_variables()), **_order_arrays(batches))))
    if not run_epochs(state, max_epochs, one_epoch, hooks):
        log(f"NOTE: Re-ID stopped by --max_reid_epochs {max_epochs} before the reference's "
            f"early stopping (patience {cfg.patience}): a shortened run")
    bar.close()
    if state.best_epoch is None:
        log(f"NOTE: no epoch was kept (none beat the best {selection_name} accuracy so far"
            + (f" at epoch {cfg.min_save_epoch + 1} or later" if cfg.min_save_epoch else "")
            + "); the reference would have no model to restore. Reporting the last epoch's classifier.")
    else:
        for v, w in zip(classifier.trainable_variables, state.best_weights):
            v.assign(w)
    return trainer, state.history, state.best_epoch, state.seconds


def train_and_score_classifier(run, encoder, data: ReIDData, batches: list, log=print,
                               run_folder: Optional[RunFolder] = None,
                               pretraining: Optional[dict] = None):
    """The paper's protocol after pre-training: the Re-ID classifier trained on the frozen
    encoder's training encodings with the reference's early stopping, the model chosen on the
    test set (reference) or on a validation split of the training data (--selection val, the
    test set then scored once), then scored by the run's protocol (protocols.Classification).
    encoder: the frozen models/training.Encoder (without the cache it runs inside the
    training step); batches: the run's training order; pretraining: what the finished
    pre-training recorded, carried in the checkpoints."""
    import dataclasses
    cfg = run.cfg
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
        cfg, encoder, train_x, train_y, batches, sel_x, sel_y, data.num_classes,
        cfg.selection, log, run_folder, pretraining)
    if cfg.selection == "val":
        test_enc = encoder.encode_all(data.test.sequences, bs)
    else:
        test_enc = sel_x if cfg.cache else encoder.encode_all(sel_x, bs)
    result = run.protocol.with_classifier(trainer.classifier).score(
        test_enc, data.test_labels, data.num_classes)
    return dataclasses.replace(result, reid_history=history, best_epoch=best_epoch,
                               reid_seconds=reid_seconds)
