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
from utils.data.reid_data import load_variant, window_fingerprints
from utils.foundation.checkpoints import load_module, save_module
from utils.foundation.errors import UserError, interrupt_behind
from utils.foundation.io import atomic_save_json, atomic_save_npy
from utils.foundation.progress import progress_bar
from utils.foundation.train_loop import ReIDState, assign
from utils.orchestration.config import RunConfig, fields_affecting, selectors
from utils.orchestration.protocols import Result, metric_label, print_summary
from utils.orchestration.resume import (Budget, RunFolder, TimeBudgetReached, load_state,
                                        remove_dead_runs)
from utils.orchestration.run import Run, resolve
from utils.orchestration.stages import (pretrain_or_load, train_and_score_classifier,
                                        training_order)
from utils.orchestration.storage import (CLASSIFIER_FILE, CONFIG_FILE, ENCODER_FILE, METRICS_FILE,
                                         RESUME_FILE, TRAINING_WINDOWS_FILE, find_best_run,
                                         load_run_config)


class Stopped:
    """run_training's answer when --time_budget stopped the run (its folder can resume)."""

    def __init__(self, run_dir: str):
        self.run_dir = run_dir


def open_run(run: Run, log=print, device: Optional[str] = None) -> Optional[RunFolder]:
    """The run's folder: a new one, or with --resume the unfinished one to continue. Folders
    of runs that died before their first checkpoint are removed first, with a word."""
    cfg, parent = run.cfg, run.runs_parent
    budget = Budget(cfg.time_budget)
    if not cfg.save_flag:
        if cfg.resume or cfg.time_budget is not None:
            raise UserError("--resume and --time_budget need the run folder: drop --save_flag 0")
        return None
    for folder in remove_dead_runs(parent):
        log(f"Removed {folder}: a run that ended before its first checkpoint (nothing to resume)")
    if cfg.resume:
        folder = RunFolder.reopen(cfg.resume, parent, cfg.saved(), budget, device)
        stage = "pre-training" if folder.state.stage == "pretrain" else "Re-ID"
        log(f"Resuming {folder.path} at {folder.resumed[-1]['at']}: {folder.state.info['epoch']} "
            f"{stage} epochs were done")
        return folder
    return RunFolder.start(parent, run.new_run_name(), cfg.saved(), budget, device)


def save_run(result: Result, model, folder: RunFolder, log=print,
             training_windows: Optional[np.ndarray] = None) -> str:
    """Write the finished run's files into its folder, each atomically, metrics.json last
    (a folder without it is unfinished), then drop the resume checkpoint. training_windows:
    the windows the encoder (and classifier) trained on, kept as fingerprints so that
    identify.py can tell a recording the run has seen."""
    from utils.foundation.plots import save_run_plots
    save_module(os.path.join(folder.path, ENCODER_FILE), model)
    if training_windows is not None:
        atomic_save_npy(os.path.join(folder.path, TRAINING_WINDOWS_FILE),
                        np.unique(window_fingerprints(training_windows)))
    if getattr(result, "classifier", None) is not None:
        save_module(os.path.join(folder.path, CLASSIFIER_FILE), result.classifier)
    save_run_plots(folder.path, vars(result))
    atomic_save_json(os.path.join(folder.path, METRICS_FILE), result.metrics())
    folder.finish()
    log(f"Run saved to {folder.path} (config, weights, metrics.json, plots)")
    return folder.path


def log_model_size(run: Run, model, num_classes: int, log=print) -> None:
    encoder_params = count_parameters(model)
    if not run.protocol.trains_classifier:
        log(f"Model size: {encoder_params / 1e6:.2f} M parameters (encoder only; the paper "
            f"reports 5.58 M with the Re-ID classifier)")
        return
    emb = model.embedding_size
    head = emb * emb + emb + emb * num_classes + num_classes
    log(f"Model size: {(encoder_params + head) / 1e6:.2f} M parameters (encoder "
        f"{encoder_params / 1e6:.2f} M + Re-ID classifier {head / 1e6:.2f} M; the paper "
        f"reports 5.58 M)")


def run_training(opts: RunConfig, log=print) -> Union[Result, Stopped]:
    """The full pipeline of SM-SGE.py; returns the result (also used by tests)."""
    run = resolve(opts)
    reference = None
    if run.cfg.encoder_ckpt:
        from models.reference_checkpoint import ReferenceCheckpoint, adopt_checkpoint_sizes
        reference = ReferenceCheckpoint(run.cfg.encoder_ckpt)
        run = run.with_config(adopt_checkpoint_sizes(run.cfg, reference)[0])
    cfg, variant = run.cfg, run.variant
    data = load_variant(variant)
    log(f"Dataset {variant.run_tag}, f={cfg.length}: {len(data.train_labels)} training and "
        f"{len(data.test_labels)} test sequences of {data.num_classes} identities, "
        f"{cfg.num_joints} joints ({variant.layout.name} layout)")
    seed_everything(cfg.seed)
    device = device_description()
    log(f"Engine: {device}; seed {cfg.seed}")
    model = build_model(cfg, run.layout)
    log_model_size(run, model, data.num_classes, log)
    folder = open_run(run, log, device)
    with folder.in_use() if folder is not None else contextlib.nullcontext():
        try:
            return _train(run, data, model, folder, reference, device, log)
        except (KeyboardInterrupt, Exception) as caught:   # SIGINT, or SIGTERM (errors.guarded)
            stop = interrupt_behind(caught)
            if stop is None:
                raise
            # the entry script's message names the command that continues the run
            stop.run_dir = folder.path if folder is not None and folder.has_checkpoint() else None
            raise


