"""The whole SM-SGE pipeline, called by SM-SGE.py and evaluate.py.

Stages: data -> self-supervised pre-training (or reload) -> frozen encodings ->
Re-ID classifier with early stopping (classification protocol) or probe/gallery matching
(retrieval protocol) -> metrics, plots and saved model under RN/.
"""
import glob
import json
import os
import time
from typing import Optional

import numpy as np
from tqdm import tqdm

from utils.checkpoints import load_config, load_module, save_config, save_module
from utils.data import (ReIDData, full_batches, load_reid_data, read_split,
                        reference_epoch_order, stratified_holdout)
from utils.datasets import DATASETS_ROOT, DataLocation, get_spec, locate
from utils.demo import ensure_demo
from utils.errors import UserError
from utils.graphs import SCALES, build_graph
from utils.io import atomic_save_json
from utils.metrics import (cmc_and_map_features, cmc_nauc, confusion, rank_n_from_scores,
                           roc_nauc)
from utils.resume import Budget, RunFolder, TimeBudgetReached, restore_variables
from utils.skeleton import layout_for

PRETRAINED_ROOT = "Pre-Trained"
RN_ROOT = "RN"
ARCH_KEYS = ("dataset", "length", "lstm_size", "P", "fusion_lambda", "n_hood", "num_joints",
             "scales", "cross_scale", "struct_only", "global_att")
# The reference's research switches (method §4-5; README "Research switches"), with the
# values that give the paper's model. Those that change pre-training name its folder.
SWITCH_DEFAULTS = dict(task="pre", struct_only=False, global_att=False, last_pre=False,
                       ord_sample=False, s_range="all", pred_margin=0, fresh_draws=False)
PRETRAIN_SWITCHES = ("struct_only", "global_att", "ord_sample", "s_range", "pred_margin",
                     "fresh_draws")


# ----------------------------------------------------------------------------------------
# Configuration

def resolve_config(opts: dict) -> dict:
    """Fill per-dataset settings (method §6) into the options the user gave."""
    spec = get_spec(opts["dataset"])
    cfg = dict(SWITCH_DEFAULTS)
    cfg.update(opts)
    cfg.setdefault("scales", list(SCALES))
    cfg.setdefault("cross_scale", True)
    cfg.setdefault("data_dir", DATASETS_ROOT)
    cfg["num_joints"] = spec.num_joints
    cfg["lstm_size"] = spec.lstm_size
    cfg["batch_size"] = opts.get("batch_size") or spec.batch_size
    cfg["pre_lr"] = opts.get("pre_lr") or spec.pretrain_lr
    cfg["reid_lr"] = opts.get("reid_lr") or spec.reid_lr
    if opts.get("pre_epochs") is None:
        probe = opts.get("probe_type") and spec.pretrain_epochs_probe
        cfg["pre_epochs"] = spec.pretrain_epochs_probe if probe else spec.pretrain_epochs
    if cfg["task"] == "none":   # no pre-training: Re-ID on the randomly initialised encoder
        cfg["pre_epochs"] = 0
    # On IAS the reference keeps a Re-ID model only from epoch 10 on.
    cfg["min_save_epoch"] = 10 if opts["dataset"] == "IAS" else 0
    return cfg


def data_location(cfg: dict) -> DataLocation:
    if cfg["dataset"] in ("demo", "demo20"):
        ensure_demo(cfg["dataset"], cfg["length"])
    return locate(cfg["dataset"], cfg["length"], cfg.get("split"), cfg.get("view"),
                  cfg.get("probe_type"), cfg.get("data_dir") or DATASETS_ROOT,
                  cfg.get("protocol", "classification"))


def pretrained_dir(cfg: dict) -> str:
    loc = data_location(cfg)
    # IAS-A and IAS-B share their training data, and the reference re-uses the IAS-A
    # pre-trained model for IAS-B: one pre-trained encoder serves both splits.
    tag = "IAS" if cfg["dataset"] == "IAS" else loc.run_tag
    name = (f"lambda{cfg['fusion_lambda']:g}_P{cfg['P']}_nhood{cfg['n_hood']}"
            f"_r{cfg['sample_num']}_{cfg['loss']}_{cfg['optimizers']}_e{cfg['pre_epochs']}"
            f"_seed{cfg['seed']}")
    if tuple(cfg["scales"]) != SCALES:
        name += "_scales-" + "-".join(cfg["scales"])
    if not cfg["cross_scale"]:
        name += "_noCSI"
    for key in PRETRAIN_SWITCHES:
        if cfg.get(key, SWITCH_DEFAULTS[key]) != SWITCH_DEFAULTS[key]:
            name += f"_{key}-{str(cfg[key]).replace('/', '')}"
    if cfg["task"] == "none":
        name += "_task-none"
    return os.path.join(PRETRAINED_ROOT, tag, str(cfg["length"]), name)


