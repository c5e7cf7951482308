"""The two scripts' work: SM-SGE.py (run_training) and evaluate.py (run_evaluation).

Stages: data -> self-supervised pre-training or reload (utils/orchestration/stages.py) -> frozen
encodings -> the Re-ID classifier with early stopping, or probe/gallery matching
(utils/orchestration/protocols.py) -> metrics, plots and weights in the run's folder (utils/orchestration/storage.py).
"""
import contextlib
import os
from typing import Optional, Union

import numpy as np

from models.engine import device_description, seed_everything
from models.factory import build_classifier, build_encoder, build_model, count_parameters
from utils.data.datasets import walks_by_role
from utils.data.reid_data import load_reid_data, retrieval_splits, window_fingerprints
from utils.foundation.checkpoints import load_module, save_module
from utils.foundation.errors import UserError, interrupt_behind
from utils.foundation.io import atomic_save_json, atomic_save_npy
from utils.foundation.progress import progress_bar
from utils.foundation.train_loop import ReIDState, assign
from utils.orchestration.config import ResolvedConfig, RunConfig, fields_affecting, resolve
from utils.orchestration.protocols import (Result, TrainedClassifier, classifier_protocol,
                                           print_summary, retrieval_protocol)
from utils.orchestration.resume import (Budget, RunFolder, TimeBudgetReached, load_state,
                                        remove_dead_runs)
from utils.orchestration.stages import pretrain_or_load, training_order
from utils.orchestration.storage import (CLASSIFIER_FILE, CONFIG_FILE, ENCODER_FILE, METRICS_FILE,
                                         RESUME_FILE, TRAINING_WINDOWS_FILE, find_best_run,
                                         load_run_config, new_run_name, pretrained_dir,
                                         runs_parent, variant_of)


class Stopped:
    """run_training's answer when --time_budget stopped the run (its folder can resume)."""

    def __init__(self, run_dir: str):
        self.run_dir = run_dir


def open_run(cfg: RunConfig, parent: str, log=print, engine: Optional[str] = None) -> Optional[RunFolder]:
    """The run's folder: a new one, or with --resume the unfinished one to continue. Folders
    of runs that died before their first checkpoint are removed first, with a word."""
    budget = Budget(cfg.time_budget)
    if not cfg.save_flag:
        if cfg.resume or cfg.time_budget is not None:
            raise UserError("--resume and --time_budget need the run folder: drop --save_flag 0")
        return None
    for folder in remove_dead_runs(parent):
        log(f"Removed {folder}: a run that ended before its first checkpoint (nothing to resume)")
    if cfg.resume:
        run = RunFolder.reopen(cfg.resume, parent, cfg.saved(), budget, engine)
        stage = "pre-training" if run.state.stage == "pretrain" else "Re-ID"
        log(f"Resuming {run.path} at {run.resumed[-1]['at']}: {run.state.info['epoch']} "
            f"{stage} epochs were done")
        return run
    return RunFolder.start(parent, new_run_name(cfg), cfg.saved(), budget, engine)


def save_run(result: Result, model, run: RunFolder, log=print,
             training_windows: Optional[np.ndarray] = None) -> str:
    """Write the finished run's files into its folder, each atomically, metrics.json last
    (a folder without it is unfinished), then drop the resume checkpoint. training_windows:
    the windows the encoder (and classifier) trained on, kept as fingerprints so that
    identify.py can tell a recording the run has seen."""
    from utils.foundation.plots import save_run_plots
    save_module(os.path.join(run.path, ENCODER_FILE), model)
    if training_windows is not None:
        atomic_save_npy(os.path.join(run.path, TRAINING_WINDOWS_FILE),
                        np.unique(window_fingerprints(training_windows)))
    if getattr(result, "classifier", None) is not None:
        save_module(os.path.join(run.path, CLASSIFIER_FILE), result.classifier)
    save_run_plots(run.path, vars(result))
    atomic_save_json(os.path.join(run.path, METRICS_FILE), result.metrics())
    run.finish()
    log(f"Run saved to {run.path} (config, weights, metrics.json, plots)")
    return run.path