def _train(run: Run, data, model, folder: Optional[RunFolder], reference, device: str,
           log) -> Union[Result, Stopped]:
    """Pre-training (or its reload) and the Re-ID stage, then the run's files."""
    cfg = run.cfg
    state = folder.state if folder is not None else None
    batches = training_order(cfg, data.train_labels)
    try:
        if state is not None and state.stage == ReIDState.STAGE:   # pre-training was finished
            assign(model.trainable_variables, state.arrays["encoder"], folder.path)
            done = ReIDState.from_checkpoint(state.info, state.arrays)
            pre_history, pretrain_seconds = done.pretext_history, done.pretrain_seconds
        else:
            pre_history, pretrain_seconds = pretrain_or_load(
                run, data, model, batches, log, reference, folder)
        encoder = build_encoder(cfg, model)
        if run.protocol.trains_classifier:
            result = train_and_score_classifier(run, encoder, data, batches, log, folder, dict(
                pretext_history=pre_history, pretrain_seconds=pretrain_seconds))
            result.parameters = count_parameters(model, result.classifier)
        else:
            result = score(run, encoder, log)
            result.parameters = count_parameters(model)
    except TimeBudgetReached:
        log(f"Stopped: --time_budget {cfg.time_budget:g} min is spent. The run is saved after "
            f"its last epoch in {folder.path}; continue it with the same command and "
            f"--resume {folder.path}")
        return Stopped(folder.path)
    result.pretext_history, result.pretrain_seconds = pre_history, pretrain_seconds
    result.steps_per_epoch = len(batches)
    result.device = device
    if folder is not None and folder.resumed:
        result.resumed = folder.resumed
    if folder is not None:
        result.parts = folder.parts
    print_summary(result, log)
    if folder is not None:
        # the training windows: the encoder's pre-training data (the authors' encoder: the
        # released training files) and the classifier's
        result.run_dir = save_run(result, model, folder, log, data.train.sequences)
    return result


def score(run: Run, encoder, log=print, protocol=None, data=None) -> Result:
    """The run's protocol (or `protocol`: the classification protocol holding its
    classifier) on its own data (`data`, where the caller has read it already), through
    the frozen encoder."""
    protocol = protocol or run.protocol
    cfg = run.cfg
    encode = protocol.encoding(encoder, cfg.batch_size,
                               lambda it: progress_bar(it, cfg, desc="encode"))
    return protocol.run(encode, protocol.data(run.variant) if data is None else data, log)


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
        chosen = resolve(opts, build=False)
        folder = find_best_run(chosen)
        log(f"Best saved model (highest recorded {metric_label(chosen.protocol.ranked_by)}): {folder}")
    if not os.path.isfile(os.path.join(folder, CONFIG_FILE)):
        return evaluate_reference_checkpoint(opts.replace(model_dir=folder), log)
    cfg = load_run_config(folder)
    defaults = RunConfig()
    if given is None:
        given = {k for k in ("dataset", "length", *selectors(opts))
                 if getattr(opts, k) != getattr(defaults, k)}
    for key in sorted(given - set(CHOSEN_AT_EVALUATION)):
        wanted, trained = getattr(opts, key), getattr(cfg, key)
        if trained is not None and wanted != trained:
            raise UserError(f"{folder} was trained with --{key} {trained}, not {wanted}; drop "
                            f"the flag, or give another --model_dir")
    trained_protocol = cfg.protocol
    cfg = cfg.replace(progress=opts.progress, protocol=opts.protocol, backend=opts.backend,
                      distance=opts.distance,
                      data_dir=opts.data_dir if opts.data_dir != defaults.data_dir else cfg.data_dir)
    run = resolve(cfg)
    log(f"Scoring {folder}: {run.variant.run_tag}, f={cfg.length}, {run.protocol.name} protocol")
    seen = seen_walks_note(run, trained_protocol, opts.allow_seen_walks)
    if seen:
        log(f"WARNING: {seen}; scored anyway (--allow_seen_walks 1): not a clean result")
    model = build_model(cfg, run.layout)
    if not os.path.isfile(os.path.join(folder, METRICS_FILE)) and \
            os.path.isfile(os.path.join(folder, RESUME_FILE)):
        return evaluate_unfinished(run, model, folder, log, seen)
    load_module(os.path.join(folder, ENCODER_FILE), model)
    return evaluate(run, model, folder, log, seen_walks=seen)