def seed_everything(seed: int) -> None:
    import tensorflow as tf
    tf.random.set_seed(seed)
    np.random.seed(seed)


def device_description() -> str:
    """The accelerator TensorFlow will use, or the CPU model and core count."""
    import platform
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return "GPU: " + ", ".join(tf.config.experimental.get_device_details(g).get(
            "device_name", g.name) for g in gpus)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"CPU: {cpu}, {os.cpu_count()} cores"


def build_model(cfg: dict):
    from models.sm_sge import SMSGE
    graph = build_graph(layout_for(cfg["num_joints"]), cfg["n_hood"], cfg.get("global_att", False))
    return SMSGE(graph, cfg["lstm_size"], cfg["P"], cfg["fusion_lambda"], seed=cfg["seed"],
                 scales=cfg["scales"], cross_scale=cfg["cross_scale"],
                 struct_only=cfg.get("struct_only", False))


def build_encoder(cfg: dict, model):
    from models.draws import reid_prefixes
    from models.training import Encoder
    return Encoder(model, reid_prefixes(cfg["length"], cfg.get("pred_margin", 0),
                                        cfg.get("zero_frame", True), cfg.get("last_pre", False)))


def training_order(cfg: dict, labels: np.ndarray) -> list:
    """The reference's epoch order, cut into full batches: built once per run (seeded),
    used by pre-training and by the Re-ID stage, every epoch."""
    order = reference_epoch_order(labels, cfg["batch_size"], np.random.default_rng([cfg["seed"], 1]))
    return full_batches(order, cfg["batch_size"])


def count_parameters(*modules) -> int:
    return int(sum(np.prod(v.shape) for m in modules for v in m.trainable_variables))


def _bar(iterable, cfg, **kw):
    return tqdm(iterable, disable=None if cfg.get("progress", True) else True,
                leave=False, dynamic_ncols=True, **kw)


# ----------------------------------------------------------------------------------------
# Pre-training

def _duration(seconds: float) -> str:
    minutes = int(round(seconds / 60))
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def _order_arrays(batches: list) -> dict:
    return dict(order=np.concatenate(batches), order_sizes=[len(b) for b in batches])


def pretrain(cfg: dict, model, sequences: np.ndarray, batches: list, log=print,
             run: Optional[RunFolder] = None) -> list:
    """Pre-train `model`; with a run folder, checkpoint after every epoch and continue a
    resumed run's pre-training from its checkpoint."""
    from models.training import Pretrainer
    trainer = Pretrainer(model, cfg["pre_lr"], cfg["length"], cfg["loss"], cfg["sample_num"],
                         cfg["optimizers"], jit=cfg.get("xla", True),
                         rng=np.random.default_rng([cfg["seed"], 2]), margin=cfg["pred_margin"],
                         ordered=cfg["ord_sample"], s_range=cfg["s_range"],
                         fresh_draws=cfg["fresh_draws"])
    variables = trainer.state_variables()
    history, first, seconds = [], 0, 0.0
    state = run.state if run is not None and run.state is not None else None
    if state is not None and state.stage == "pretrain":
        restore_variables(variables, state.variables, run.path)
        trainer.use_draws([state.extras[f"draw{i}"] for i in range(len(trainer.draws))])
        trainer.rng.bit_generator.state = state.info["rng"]
        history, first, seconds = state.info["history"], state.info["epoch"], state.info["seconds"]
    if not cfg["fresh_draws"]:
        log("Subsequence draws (fixed for the whole run, as the reference): "
            + " ".join("[" + ",".join(map(str, d)) + "]" for d in trainer.draws))
    total = cfg["pre_epochs"]
    for epoch in range(first, total):
        start = time.time()
        sums = dict.fromkeys(model.scales, 0.0)
        for idx in _bar(batches, cfg, desc=f"pre-train {epoch + 1}/{total}"):
            for s, v in trainer.step(sequences[idx]).items():
                sums[s] += v
        means = {s: v / len(batches) for s, v in sums.items()}
        history.append(means)
        took = time.time() - start
        seconds += took
        losses = " | ".join(f"{s} {means[s]:.5f}" for s in model.scales)
        left = total - epoch - 1
        log(f"[{epoch + 1}/{total}] pretext loss  {losses}  ({took:.1f}s"
            + (f"; about {_duration(left * seconds / (epoch + 1 - first))} left)" if left else ")"))
        if run is not None:
            run.checkpoint(dict(stage="pretrain", epoch=epoch + 1, history=history, seconds=seconds,
                                rng=trainer.rng.bit_generator.state),
                           variables, dict({f"draw{i}": d for i, d in enumerate(trainer.draws)},
                                           **_order_arrays(batches)))
    return history, seconds


