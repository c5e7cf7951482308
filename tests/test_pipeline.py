"""End-to-end runs of both scripts on the built-in demo data (small settings)."""
import json
import os

import numpy as np
import pytest

from models.engine import seed_everything
from models.factory import build_encoder, build_model
from utils.orchestration.run import resolve
from utils.orchestration.stages import training_order
from utils.orchestration.storage import find_best_run
from tests.helpers import FAST, ROOT, SMALL_DEMO_PEOPLE, rank1, run, small_demo, small_opts

# Every test here trains a model or runs a script: the full suite only.
pytestmark = pytest.mark.slow

def test_train_then_evaluate_reproduces_rank1(tmp_path):
    train = run("SM-SGE.py", FAST, small_demo(tmp_path))
    assert train.returncode == 0, train.stderr[-2000:]
    assert "pretext loss" in train.stdout and "model selection uses the TEST set" in train.stdout
    runs = list((tmp_path / "RN" / "demo" / "4").iterdir())
    assert len(runs) == 1
    files = set(os.listdir(runs[0]))
    assert {"config.json", "encoder.npz", "classifier.npz", "metrics.json",
            "pretext_losses.png", "reid_curves.png", "confusion.png"} <= files
    metrics = json.loads((runs[0] / "metrics.json").read_text())
    assert metrics["rank1"] == pytest.approx(rank1(train.stdout) / 100, abs=1e-4)
    assert metrics["rank1"] > 2 / SMALL_DEMO_PEOPLE    # far above chance even after one epoch

    for model_dir in ("best", str(runs[0])):
        ev = run("evaluate.py", ["--length", "4", "--model_dir", model_dir, "--no_progress"], tmp_path)
        assert ev.returncode == 0, ev.stderr[-2000:]
        assert "Confusion matrix" in ev.stdout
        assert rank1(ev.stdout) == rank1(train.stdout)
        assert "demo, f=4, classification protocol" in ev.stdout   # says what it scored
    # A flag that contradicts the run folder is refused, even at its default value (6).
    bad = run("evaluate.py", ["--length", "6", "--model_dir", str(runs[0]), "--no_progress"], tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    (line,) = [l for l in bad.stderr.splitlines() if l.startswith("error:")]
    assert "was trained with --length 4, not 6" in line

    # Retrieval protocol from both scripts, re-using the pre-trained encoder.
    ret = run("SM-SGE.py", FAST + ["--pre_train", "0", "--protocol", "retrieval"], tmp_path)
    assert ret.returncode == 0, ret.stderr[-2000:]
    assert "Loaded pre-trained encoder" in ret.stdout and "mAP" in ret.stdout
    ev = run("evaluate.py", ["--length", "4", "--protocol", "retrieval", "--no_progress"], tmp_path)
    assert ev.returncode == 0, ev.stderr[-2000:]
    assert rank1(ev.stdout) == rank1(ret.stdout)
    # the distance is chosen at evaluation, like the protocol: not refused as a contradiction
    cos = run("evaluate.py", ["--length", "4", "--protocol", "retrieval", "--distance", "cosine",
                              "--model_dir", str(runs[0]), "--no_progress"], tmp_path)
    assert cos.returncode == 0, cos.stderr[-2000:]
    assert "Retrieval (" in cos.stdout


@pytest.mark.parametrize("args,message", [
    (["--fusion_lambda", "2"], "--fusion_lambda must be between 0.0 and 1.0"),
    (["--dataset", "NTU"], "unknown --dataset 'NTU'"),
    (["--loss", "huber"], "--loss must be l1, MSE or l2"),
    (["--pre_train", "2"], "--pre_train must be 0 or 1"),
    (["--split", "A"], "--split applies to IAS only"),
    (["--dataset", "KS20"], "Datasets/KS20/6/KS20_train_npy_data not found"),
    (["--dataset", "KGBD"], "raw KinectGait recordings with tools/prepare_kgbd.py"),
    (["--dataset", "IAS"], "IAS needs --split A or --split B"),
    (["--dataset", "CASIA_B", "--view", "12", "--length", "20"], "--view must be 0..10"),
    (["--length", "4", "--pre_train", "0", "--pre_epochs", "3"], "no pre-trained model at"),
    (["--scales", "joint,torso"], "--scales takes a comma-separated subset"),
    (["--length", "80"], "use --length 60 or less"),
    (["--length", "4", "--batch_size", "100000", "--pre_epochs", "1"], "make no full batch of 100000"),
])
def test_bad_input_gives_one_clear_line(tmp_path, monkeypatch, capsys, args, message):
    """SM-SGE.py's main in this process (the script's own guard; a subprocess adds only the
    interpreter's start, which test_bad_input_in_a_process_is_one_line_too covers)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("sm_sge_script", os.path.join(ROOT, "SM-SGE.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")      # the script sets it for --gpu
    assert script.main(args + ["--no_progress", "--gpu", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err) and message in err[-1]


def test_bad_input_in_a_process_is_one_line_too(tmp_path):
    proc = run("SM-SGE.py", ["--dataset", "KS20", "--no_progress"], tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "Datasets/KS20/6/KS20_train_npy_data not found" in proc.stderr.strip().splitlines()[-1]


def test_evaluate_bad_model_dir(tmp_path):
    proc = run("evaluate.py", ["--model_dir", "RN/nothing"], tmp_path)
    assert proc.returncode == 2 and "no checkpoint at RN/nothing" in proc.stderr
    proc = run("evaluate.py", ["--dataset", "KS20"], tmp_path)
    assert proc.returncode == 2 and "no saved classification model" in proc.stderr


def test_selection_val_never_reads_test_labels(tmp_path, monkeypatch):
    """With --selection val, training and model choice must not depend on test labels:
    scrambling them changes nothing until the final score."""
    from utils.orchestration import pipeline
    monkeypatch.chdir(tmp_path)
    real_load = pipeline.load_variant
    histories = []
    for scramble in (False, True):
        def load(variant, scramble=scramble):
            data = real_load(variant)
            if scramble:
                data.test_labels = np.random.default_rng(0).permutation(data.test_labels)
            return data
        monkeypatch.setattr(pipeline, "load_variant", load)
        result = pipeline.run_training(small_opts(), log=lambda *_: None)
        histories.append((result.reid_history, result.best_epoch, result.rank1))
    assert histories[0][0] == histories[1][0] and histories[0][1] == histories[1][1]
    assert histories[0][2] != histories[1][2]           # the final test score does use them


def test_seeded_runs_repeat_exactly(tmp_path, monkeypatch):
    from utils.orchestration import pipeline
    monkeypatch.chdir(tmp_path)
    a = pipeline.run_training(small_opts(selection="test", max_reid_epochs=2), log=lambda *_: None)
    b = pipeline.run_training(small_opts(selection="test", max_reid_epochs=2), log=lambda *_: None)
    assert a.reid_history == b.reid_history


def test_failed_save_leaves_an_unfinished_run_that_best_ignores(tmp_path, monkeypatch):
    """A crash while saving leaves the run folder without metrics.json (unfinished) and with
    its resume checkpoint: evaluate.py's 'best' never picks it, --resume can continue it."""
    from utils.orchestration import pipeline
    from utils.foundation import plots
    from utils.foundation.errors import UserError
    monkeypatch.chdir(tmp_path)

    def boom(*_):
        raise RuntimeError("disk full")
    monkeypatch.setattr(plots, "save_run_plots", boom)
    with pytest.raises(RuntimeError):
        pipeline.run_training(small_opts(save_flag=True, max_reid_epochs=1), log=lambda *_: None)
    (folder,) = (tmp_path / "RN" / "demo" / "4").iterdir()
    assert "metrics.json" not in os.listdir(folder) and "resume.npz" in os.listdir(folder)
    with pytest.raises(UserError, match="no saved classification model"):
        find_best_run(resolve(small_opts()))


def test_cached_encodings_and_first_step_equal_the_uncached_path(tmp_path, monkeypatch):
    """The cache holds exactly what the frozen encoder gives on a training batch, and the
    first Re-ID step on it has the uncached step's loss, up to float32 rounding."""
    from models.engine import active_engine
    from models.layers import ops, variable
    from models.sm_sge import ReIDClassifier
    from models.training import ReIDTrainer
    from utils.data.reid_data import load_variant
    monkeypatch.chdir(tmp_path)
    run = resolve(small_opts(pre_epochs=1))
    cfg = run.cfg
    data = load_variant(run.variant)
    seed_everything(0)
    encoder = build_encoder(cfg, build_model(cfg, run.layout))
    idx = training_order(cfg, data.train_labels)[0]
    x, y = data.train.sequences, data.train_labels
    cached = encoder.encode_all(x, cfg.batch_size)[idx]
    direct = np.asarray(encoder(x[idx]))
    # Same rows through the same maths; only the batch composition (and with it the
    # blocking of the matrix products) differs. Encodings are LSTM outputs (|h| < 1) after
    # f+1 steps of dot products of at most nodes*8 + H ~ 650 terms of size <= 1, so float32
    # rounding stays below 650 * eps ~ 1e-4 even in the worst case (no cancellation luck).
    np.testing.assert_allclose(cached, direct, rtol=0, atol=650 * np.finfo(np.float32).eps)

    losses = []
    for raw in (False, True):
        trainer = ReIDTrainer(ReIDClassifier(encoder.model.embedding_size, data.num_classes),
                              cfg.reid_lr, encoder)
        losses.append(trainer.train_batch(x[idx] if raw else cached, y[idx], raw=raw)[0])
    # First-order bound: |dL| <= sum |dL/de| * max |de| (+ rounding of L itself).
    classifier = ReIDClassifier(encoder.model.embedding_size, data.num_classes)
    enc = variable(cached, "encodings")
    _, grads = active_engine().gradients(lambda: {"loss": ops.mean(ops.sparse_categorical_crossentropy(
        y[idx], classifier(enc), from_logits=True))}, [enc])
    sensitivity = float(np.abs(grads["loss"][0]).sum())
    bound = 2 * sensitivity * float(np.abs(cached - direct).max()) + 16 * np.finfo(np.float32).eps * abs(losses[0])
    assert abs(losses[0] - losses[1]) <= bound, (losses, bound)


def test_cached_and_uncached_reid_stage_agree(tmp_path, monkeypatch):
    """Two epochs of the whole Re-ID stage with and without the cache: the same run but for
    float32 rounding. Adam divides each update by the root of its running squared gradient,
    so a weight whose gradient is near zero moves by up to lr per step whatever its sign
    noise: rounding differences grow through training instead of staying at 1e-7. After 2
    epochs, 1.6e-4 relative on the losses was seen on one AVX2 CPU: 1e-2 leaves room for
    other CPUs, while the exact equality of what is cached is checked tightly in the test
    above. Accuracies are fractions of sequences: one sequence may flip (abs 1.5/n)."""
    from utils.orchestration import pipeline
    monkeypatch.chdir(tmp_path)
    runs = [pipeline.run_training(small_opts(selection="test", max_reid_epochs=2, cache=c),
                                  log=lambda *_: None) for c in (True, False)]
    from utils.data.reid_data import load_variant
    run = resolve(small_opts())
    n_train = sum(len(b) for b in training_order(
        run.cfg, load_variant(run.variant).train_labels))
    one = 1.5 / runs[0].scored
    assert len(runs[0].reid_history) == len(runs[1].reid_history) == 2
    for a, b in zip(runs[0].reid_history, runs[1].reid_history):
        for key in ("train_loss", "sel_loss"):
            assert a[key] == pytest.approx(b[key], rel=1e-2)
        assert a["train_acc"] == pytest.approx(b["train_acc"], abs=1.5 / n_train)
        assert a["sel_acc"] == pytest.approx(b["sel_acc"], abs=one)
    assert runs[0].rank1 == pytest.approx(runs[1].rank1, abs=one)


def test_task_none_runs_reid_on_the_untrained_encoder(tmp_path, monkeypatch):
    """--task none (the paper's "without MSR"): no pre-training epoch, whatever
    --pre_epochs says; the saved encoder is the seeded initialisation."""
    from utils.orchestration import pipeline
    monkeypatch.chdir(tmp_path)
    lines = []
    result = pipeline.run_training(small_opts(task="none", pre_epochs=5, max_reid_epochs=1,
                                              selection="test"), log=lines.append)
    assert result.pretext_history == []
    assert any("--task none" in line for line in lines)
    run = resolve(small_opts(task="none"))
    cfg = run.cfg
    assert cfg.pre_epochs == 0
    folder = run.pretrained_dir()
    assert folder.endswith("_task-none")
    saved, fresh = build_model(cfg, run.layout), build_model(cfg, run.layout)
    from utils.foundation.checkpoints import load_module
    load_module(os.path.join(folder, "encoder.npz"), saved)
    for a, b in zip(saved.trainable_variables, fresh.trainable_variables):
        np.testing.assert_array_equal(np.asarray(a.numpy()), np.asarray(b.numpy()))


def test_reloading_a_pretrained_encoder_checks_what_it_was_trained_with(tmp_path, monkeypatch):
    """Pre-Trained folder names do not hold every setting (the layout, say): reloading an
    encoder trained with other settings is refused, naming the setting."""
    from utils.orchestration import pipeline
    from utils.foundation.errors import UserError
    from utils.orchestration.storage import load_config, save_config
    monkeypatch.chdir(tmp_path)
    pipeline.run_training(small_opts(pre_epochs=1, max_reid_epochs=1, selection="test"),
                          log=lambda *_: None)
    folder = resolve(small_opts(pre_epochs=1)).pretrained_dir()
    saved = load_config(folder)
    assert saved["layout"] == "kinect_v2" and saved["pre_epochs"] == 1
    pipeline.run_training(small_opts(pre_train=False, pre_epochs=1, max_reid_epochs=1,
                                     selection="test"), log=lambda *_: None)
    save_config(folder, dict(saved, layout="kinect_v1_other_order"))
    with pytest.raises(UserError, match="was trained with layout='kinect_v1_other_order'"):
        pipeline.run_training(small_opts(pre_train=False, pre_epochs=1, max_reid_epochs=1),
                              log=lambda *_: None)
    # the same settings on other training data (another split or held-out set under one
    # dataset name) is refused too: the encoder records a digest of its training sequences
    assert len(saved["training_data"]) == 16
    save_config(folder, dict(saved, training_data="0" * 16))
    with pytest.raises(UserError, match="was trained on other training data than this run's"):
        pipeline.run_training(small_opts(pre_train=False, pre_epochs=1, max_reid_epochs=1),
                              log=lambda *_: None)
