"""Resumable runs: a run stopped after any epoch (by --time_budget, or killed) and resumed
ends exactly as the same run uninterrupted, on the same CPU; other settings are refused."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.helpers import FAST, ROOT, small_demo, small_opts
from utils.foundation.errors import UserError
from utils.orchestration.run import resolve

TIMING_KEYS = ("pretrain_seconds", "reid_seconds", "resumed", "parts")


def finished_run(parent):
    (folder,) = [p for p in parent.iterdir() if (p / "metrics.json").exists()]
    return folder


def assert_same_run(a, b):
    """Every value of metrics.json but the timings, and every saved weight, bit for bit."""
    ma, mb = (json.loads((f / "metrics.json").read_text()) for f in (a, b))
    assert set(ma) - set(TIMING_KEYS) == set(mb) - set(TIMING_KEYS)
    for key in set(ma) - set(TIMING_KEYS):
        assert ma[key] == mb[key], key
    for name in ("encoder.npz", "classifier.npz"):
        with np.load(a / name) as x, np.load(b / name) as y:
            assert x.files == y.files
            for k in x.files:
                np.testing.assert_array_equal(x[k], y[k])
    assert not (b / "resume.npz").exists()
    return ma, mb


@pytest.mark.parametrize("variant", [dict(selection="test"),
                                     dict(selection="val", fresh_draws=True)],
                         ids=["reference", "val-fresh_draws"])
@pytest.mark.slow
def test_run_stopped_after_every_epoch_and_resumed_equals_uninterrupted(tmp_path, variant):
    from utils.orchestration import pipeline
    opts = small_opts(save_flag=True, pre_epochs=2, max_reid_epochs=3, patience=5, **variant)
    small_demo(tmp_path / "whole")
    small_demo(tmp_path / "chunks")
    os.chdir(tmp_path / "whole")
    pipeline.run_training(opts, log=lambda *_: None)
    os.chdir(tmp_path / "chunks")
    lines, chunks = [], 0
    result = pipeline.run_training(opts.replace(time_budget=0.0), log=lines.append)
    while isinstance(result, pipeline.Stopped):        # a budget of 0: every chunk is one epoch
        chunks += 1
        assert chunks < 10
        result = pipeline.run_training(opts.replace(time_budget=0.0, resume="latest"),
                                       log=lines.append)
    assert chunks == 5                   # 2 pre-training + 3 Re-ID epochs, one per chunk
    assert any("--resume" in line and "time_budget" in line for line in lines)
    assert any(line.startswith("Resuming ") for line in lines)
    parent = os.path.join("RN", "demo", "4")
    _, resumed = assert_same_run(finished_run(tmp_path / "whole" / parent),
                                 finished_run(tmp_path / "chunks" / parent))
    assert [r["stage"] for r in resumed["resumed"]] == ["pretrain", "pretrain", "reid", "reid", "reid"]
    assert [r["epochs_done"] for r in resumed["resumed"]] == [1, 2, 1, 2, 3]


def run(args, cwd, **kw):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "SM-SGE.py")] + args, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kw)


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_result(tmp_path):
    args = list(FAST)
    args[args.index("--pre_epochs") + 1] = "3"
    small_demo(tmp_path / "whole")
    small_demo(tmp_path / "killed")
    whole = run(args, tmp_path / "whole")
    killed = run(args, tmp_path / "killed")
    checkpoint = None
    deadline = time.time() + 600
    while checkpoint is None and time.time() < deadline and killed.poll() is None:
        found = list((tmp_path / "killed").glob("RN/demo/4/*/resume.npz"))
        checkpoint = found[0] if found else None
        time.sleep(0.2)
    assert checkpoint is not None, "no checkpoint appeared before the run ended"
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert whole.wait(timeout=900) == 0, whole.stderr.read()[-2000:]
    resumed = run(args + ["--resume"], tmp_path / "killed")
    out, err = resumed.communicate(timeout=900)
    assert resumed.returncode == 0, err[-2000:]
    assert "Resuming " in out
    parent = os.path.join("RN", "demo", "4")
    assert_same_run(finished_run(tmp_path / "whole" / parent), finished_run(tmp_path / "killed" / parent))


@pytest.mark.slow
def test_resume_refuses_other_settings_and_missing_runs(tmp_path, monkeypatch):
    from utils.orchestration import pipeline
    monkeypatch.chdir(small_demo(tmp_path))
    with pytest.raises(UserError, match="no unfinished run under"):
        pipeline.run_training(small_opts(save_flag=True, resume="latest"), log=lambda *_: None)
    opts = small_opts(save_flag=True, pre_epochs=2, time_budget=0.0)
    stopped = pipeline.run_training(opts, log=lambda *_: None)
    assert isinstance(stopped, pipeline.Stopped)
    # a bare --resume passes over runs with other settings, and says which it passed over
    with pytest.raises(UserError, match=r"no unfinished run under .* with these settings; the "
                                        r"newest, .*, has seed=0 \(now 1\)"):
        pipeline.run_training(opts.replace(seed=1, resume="latest"), log=lambda *_: None)
    with pytest.raises(UserError, match=r"cannot resume .* other settings: seed=0 when started, 1 now"):
        pipeline.run_training(opts.replace(seed=1, resume=stopped.run_dir), log=lambda *_: None)
    with pytest.raises(UserError, match=r"other settings: pre_lr="):
        pipeline.run_training(opts.replace(pre_lr=0.5, resume=stopped.run_dir), log=lambda *_: None)
    with pytest.raises(UserError, match="need the run folder"):
        pipeline.run_training(small_opts(save_flag=False, time_budget=1.0), log=lambda *_: None)


@pytest.mark.slow
def test_snapshot_during_pre_training_is_the_shorter_run_s_encoder(tmp_path):
    """--snapshot_epochs 1 in a 2-epoch pre-training saves, where a --pre_epochs 1 run would,
    exactly that run's encoder and settings (the learning curve's premise); a later
    --pre_epochs 1 --pre_train 0 run takes it."""
    from utils.orchestration import pipeline
    opts = small_opts(pre_epochs=2, max_reid_epochs=1, patience=5, selection="test")
    logs = {}
    for name, changes in (("long", dict(snapshot_epochs=[1])), ("short", dict(pre_epochs=1))):
        os.chdir(small_demo(tmp_path / name))
        logs[name] = []
        pipeline.run_training(opts.replace(**changes), log=logs[name].append)
    assert [line.startswith("Encoder after 1 pre-training epochs saved to") for line in logs["long"]
            ].count(True) == 1
    folder = resolve(opts.replace(pre_epochs=1)).pretrained_dir()
    with np.load(tmp_path / "long" / folder / "encoder.npz") as a, \
            np.load(tmp_path / "short" / folder / "encoder.npz") as b:
        assert a.files == b.files
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k])
    assert json.loads((tmp_path / "long" / folder / "config.json").read_text()) == \
        json.loads((tmp_path / "short" / folder / "config.json").read_text())
    os.chdir(tmp_path / "long")
    lines = []
    pipeline.run_training(opts.replace(pre_epochs=1, pre_train=False), log=lines.append)
    assert any(line.startswith("Loaded pre-trained encoder from") for line in lines)


def test_a_checkpoint_of_the_earlier_format_is_refused_in_one_line(tmp_path):
    """Before the typed training state, variables were stored as one list (var00000, ...)
    and sliced by position; such a checkpoint is refused, not misread."""
    from utils.orchestration.resume import load_state, save_state
    from utils.orchestration.storage import RESUME_FILE
    np.savez(tmp_path / RESUME_FILE, var00000=np.zeros(3), **{"extra:draw0": np.arange(2)},
             info=np.array(json.dumps(dict(stage="pretrain", epoch=1))))
    with pytest.raises(UserError, match="written by an earlier version"):
        load_state(str(tmp_path))
    save_state(str(tmp_path), dict(stage="pretrain", epoch=2),
               dict(encoder=[np.ones(2), np.zeros((2, 3))], draws=[np.arange(3)]))
    state = load_state(str(tmp_path))
    assert state.stage == "pretrain" and state.info["epoch"] == 2
    assert [a.shape for a in state.arrays["encoder"]] == [(2,), (2, 3)]
    np.testing.assert_array_equal(state.arrays["draws"][0], np.arange(3))


def test_the_time_left_of_a_resumed_pre_training_follows_this_machines_pace():
    """131 epochs done elsewhere at 4 s each, then 4 here at 125 s each: 25 epochs left take
    25 x 125 s, not the 28-second average of all 135."""
    from utils.foundation.train_loop import PretrainState
    from utils.orchestration.stages import _duration, time_left
    since = (131, 131 * 4.0)
    state = PretrainState(epoch=135, seconds=131 * 4.0 + 4 * 125.0)
    assert time_left(160, state, since) == pytest.approx(25 * 125.0)
    assert time_left(160, PretrainState(epoch=2, seconds=20.0), (0, 0.0)) == pytest.approx(1580.0)
    # as the epoch line shows it: under a minute in seconds, not "0 min"
    assert [_duration(s) for s in (24.0, 3125.0, 3720.0)] == ["24 s", "52 min", "1 h 02 min"]


@pytest.mark.slow
def test_evaluate_scores_the_classifier_an_unfinished_run_has_kept(tmp_path):
    """evaluate.py on an unfinished --selection val run scores the classifier kept so far in
    its resume checkpoint: the same test Rank-1 as a finished run that stopped at that epoch
    (same CPU and engine), and the unfinished run stays resumable."""
    from utils.orchestration import pipeline
    opts = small_opts(save_flag=True, pre_epochs=1, patience=5, selection="val")
    small_demo(tmp_path / "whole")
    small_demo(tmp_path / "chunks")
    os.chdir(tmp_path / "whole")
    whole = pipeline.run_training(opts.replace(max_reid_epochs=2), log=lambda *_: None)
    os.chdir(tmp_path / "chunks")
    chunked = opts.replace(max_reid_epochs=3, time_budget=0.0)
    stopped = pipeline.run_training(chunked, log=lambda *_: None)       # after pre-training
    with pytest.raises(UserError, match="still in pre-training: there is no classifier"):
        pipeline.run_evaluation(opts.replace(model_dir=stopped.run_dir), log=lambda *_: None)
    for _ in range(2):                                                  # Re-ID epochs 1, 2
        stopped = pipeline.run_training(chunked.replace(resume="latest"), log=lambda *_: None)
    lines = []
    scored = pipeline.run_evaluation(opts.replace(model_dir=stopped.run_dir), log=lines.append)
    assert any(line.startswith("Unfinished run: 2 Re-ID epochs done") for line in lines)
    assert scored.rank1 == whole.rank1 and scored.nauc == whole.nauc
    assert os.path.exists(os.path.join(stopped.run_dir, "resume.npz"))