def pretrain_or_load(cfg: dict, data: ReIDData, model, batches: list, log=print,
                     reference=None, run: Optional[RunFolder] = None):
    """Pre-train `model` and save it, or load its saved weights: ours, or those of the
    authors' checkpoint `reference` (--encoder_ckpt). Returns (loss history, seconds)."""
    if reference is not None:
        from models.reference_checkpoint import load_reference_encoder
        load_reference_encoder(reference, model)
        log(f"Loaded the authors' pre-trained encoder from {reference.prefix}")
        return [], 0.0
    folder = pretrained_dir(cfg)
    history, seconds = [], 0.0
    if cfg["pre_train"]:
        log(f"Self-supervised pre-training: {cfg['pre_epochs']} epochs, batch "
            f"{cfg['batch_size']}, lr {cfg['pre_lr']}"
            + (" (--task none: the encoder stays randomly initialised)" if cfg["task"] == "none" else ""))
        reference_epochs = get_spec(cfg["dataset"]).pretrain_epochs
        if cfg["task"] != "none" and cfg["pre_epochs"] < reference_epochs:
            log(f"NOTE: {cfg['pre_epochs']} pre-training epochs, fewer than the reference's "
                f"{reference_epochs} for {cfg['dataset']}: a shortened run")
        history, seconds = pretrain(cfg, model, data.train.sequences, batches, log, run)
        save_module(os.path.join(folder, "encoder.npz"), model)
        save_config(folder, {k: cfg[k] for k in ARCH_KEYS + ("pre_epochs", "seed") + PRETRAIN_SWITCHES})
        log(f"Pre-trained encoder saved to {folder}")
    else:
        path = os.path.join(folder, "encoder.npz")
        if not os.path.isfile(path):
            raise UserError(f"no pre-trained model at {folder}; run once with --pre_train 1 "
                            f"(and the same dataset, length and architecture flags)")
        load_module(path, model)
        log(f"Loaded pre-trained encoder from {folder}")
    return history, seconds


# ----------------------------------------------------------------------------------------
# Classification protocol (the paper's)

def reid_progress(acc: float, loss: float, best_acc: float, best_loss: float, epoch: int,
                  min_save_epoch: int = 0):
    """The reference's rule for one Re-ID epoch: (progress, keep). Progress (which resets
    the patience) when the accuracy reaches the best so far or the loss the lowest so far;
    keep the model only when the accuracy beats the best so far (which starts at 0) and the
    0-based epoch is at least min_save_epoch (IAS: 10)."""
    progress = acc >= best_acc or loss <= best_loss
    return progress, progress and acc > best_acc and epoch >= min_save_epoch