def log_model_size(cfg: ResolvedConfig, model, num_classes: int, log=print) -> None:
    encoder_params = count_parameters(model)
    if cfg.protocol == "retrieval":
        log(f"Model size: {encoder_params / 1e6:.2f} M parameters (encoder only; the paper "
            f"reports 5.58 M with the Re-ID classifier)")
        return
    emb = model.embedding_size
    head = emb * emb + emb + emb * num_classes + num_classes
    log(f"Model size: {(encoder_params + head) / 1e6:.2f} M parameters (encoder "
        f"{encoder_params / 1e6:.2f} M + Re-ID classifier {head / 1e6:.2f} M; the paper "
        f"reports 5.58 M)")


def run_training(cfg: RunConfig, log=print) -> Union[Result, Stopped]:
    """The full pipeline of SM-SGE.py; returns the result (also used by tests)."""
    cfg = resolve(cfg)
    reference = None
    if cfg.encoder_ckpt:
        from models.reference_checkpoint import ReferenceCheckpoint, adopt_checkpoint_sizes
        reference = ReferenceCheckpoint(cfg.encoder_ckpt)
        cfg, _ = adopt_checkpoint_sizes(cfg, reference)
    variant = variant_of(cfg)
    data = load_reid_data(variant.files, variant.layout)
    log(f"Dataset {variant.run_tag}, f={cfg.length}: {len(data.train_labels)} training and "
        f"{len(data.test_labels)} test sequences of {data.num_classes} identities, "
        f"{cfg.num_joints} joints ({variant.layout.name} layout)")
    seed_everything(cfg.seed)
    device = device_description()
    log(f"Engine: {device}; seed {cfg.seed}")
    model = build_model(cfg)
    log_model_size(cfg, model, data.num_classes, log)
    run = open_run(cfg, runs_parent(cfg, variant), log, device)
    with run.in_use() if run is not None else contextlib.nullcontext():
        try:
            return _train(cfg, variant, data, model, run, reference, device, log)
        except (KeyboardInterrupt, Exception) as caught:   # SIGINT, or SIGTERM (errors.guarded)
            stop = interrupt_behind(caught)
            if stop is None:
                raise
            # the entry script's message names the command that continues the run
            stop.run_dir = run.path if run is not None and run.has_checkpoint() else None
            raise


def _train(cfg: ResolvedConfig, variant, data, model, run: Optional[RunFolder], reference,
           device: str, log) -> Union[Result, Stopped]:
    """Pre-training (or its reload) and the Re-ID stage, then the run's files."""
    state = run.state if run is not None else None
    batches = training_order(cfg, data.train_labels)
    try:
        if state is not None and state.stage == ReIDState.STAGE:   # pre-training was finished
            assign(model.trainable_variables, state.arrays["encoder"], run.path)
            done = ReIDState.from_checkpoint(state.info, state.arrays)
            pre_history, pretrain_seconds = done.pretext_history, done.pretrain_seconds
        else:
            pre_history, pretrain_seconds = pretrain_or_load(
                cfg, data, model, batches, lambda c: pretrained_dir(c, variant), log, reference, run)
        encoder = build_encoder(cfg, model)
        if cfg.protocol == "retrieval":
            result = run_retrieval(cfg, variant, encoder, log)
            result.parameters = count_parameters(model)
        else:
            result = TrainedClassifier(cfg, batches, run, dict(
                pretext_history=pre_history, pretrain_seconds=pretrain_seconds)).run(encoder, data, log)
            result.parameters = count_parameters(model, result.classifier)
    except TimeBudgetReached:
        log(f"Stopped: --time_budget {cfg.time_budget:g} min is spent. The run is saved after "
            f"its last epoch in {run.path}; continue it with the same command and "
            f"--resume {run.path}")
        return Stopped(run.path)
    result.pretext_history, result.pretrain_seconds = pre_history, pretrain_seconds
    result.steps_per_epoch = len(batches)
    result.backend = device
    if run is not None and run.resumed:
        result.resumed = run.resumed
    if run is not None:
        result.parts = run.parts
    print_summary(result, log)
    if run is not None:
        # the training windows: the encoder's pre-training data (the authors' encoder: the
        # released training files) and the classifier's
        result.run_dir = save_run(result, model, run, log, data.train.sequences)
    return result


# ----------------------------------------------------------------------------------------
# evaluate.py

# evaluate.py flags that choose how to score, not which model: free to differ from the run's
# (the protocol too: a classification run's encoder may be scored by retrieval, with the
# distance chosen then)
CHOSEN_AT_EVALUATION = fields_affecting("operational", "environment") + ("protocol", "distance")