def seen_walks_note(run: Run, trained_protocol: str, allowed: bool) -> Optional[str]:
    """A run's encoder scored by another protocol than it was trained for (retrieval on a
    classification run): the scored walks that were in its pre-training data (a prepared
    dataset's manifest says which walk went where). Refused in one line unless allowed;
    then the note marks the result."""
    protocol = run.protocol
    if trained_protocol == protocol.name:
        return None
    walks = run.variant.walks_by_role()
    if not walks or not walks.get(trained_protocol) or not walks.get(protocol.prepared_as):
        return None
    trained, scored = walks[trained_protocol], walks[protocol.prepared_as]
    searched = set().union(*(scored.get(role, set()) for role in protocol.scored_roles))
    overlap = searched & trained.get("train", set())
    if not overlap:
        return None
    note = (f"{len(overlap)} of {len(searched)} {' and '.join(protocol.scored_roles)} walks "
            f"were in this encoder's pre-training data")
    if not allowed:
        raise UserError(f"{note}; score a {protocol.name} run instead (SM-SGE.py --protocol "
                        f"{protocol.name}), or pass --allow_seen_walks 1 to score anyway, "
                        f"marked so in the output")
    return note


def evaluate_unfinished(run: Run, model, folder: str, log=print,
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
    if run.protocol.trains_classifier and reid.best_epoch is None:
        raise UserError(f"{folder} is an unfinished run whose Re-ID stage has kept no "
                        f"classifier yet; continue it with --resume")
    chosen = "validation" if run.cfg.selection == "val" else "test"
    log(f"Unfinished run: {reid.epoch} Re-ID epochs done; scoring the classifier kept so far "
        f"(epoch {reid.best_epoch}, {chosen} Rank-1 {100 * reid.best_acc:.2f}) from its resume "
        f"checkpoint")
    assign(model.trainable_variables, state.arrays["encoder"], folder)
    return evaluate(run, model, folder, log, seen_walks=seen_walks,
                    load_classifier=lambda c: assign(c.trainable_variables, reid.best_weights, folder))


def evaluate(run: Run, model, folder: Optional[str], log=print, load_classifier=None,
             seen_walks: Optional[str] = None) -> Result:
    """The shared evaluation path: the run's protocol on the encoder, with the saved
    classifier where the protocol scores with one. load_classifier(classifier) fills the
    classifier's weights (default: classifier.npz); seen_walks marks a result scored on walks
    the encoder was pre-trained on."""
    cfg = run.cfg
    encoder = build_encoder(cfg, model)
    protocol, data = run.protocol, None
    if protocol.trains_classifier:
        if load_classifier is None:
            if not os.path.isfile(os.path.join(folder, CLASSIFIER_FILE)):
                raise UserError(f"{folder} holds no classifier (a retrieval run); use "
                                f"--protocol retrieval")
            load_classifier = lambda c: load_module(os.path.join(folder, CLASSIFIER_FILE), c)  # noqa: E731
        data = protocol.data(run.variant)
        classifier = build_classifier(cfg, model, data.num_classes)
        load_classifier(classifier)
        protocol = protocol.with_classifier(classifier)
    result = score(run, encoder, log, protocol, data)
    if getattr(result, "confusion", None) is not None:
        log("Confusion matrix (rows: true identity, columns: predicted):")
        log(np.array2string(result.confusion, max_line_width=200, threshold=100000))
    result.seen_walks = seen_walks
    print_summary(result, log)
    return result


def evaluate_reference_checkpoint(opts: RunConfig, log=print) -> Result:
    """evaluate.py on the authors' own model files (RN/best_models/..., Pre-Trained/...)."""
    from models.reference_checkpoint import (ReferenceCheckpoint, adopt_checkpoint_sizes,
                                             load_reference_classifier, load_reference_encoder)
    run = resolve(opts.replace(seed=0, scales=RunConfig().scales, cross_scale=True))
    ckpt = ReferenceCheckpoint(opts.model_dir)
    cfg, sizes = adopt_checkpoint_sizes(run.cfg, ckpt)
    run = run.with_config(cfg)
    log(f"Authors' checkpoint {ckpt.prefix}: {sizes['num_joints']} joints, LSTM "
        f"{sizes['lstm_size']}, {sizes['heads']} heads"
        + (f", {sizes['num_classes']} identities" if ckpt.has_trained_classifier else
           ", pre-trained encoder (no Re-ID classifier)"))
    model = build_model(cfg, run.layout)
    load_reference_encoder(ckpt, model)

    def load_classifier(classifier):
        if ckpt.has_trained_classifier and sizes["num_classes"] != classifier.w2.shape[1]:
            raise UserError(f"{ckpt.prefix} classifies {sizes['num_classes']} identities, the "
                            f"data has {classifier.w2.shape[1]}; check --dataset/--split")
        load_reference_classifier(ckpt, classifier)
    return evaluate(run, model, None, log, load_classifier)