def train_classifier(cfg: dict, encoder, train_x, train_y, batches, sel_x, sel_y,
                     num_classes: int, selection_name: str, log=print,
                     run: Optional[RunFolder] = None, resume_info: Optional[dict] = None):
    """Train the Re-ID MLP with the reference's early stopping on (sel_x, sel_y).

    Every epoch walks the same `batches` (the run's training order). An epoch counts as
    progress when the selection accuracy reaches its best so far or the loss its lowest
    so far; the classifier is kept only when the accuracy beats the best seen so far
    (earlier epochs included; the best starts at 0) and, on IAS, the epoch is >= 10 (0-based,
    as the reference counts). Training stops after `patience` epochs without progress.
    With the cache, train_x and sel_x are encodings; without it, raw sequences.
    Returns (classifier, trainer, history, kept epoch or None when no epoch was kept).
    With a run folder, a checkpoint is written after every epoch (`resume_info`: what the
    checkpoint also carries of the earlier stage), and a resumed run continues from its own.
    """
    from models.sm_sge import ReIDClassifier
    from models.training import ReIDTrainer
    classifier = ReIDClassifier(encoder.model.embedding_size, num_classes, seed=cfg["seed"])
    trainer = ReIDTrainer(classifier, cfg["reid_lr"], encoder)
    raw = not cfg.get("cache", True)
    best = dict(acc=0.0, loss=np.inf, weights=None, epoch=None)
    history, waited, first, seconds = [], 0, 0, 0.0
    variables = list(encoder.model.trainable_variables) + trainer.state_variables()
    state = run.state if run is not None and run.state is not None else None
    if state is not None and state.stage == "reid":
        restore_variables(variables, state.variables, run.path)
        info = state.info
        history, waited, first, seconds = info["history"], info["waited"], info["epoch"], info["seconds"]
        best.update(acc=info["best_acc"], loss=info["best_loss"], epoch=info["best_epoch"])
        if info["best_epoch"] is not None:
            best["weights"] = [state.extras[f"best{i}"] for i in range(len(classifier.trainable_variables))]
    max_epochs = cfg.get("max_reid_epochs") or 10 ** 9
    bar = _bar(range(first, max_epochs), cfg, desc="Re-ID epochs")
    for epoch in bar:
        start = time.time()
        losses, correct, seen = [], 0, 0
        for idx in batches:
            loss, logits = trainer.train_batch(train_x[idx], train_y[idx], raw=raw)
            losses.append(loss)
            correct += int(np.sum(logits.argmax(1) == train_y[idx]))
            seen += len(idx)
        # Uncached, the reference's way: the frozen encoder runs on the selection set again
        # every epoch. Cached: its encodings were computed once.
        sel_enc = encoder.encode_all(sel_x, cfg["batch_size"]) if raw else sel_x
        ev = trainer.evaluate(sel_enc, sel_y, cfg["batch_size"], cfg.get("drop_last_test", True))
        record = dict(epoch=epoch + 1, train_loss=float(np.mean(losses)), train_acc=correct / seen,
                      sel_loss=ev["loss"], sel_acc=ev["accuracy"],
                      sel_nauc=roc_nauc(ev["logits"], ev["labels"], num_classes))
        history.append(record)
        took = time.time() - start
        seconds += took
        log(f"Re-ID epoch {epoch + 1}: train loss {record['train_loss']:.4f} Rank-1 "
            f"{record['train_acc']:.4f} | {selection_name} loss {ev['loss']:.4f} Rank-1 "
            f"{ev['accuracy']:.4f} nAUC {record['sel_nauc']:.4f}  ({took:.1f}s)")
        progress, keep = reid_progress(ev["accuracy"], ev["loss"], best["acc"], best["loss"],
                                       epoch, cfg.get("min_save_epoch", 0))
        if progress:
            if keep:
                best["weights"] = [v.numpy() for v in classifier.trainable_variables]
                best["epoch"] = epoch + 1
            best["acc"] = max(best["acc"], ev["accuracy"])
            best["loss"] = min(best["loss"], ev["loss"])
            waited = 0
        else:
            waited += 1
            if waited == cfg["patience"]:
                log(f"Early stop after epoch {epoch + 1}: best {selection_name} Rank-1 "
                    f"{best['acc']:.4f}, lowest loss {best['loss']:.4f}")
                break
        if run is not None:
            extras = {f"best{i}": w for i, w in enumerate(best["weights"] or [])}
            run.checkpoint(dict(resume_info or {}, stage="reid", epoch=epoch + 1, history=history,
                                waited=waited, seconds=seconds, best_acc=best["acc"],
                                best_loss=best["loss"], best_epoch=best["epoch"]),
                           variables, dict(extras, **(_order_arrays(batches))))
    else:
        log(f"NOTE: Re-ID stopped by --max_reid_epochs {max_epochs} before the reference's "
            f"early stopping (patience {cfg['patience']}): a shortened run")
    bar.close()
    if best["weights"] is None:
        log(f"NOTE: no epoch was kept (none beat the best {selection_name} accuracy so far"
            + (f" at epoch {cfg['min_save_epoch'] + 1} or later" if cfg.get("min_save_epoch") else "")
            + "); the reference would have no model to restore. Reporting the last epoch's classifier.")
    else:
        for v, w in zip(classifier.trainable_variables, best["weights"]):
            v.assign(w)
    return classifier, trainer, history, best["epoch"], seconds


def classification_report(trainer, enc: np.ndarray, labels: np.ndarray, num_classes: int,
                          cfg: dict) -> dict:
    ev = trainer.evaluate(enc, labels, cfg["batch_size"], cfg.get("drop_last_test", True))
    ranks = rank_n_from_scores(ev["logits"], ev["labels"], (1, 5, 10))
    return dict(rank1=ev["accuracy"], rank5=ranks[5], rank10=ranks[10], loss=ev["loss"],
                nauc=roc_nauc(ev["logits"], ev["labels"], num_classes),
                scored=int(len(ev["labels"])), total=int(len(labels)),
                confusion=confusion(ev["logits"].argmax(1), ev["labels"], num_classes))