def run_evaluation(opts: RunConfig, log=print, given: Optional[set] = None) -> Result:
    """Score a saved model: a run folder of ours (its config.json decides the model), the
    best finished run, or an authors' checkpoint. given: the settings named on the command
    line; any of them that contradicts the run folder is refused, default-valued or not
    (None: those that differ from the default)."""
    log(f"Engine: {device_description()}")
    folder = opts.model_dir
    if folder == "best":
        folder = find_best_run(opts, variant_of(resolve(opts), build=False))
        log(f"Best saved model (highest recorded Rank-1): {folder}")
    if not os.path.isfile(os.path.join(folder, CONFIG_FILE)):
        return evaluate_reference_checkpoint(opts.replace(model_dir=folder), log)
    cfg = load_run_config(folder)
    defaults = RunConfig()
    if given is None:
        given = {k for k in ("dataset", "length", "split", "view", "probe_type")
                 if getattr(opts, k) != getattr(defaults, k)}
    for key in sorted(given - set(CHOSEN_AT_EVALUATION)):
        wanted, trained = getattr(opts, key), getattr(cfg, key)
        if trained is not None and wanted != trained:
            raise UserError(f"{folder} was trained with --{key} {trained}, not {wanted}; drop "
                            f"the flag, or give another --model_dir")
    log(f"Scoring {folder}: {cfg.dataset}" + (f" split {cfg.split}" if cfg.split else "")
        + (f" view {cfg.view}" if cfg.view is not None else "") + f", f={cfg.length}, "
        f"{opts.protocol} protocol")
    trained_protocol = cfg.protocol
    cfg = cfg.replace(progress=opts.progress, protocol=opts.protocol, backend=opts.backend,
                      distance=opts.distance,
                      data_dir=opts.data_dir if opts.data_dir != defaults.data_dir else cfg.data_dir)
    seen = seen_walks_note(cfg, trained_protocol, opts.allow_seen_walks)
    if seen:
        log(f"WARNING: {seen}; scored anyway (--allow_seen_walks 1): not a clean retrieval result")
    model = build_model(cfg)
    if not os.path.isfile(os.path.join(folder, METRICS_FILE)) and \
            os.path.isfile(os.path.join(folder, RESUME_FILE)):
        return evaluate_unfinished(cfg, model, folder, log, seen)
    load_module(os.path.join(folder, ENCODER_FILE), model)
    return evaluate(cfg, model, folder, log, seen_walks=seen)


def seen_walks_note(cfg: ResolvedConfig, trained_protocol: str, allowed: bool) -> Optional[str]:
    """Retrieval scored with a classification run's encoder: the probe and gallery walks that
    were in its pre-training data (a prepared dataset's manifest says which walk went where).
    Refused in one line unless allowed; then the note marks the result."""
    if cfg.protocol != "retrieval" or trained_protocol == "retrieval":
        return None
    walks = walks_by_role(cfg.data_dir, cfg.dataset, cfg.length)
    if not walks or not walks.get(trained_protocol) or not walks.get("retrieval"):
        return None
    trained, scored = walks[trained_protocol], walks["retrieval"]
    searched = scored.get("probe", set()) | scored.get("gallery", set())
    overlap = searched & trained.get("train", set())
    if not overlap:
        return None
    note = (f"{len(overlap)} of {len(searched)} probe and gallery walks were in this encoder's "
            f"pre-training data")
    if not allowed:
        raise UserError(f"{note}; score a retrieval run instead (SM-SGE.py --protocol retrieval), "
                        f"or pass --allow_seen_walks 1 to score anyway, marked so in the output")
    return note