def run_classification(cfg: dict, data: ReIDData, encoder, batches: list, log=print,
                       run: Optional[RunFolder] = None, resume_info: Optional[dict] = None) -> dict:
    """batches: the run's training order (the one pre-training used); with --selection val
    the order is rebuilt, the same way, on the training sequences that remain."""
    bs = cfg["batch_size"]
    rng = np.random.default_rng(cfg["seed"] + 2)
    train_x, train_y = data.train.sequences, data.train_labels
    if cfg["selection"] == "val":
        tr, va = stratified_holdout(train_y, cfg["val_fraction"], rng)
        sel_x, sel_y = train_x[va], train_y[va]
        train_x, train_y = train_x[tr], train_y[tr]
        batches = training_order(cfg, train_y)
        selection_name = "val"
        log(f"Model selection on a validation split of the training data ({len(va)} "
            f"sequences); the test set is scored once, at the end.")
    else:
        # Test labels are only read here, in the reference's test-set selection mode.
        sel_x, sel_y = data.test.sequences, data.test_labels
        selection_name = "test"
        log("NOTE: model selection uses the TEST set (reference behaviour, --selection test); "
            "use --selection val for a clean estimate.")
    if cfg.get("cache", True):
        log("Encoding sequences once with the frozen encoder ...")
        train_x = encoder.encode_all(train_x, bs, lambda it: _bar(it, cfg, desc="encode train"))
        sel_x = encoder.encode_all(sel_x, bs, lambda it: _bar(it, cfg, desc="encode selection"))
    classifier, trainer, history, best_epoch, reid_seconds = train_classifier(
        cfg, encoder, train_x, train_y, batches, sel_x, sel_y, data.num_classes, selection_name,
        log, run, resume_info)
    if cfg["selection"] == "val":
        test_enc = encoder.encode_all(data.test.sequences, bs)
    else:
        test_enc = sel_x if cfg.get("cache", True) else encoder.encode_all(sel_x, bs)
    report = classification_report(trainer, test_enc, data.test_labels, data.num_classes, cfg)
    return dict(report, classifier=classifier, reid_history=history, best_epoch=best_epoch,
                selection_set=selection_name, reid_seconds=reid_seconds)


# ----------------------------------------------------------------------------------------
# Retrieval protocol

def retrieval_splits(cfg: dict, loc: DataLocation):
    """(probe Split, gallery Split) in the layout of the retrieval works."""
    spec = get_spec(cfg["dataset"])
    v, f = spec.num_joints, cfg["length"]
    if cfg["dataset"] == "IAS":
        other = "B" if cfg["split"] == "A" else "A"
        gallery_loc = locate("IAS", f, other, root=cfg.get("data_dir") or DATASETS_ROOT)
        return (read_split(loc.test_dir, loc.test_tag, f, v, True, "IAS"),
                read_split(gallery_loc.test_dir, gallery_loc.test_tag, f, v, True, "IAS"))
    probe_dir, gallery_dir = (os.path.join(loc.test_dir, n) for n in ("probe", "gallery"))
    if not os.path.isdir(probe_dir):
        raise UserError(f"retrieval needs {probe_dir} and {gallery_dir} (the probe/gallery "
                        f"layout of the retrieval works); they are missing for {loc.run_tag}")
    return (read_split(probe_dir, loc.test_tag, f, v, True, cfg["dataset"]),
            read_split(gallery_dir, loc.test_tag, f, v, True, cfg["dataset"]))


def sequence_encoding(prefix_encodings: np.ndarray) -> np.ndarray:
    """One vector per sequence for matching: the mean of its prefix encodings (the same
    vectors the classifier sums logits over), L2-normalised."""
    mean = prefix_encodings.mean(axis=1)
    return mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)


def run_retrieval(cfg: dict, encoder, log=print) -> dict:
    loc = data_location(cfg)
    probe, gallery = retrieval_splits(cfg, loc)
    bs = cfg["batch_size"]
    q = sequence_encoding(encoder.encode_all(probe.sequences, bs, lambda it: _bar(it, cfg, desc="encode probe")))
    g = sequence_encoding(encoder.encode_all(gallery.sequences, bs, lambda it: _bar(it, cfg, desc="encode gallery")))
    cmc, mean_ap, valid, skipped = cmc_and_map_features(q, g, probe.person_ids, gallery.person_ids)
    if skipped:
        log(f"{skipped} probe sequences have no true match in the gallery and are skipped")
    pick = lambda n: float(cmc[min(n, len(cmc)) - 1])   # noqa: E731
    return dict(rank1=pick(1), rank5=pick(5), rank10=pick(10), mAP=mean_ap,
                nauc_cmc=cmc_nauc(cmc), cmc=cmc, queries=valid, skipped_queries=skipped,
                gallery_size=int(len(gallery.person_ids)),
                cmc_title=f"CMC, {loc.run_tag} f={cfg['length']}")


# ----------------------------------------------------------------------------------------
# Reporting and saving

def print_summary(cfg: dict, result: dict, log=print) -> None:
    log("=" * 72)
    if cfg["protocol"] == "retrieval":
        log(f"Retrieval ({result['queries']} probes, gallery {result['gallery_size']}): "
            f"Rank-1 {100 * result['rank1']:.2f}  Rank-5 {100 * result['rank5']:.2f}  "
            f"Rank-10 {100 * result['rank10']:.2f}  mAP {100 * result['mAP']:.2f}  "
            f"nAUC(CMC) {100 * result['nauc_cmc']:.2f}")
        return
    sel = result.get("selection_set", "test")
    log(f"Test ({result['scored']} of {result['total']} sequences scored): "
        f"Rank-1 {100 * result['rank1']:.2f}  Rank-5 {100 * result['rank5']:.2f}  "
        f"Rank-10 {100 * result['rank10']:.2f}  nAUC {100 * result['nauc']:.2f}  "
        f"loss {result['loss']:.4f}")
    if "best_epoch" in result:
        log(f"Re-ID model of epoch {result['best_epoch']} of {len(result['reid_history'])} "
            f"(chosen on the {sel} set)" if result["best_epoch"] else
            f"No Re-ID epoch was kept; the last of {len(result['reid_history'])} epochs is reported")
    if sel == "test":
        log("(model chosen on the test set, as in the reference: an optimistic estimate)")


def _metrics_for_json(result: dict) -> dict:
    keep = ("rank1", "rank5", "rank10", "nauc", "loss", "scored", "total", "mAP", "nauc_cmc",
            "queries", "skipped_queries", "gallery_size", "best_epoch", "selection_set",
            "reid_seconds", "pretrain_seconds", "parameters", "cmc", "confusion",
            "pretext_history", "reid_history", "resumed")
    return {k: result[k] for k in keep if k in result}


def run_parent(cfg: dict) -> str:
    return os.path.join(RN_ROOT, data_location(cfg).run_tag, str(cfg["length"]))


def run_name(cfg: dict) -> str:
    return time.strftime("%Y%m%d-%H%M%S") + f"_{cfg['protocol']}" + (
        f"_sel-{cfg['selection']}" if cfg["protocol"] == "classification" else "") + f"_seed{cfg['seed']}"


def saved_config(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if k not in ("progress", "resume", "time_budget")}


def save_run(cfg: dict, result: dict, model, run: RunFolder, log=print) -> str:
    """Write the finished run's files into its folder, each atomically, metrics.json last
    (a folder without it is unfinished), then drop the resume checkpoint."""
    from utils.plots import save_run_plots
    save_module(os.path.join(run.path, "encoder.npz"), model)
    if "classifier" in result:
        save_module(os.path.join(run.path, "classifier.npz"), result["classifier"])
    save_run_plots(run.path, result)
    atomic_save_json(os.path.join(run.path, "metrics.json"), _metrics_for_json(result))
    run.finish()
    log(f"Run saved to {run.path} (config, weights, metrics.json, plots)")
    return run.path


def open_run(cfg: dict, log=print) -> Optional[RunFolder]:
    """The run's folder: a new one, or with --resume the unfinished one to continue."""
    budget = Budget(cfg.get("time_budget"))
    if not cfg["save_flag"]:
        if cfg.get("resume") or cfg.get("time_budget") is not None:
            raise UserError("--resume and --time_budget need the run folder: drop --save_flag 0")
        return None
    if cfg.get("resume"):
        run = RunFolder.reopen(cfg["resume"], run_parent(cfg), saved_config(cfg), budget)
        stage = "pre-training" if run.state.stage == "pretrain" else "Re-ID"
        log(f"Resuming {run.path} at {run.resumed[-1]['at']}: {run.state.info['epoch']} "
            f"{stage} epochs were done")
        return run
    return RunFolder.start(run_parent(cfg), run_name(cfg), saved_config(cfg), budget)