def evaluate_unfinished(cfg: ResolvedConfig, model, folder: str, log=print,
                        seen_walks: Optional[str] = None) -> Result:
    """An unfinished run scored from its resume checkpoint: the encoder, and the classifier
    the Re-ID stage has kept so far (with --selection val, chosen on validation windows, so
    scoring it once on the test set is a clean estimate). The run itself is left untouched
    and can still be resumed."""
    state = load_state(folder)
    if state.stage != ReIDState.STAGE:
        raise UserError(f"{folder} is an unfinished run still in pre-training: there is no "
                        f"classifier to score yet; continue it with --resume")
    reid = ReIDState.from_checkpoint(state.info, state.arrays)
    if cfg.protocol == "classification" and reid.best_epoch is None:
        raise UserError(f"{folder} is an unfinished run whose Re-ID stage has kept no "
                        f"classifier yet; continue it with --resume")
    chosen = "validation" if cfg.selection == "val" else "test"
    log(f"Unfinished run: {reid.epoch} Re-ID epochs done; scoring the classifier kept so far "
        f"(epoch {reid.best_epoch}, {chosen} Rank-1 {100 * reid.best_acc:.2f}) from its resume "
        f"checkpoint")
    assign(model.trainable_variables, state.arrays["encoder"], folder)
    return evaluate(cfg, model, folder, log, seen_walks=seen_walks,
                    load_classifier=lambda c: assign(c.trainable_variables, reid.best_weights, folder))


def evaluate(cfg: ResolvedConfig, model, folder: Optional[str], log=print, load_classifier=None,
             seen_walks: Optional[str] = None) -> Result:
    """The shared evaluation path: retrieval on the encoder, or the saved classifier scored.
    load_classifier(classifier) fills the classifier's weights (default: classifier.npz);
    seen_walks marks a result scored on walks the encoder was pre-trained on."""
    encoder = build_encoder(cfg, model)
    variant = variant_of(cfg)
    if cfg.protocol == "retrieval":
        result = run_retrieval(cfg, variant, encoder, log)
    else:
        if load_classifier is None:
            if not os.path.isfile(os.path.join(folder, CLASSIFIER_FILE)):
                raise UserError(f"{folder} holds no classifier (a retrieval run); use "
                                f"--protocol retrieval")
            load_classifier = lambda c: load_module(os.path.join(folder, CLASSIFIER_FILE), c)  # noqa: E731
        data = load_reid_data(variant.files, variant.layout)
        classifier = build_classifier(cfg, model, data.num_classes)
        load_classifier(classifier)
        result = classifier_protocol(cfg, classifier).run(
            lambda x: encoder.encode_all(x, cfg.batch_size,
                                         lambda it: progress_bar(it, cfg, desc="encode test")),
            data, log)
        log("Confusion matrix (rows: true identity, columns: predicted):")
        log(np.array2string(result.confusion, max_line_width=200, threshold=100000))
    result.seen_walks = seen_walks
    print_summary(result, log)
    return result


def run_retrieval(cfg: ResolvedConfig, variant, encoder, log=print):
    """Probe/gallery matching of one vector per sequence: the mean of its prefix encodings."""
    from models.training import sequence_encoding
    sets = retrieval_splits(variant.files, variant.layout, variant.retrieval_sets())
    return retrieval_protocol(cfg, f"CMC, {variant.run_tag} f={cfg.length}").run(
        lambda x: sequence_encoding(encoder.encode_all(
            x, cfg.batch_size, lambda it: progress_bar(it, cfg, desc="encode"))), sets, log)


def evaluate_reference_checkpoint(opts: RunConfig, log=print) -> Result:
    """evaluate.py on the authors' own model files (RN/best_models/..., Pre-Trained/...)."""
    from models.reference_checkpoint import (ReferenceCheckpoint, adopt_checkpoint_sizes,
                                             load_reference_classifier, load_reference_encoder)
    cfg = resolve(opts.replace(seed=0, scales=RunConfig().scales, cross_scale=True))
    ckpt = ReferenceCheckpoint(opts.model_dir)
    cfg, sizes = adopt_checkpoint_sizes(cfg, ckpt)
    log(f"Authors' checkpoint {ckpt.prefix}: {sizes['num_joints']} joints, LSTM "
        f"{sizes['lstm_size']}, {sizes['heads']} heads"
        + (f", {sizes['num_classes']} identities" if ckpt.has_trained_classifier else
           ", pre-trained encoder (no Re-ID classifier)"))
    model = build_model(cfg)
    load_reference_encoder(ckpt, model)

    def load_classifier(classifier):
        if ckpt.has_trained_classifier and sizes["num_classes"] != classifier.w2.shape[1]:
            raise UserError(f"{ckpt.prefix} classifies {sizes['num_classes']} identities, the "
                            f"data has {classifier.w2.shape[1]}; check --dataset/--split")
        load_reference_classifier(ckpt, classifier)
    return evaluate(cfg, model, None, log, load_classifier)