def run_training(opts: dict, log=print) -> dict:
    """The full pipeline of SM-SGE.py; returns the result dict (also used by tests)."""
    cfg = resolve_config(opts)
    reference = None
    if cfg.get("encoder_ckpt"):
        from models.reference_checkpoint import ReferenceCheckpoint
        reference = ReferenceCheckpoint(cfg["encoder_ckpt"])
        adopt_checkpoint_sizes(cfg, reference)
    loc = data_location(cfg)
    data = load_reid_data(loc)
    log(f"Dataset {loc.run_tag}, f={cfg['length']}: {len(data.train_labels)} training and "
        f"{len(data.test_labels)} test sequences of {data.num_classes} identities, "
        f"{cfg['num_joints']} joints")
    seed_everything(cfg["seed"])
    log(f"Running on {device_description()}, seed {cfg['seed']}")
    model = build_model(cfg)
    encoder_params = count_parameters(model)
    if cfg["protocol"] == "retrieval":
        log(f"Model size: {encoder_params / 1e6:.2f} M parameters (encoder only; the paper "
            f"reports 5.58 M with the Re-ID classifier)")
    else:
        emb, classes = model.embedding_size, data.num_classes
        head = emb * emb + emb + emb * classes + classes
        log(f"Model size: {(encoder_params + head) / 1e6:.2f} M parameters (encoder "
            f"{encoder_params / 1e6:.2f} M + Re-ID classifier {head / 1e6:.2f} M; the paper "
            f"reports 5.58 M)")
    run = open_run(cfg, log)
    state = run.state if run is not None else None
    batches = training_order(cfg, data.train_labels)
    try:
        if state is not None and state.stage == "reid":   # pre-training was finished
            restore_variables(model.trainable_variables,
                              state.variables[:len(model.trainable_variables)], run.path)
            pre_history, pretrain_seconds = state.info["pretext_history"], state.info["pretrain_seconds"]
        else:
            pre_history, pretrain_seconds = pretrain_or_load(cfg, data, model, batches, log,
                                                             reference, run)
        encoder = build_encoder(cfg, model)
        if cfg["protocol"] == "retrieval":
            result = run_retrieval(cfg, encoder, log)
            params = count_parameters(model)
        else:
            result = run_classification(cfg, data, encoder, batches, log, run, dict(
                pretext_history=pre_history, pretrain_seconds=pretrain_seconds))
            params = count_parameters(model, result["classifier"])
    except TimeBudgetReached:
        log(f"Stopped: --time_budget {cfg['time_budget']:g} min is spent. The run is saved after "
            f"its last epoch in {run.path}; continue it with the same command and "
            f"--resume {run.path}")
        return dict(stopped=True, run_dir=run.path)
    result.update(pretext_history=pre_history, pretrain_seconds=pretrain_seconds,
                  parameters=params)
    if run is not None and run.resumed:
        result["resumed"] = run.resumed
    print_summary(cfg, result, log)
    if run is not None:
        result["run_dir"] = save_run(cfg, result, model, run, log)
    return result


# ----------------------------------------------------------------------------------------
# evaluate.py

def find_best_run(opts: dict) -> str:
    loc = locate(opts["dataset"], opts["length"], opts.get("split"), opts.get("view"),
                 opts.get("probe_type"), opts.get("data_dir") or DATASETS_ROOT, opts["protocol"])
    parent = os.path.join(RN_ROOT, loc.run_tag, str(opts["length"]))
    candidates = []
    for path in glob.glob(os.path.join(parent, "*", "metrics.json")):
        folder = os.path.dirname(path)
        try:
            with open(path) as fh:
                metrics = json.load(fh)
            protocol = load_config(folder).get("protocol", "classification")
        except (OSError, json.JSONDecodeError, UserError):
            continue
        if protocol == opts["protocol"] and "rank1" in metrics:
            candidates.append((metrics["rank1"], folder))
    if not candidates:
        raise UserError(f"no saved {opts['protocol']} model for {loc.run_tag} f={opts['length']} "
                        f"under {parent}; train one with SM-SGE.py (--save_flag 1)")
    return max(candidates)[1]


def adopt_checkpoint_sizes(cfg: dict, ckpt) -> dict:
    """Take the LSTM size and heads from an authors' checkpoint; its joints must fit the
    dataset. Returns the checkpoint's sizes."""
    sizes = ckpt.sizes()
    if sizes["num_joints"] != cfg["num_joints"]:
        raise UserError(f"{ckpt.prefix} is a {sizes['num_joints']}-joint model, but "
                        f"{cfg['dataset']} has {cfg['num_joints']} joints; check --dataset")
    cfg["lstm_size"], cfg["P"] = sizes["lstm_size"], sizes["heads"]
    return sizes


def evaluate_reference_checkpoint(opts: dict, log=print) -> dict:
    """evaluate.py on the authors' own model files (RN/best_models/..., Pre-Trained/...)."""
    from models.reference_checkpoint import (ReferenceCheckpoint, load_reference_classifier,
                                             load_reference_encoder)
    from models.sm_sge import ReIDClassifier
    cfg = resolve_config(dict(opts, seed=0, scales=list(SCALES), cross_scale=True))
    ckpt = ReferenceCheckpoint(opts["model_dir"])
    sizes = adopt_checkpoint_sizes(cfg, ckpt)
    log(f"Authors' checkpoint {ckpt.prefix}: {sizes['num_joints']} joints, LSTM "
        f"{sizes['lstm_size']}, {sizes['heads']} heads"
        + (f", {sizes['num_classes']} identities" if ckpt.has_trained_classifier else
           ", pre-trained encoder (no Re-ID classifier)"))
    model = build_model(cfg)
    load_reference_encoder(ckpt, model)
    encoder = build_encoder(cfg, model)
    if cfg["protocol"] == "retrieval":
        result = run_retrieval(cfg, encoder, log)
    else:
        data = load_reid_data(data_location(cfg))
        if ckpt.has_trained_classifier and sizes["num_classes"] != data.num_classes:
            raise UserError(f"{ckpt.prefix} classifies {sizes['num_classes']} identities, the "
                            f"data has {data.num_classes}; check --dataset/--split")
        classifier = ReIDClassifier(model.embedding_size, data.num_classes)
        load_reference_classifier(ckpt, classifier)
        result = score_classifier(cfg, encoder, classifier, data, log)
    print_summary(cfg, result, log)
    return result


def score_classifier(cfg: dict, encoder, classifier, data: ReIDData, log=print) -> dict:
    from models.training import ReIDTrainer
    trainer = ReIDTrainer(classifier, cfg["reid_lr"])
    enc = encoder.encode_all(data.test.sequences, cfg["batch_size"],
                             lambda it: _bar(it, cfg, desc="encode test"))
    result = classification_report(trainer, enc, data.test_labels, data.num_classes, cfg)
    result["selection_set"] = cfg.get("selection", "test")
    np.set_printoptions(linewidth=200, threshold=100000)
    log("Confusion matrix (rows: true identity, columns: predicted):")
    log(str(result["confusion"]))
    return result


def run_evaluation(opts: dict, log=print) -> dict:
    folder = opts["model_dir"]
    if folder == "best":
        folder = find_best_run(opts)
        log(f"Best saved model (highest recorded Rank-1): {folder}")
    if not os.path.isfile(os.path.join(folder, "config.json")):
        return evaluate_reference_checkpoint(dict(opts, model_dir=folder), log)
    cfg = load_config(folder)
    for key in ("dataset", "length", "split", "view", "probe_type"):
        if opts.get(key) not in (None, "") and cfg.get(key) not in (None, "") and opts[key] != cfg[key]:
            raise UserError(f"{folder} was trained with {key}={cfg[key]}, not {opts[key]}")
    cfg["progress"] = opts.get("progress", True)
    cfg["protocol"] = opts.get("protocol", cfg.get("protocol"))
    if opts.get("data_dir"):
        cfg["data_dir"] = opts["data_dir"]
    model = build_model(cfg)
    load_module(os.path.join(folder, "encoder.npz"), model)
    from models.sm_sge import ReIDClassifier
    encoder = build_encoder(cfg, model)
    if cfg["protocol"] == "retrieval":
        result = run_retrieval(cfg, encoder, log)
    else:
        if not os.path.isfile(os.path.join(folder, "classifier.npz")):
            raise UserError(f"{folder} holds no classifier (a retrieval run); use --protocol retrieval")
        data = load_reid_data(data_location(cfg))
        classifier = ReIDClassifier(model.embedding_size, data.num_classes, seed=cfg["seed"])
        load_module(os.path.join(folder, "classifier.npz"), classifier)
        result = score_classifier(cfg, encoder, classifier, data, log)
    print_summary(cfg, result, log)
    return result
