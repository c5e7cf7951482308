"""Faults a user can cause or meet: damaged files, short recordings, a full or read-only
disk, signals, leftovers, two runs starting at once, file modes. Each ends in one line that
names the file and what to do, and leaves nothing misleading on disk."""
import errno
import json
import multiprocessing
import os
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.helpers import FAST, ROOT, small_opts
from tests.helpers import kgbd_text, raw_frames, write_kgbd_tree
from utils.data.prepare_dataset import prepare, window_starts
from utils.data.raw_skeletons import RawDataError, read_recording
from utils.foundation.checkpoints import load_module
from utils.foundation.errors import UserError
from utils.foundation.io import atomic_save_json, atomic_save_npz, remove_leftovers
from utils.foundation.skeleton import KINECT_V1
from utils.orchestration.resume import Budget, RunFolder, load_state


def damage(path, how):
    data = open(path, "rb").read()
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "empty":
        data = b""
    elif how == "middle":           # the archive's directory intact, a member's bytes not
        mid = len(data) // 2
        data = data[:mid] + bytes(b ^ 0xFF for b in data[mid:mid + 64]) + data[mid + 64:]
    open(path, "wb").write(data)


def npz(path, n=4):
    atomic_save_npz(str(path), {f"{i:04d}:w": np.arange(1000.0) + i for i in range(n)})
    return path


class NoVariables:
    trainable_variables = []


@pytest.mark.parametrize("how", ["truncated", "empty", "middle"])
def test_damaged_weights_file_is_one_line(tmp_path, how):
    path = npz(tmp_path / "encoder.npz")
    damage(path, how)
    with pytest.raises(UserError, match=r"cannot read weights file .*encoder\.npz: it is damaged "
                                        r"\(.*\); train the model again"):
        load_module(str(path), NoVariables())


@pytest.mark.parametrize("how", ["truncated", "empty", "middle"])
def test_damaged_resume_checkpoint_names_the_folder_to_delete(tmp_path, how):
    folder = tmp_path / "run"
    folder.mkdir()
    atomic_save_npz(str(folder / "resume.npz"), {"info": np.array(json.dumps({"stage": "pretrain"})),
                                                 "encoder:00000": np.arange(5000.0)})
    damage(folder / "resume.npz", how)
    with pytest.raises(UserError, match=f"the checkpoint is damaged .*delete the folder {folder} "):
        load_state(str(folder))


def test_evaluate_on_a_damaged_run_is_one_line(tmp_path):
    run = tmp_path / "RN" / "demo" / "4" / "run"
    run.mkdir(parents=True)
    from utils.orchestration.config import resolve
    from utils.orchestration.storage import save_config
    save_config(str(run), resolve(small_opts()).saved())
    npz(run / "encoder.npz")
    damage(run / "encoder.npz", "middle")
    out = subprocess.run([sys.executable, os.path.join(ROOT, "evaluate.py"), "--model_dir", str(run)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    assert out.returncode == 2, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith(f"error: cannot read weights file {run}")


@pytest.mark.parametrize("kind", ["empty", "npz", "truncated"])
def test_damaged_recordings_are_bad_files_that_skip_bad_skips(tmp_path, kind):
    path = tmp_path / "walk.npy"
    frames = raw_frames(1, 1, 40)
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "npz":
        with open(path, "wb") as fh:
            np.savez(fh, frames=frames)
    else:
        np.save(path, frames)
        damage(path, "truncated")
    with pytest.raises(RawDataError, match=str(path)):
        read_recording(str(path), KINECT_V1)


def test_damaged_dataset_array_is_one_line(tmp_path):
    from utils.data.reid_data import _load_array
    path = tmp_path / "ids.npy"
    with open(path, "wb") as fh:
        np.savez(fh, a=np.zeros(3))
    with pytest.raises(UserError, match="an .npz archive, not one .npy array"):
        _load_array(str(path), "ids")
    path.write_bytes(b"")
    with pytest.raises(UserError, match="it is damaged"):
        _load_array(str(path), "ids")


# ----------------------------------------------------------------------------------------
# short recordings

def test_recordings_of_twenty_frames_or_fewer_have_no_windows():
    for count in (0, 5, 20, 21):
        kept, starts = window_starts(raw_frames(1, 1, count), 6)
        assert starts == [] and len(kept) == max(0, count - 20)


def test_short_recordings_are_left_out_and_only_short_ones_leave_no_folder(tmp_path):
    raw = write_kgbd_tree(tmp_path / "raw")
    (raw / "Data" / "Person001" / "9.txt").write_text(kgbd_text(raw_frames(1, 9, 15)))
    result = prepare(str(raw), str(tmp_path / "out"), lengths=(6,), log=lambda *_: None)
    assert 6 in result.manifests
    short = tmp_path / "short"
    for pid in (1, 2):
        folder = short / "Data" / f"Person{pid:03d}"
        folder.mkdir(parents=True)
        for w in (1, 2):
            (folder / f"{w}.txt").write_text(kgbd_text(raw_frames(pid, w, 12 + w)))
    with pytest.raises(UserError, match="shorter than 26 frames"):
        prepare(str(short), str(tmp_path / "out2"), lengths=(6,), log=lambda *_: None)
    assert not (tmp_path / "out2").exists()


def test_prepare_out_naming_a_file_is_one_line(tmp_path):
    raw = write_kgbd_tree(tmp_path / "raw")
    (tmp_path / "afile").write_text("x")
    out = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "prepare_kgbd.py"), str(raw / "Data"),
                          "--lengths", "6", "--out", str(tmp_path / "afile")],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip() == (f"error: cannot create folder {tmp_path / 'afile' / 'KGBD'}: the "
                                  f"file {tmp_path / 'afile' / 'KGBD'} is in the way; choose another folder")


# ----------------------------------------------------------------------------------------
# the disk

@pytest.mark.parametrize("code, advice", [(errno.ENOSPC, "free some space"),
                                          (errno.EROFS, "the folder is not writable")])
def test_a_failed_write_is_one_line_and_leaves_no_temporary_file(tmp_path, monkeypatch, code, advice):
    def full(*_args, **_kw):
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr(json, "dump", full)
    with pytest.raises(UserError, match=f"cannot write {tmp_path / 'm.json'}: .*; {advice}"):
        atomic_save_json(str(tmp_path / "m.json"), {"a": 1})
    assert os.listdir(tmp_path) == []


def test_a_read_only_folder_is_one_line(tmp_path, monkeypatch):
    import tempfile

    def refused(*_args, **_kw):   # what a read-only folder answers (root ignores chmod)
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
    monkeypatch.setattr(tempfile, "mkstemp", refused)
    with pytest.raises(UserError, match="the folder is not writable: choose a writable one"):
        atomic_save_npz(str(tmp_path / "x.npz"), {"a": np.zeros(2)})


def test_a_run_failing_before_its_first_checkpoint_leaves_no_folder(tmp_path, monkeypatch):
    from utils.orchestration import pipeline

    def no_space(*_args, **_kw):
        raise UserError("cannot write somewhere: No space left on device; free some space")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(pipeline, "pretrain_or_load", no_space)
    with pytest.raises(UserError, match="No space left"):
        pipeline.run_training(small_opts(save_flag=True, pre_epochs=1), log=lambda *_: None)
    assert list((tmp_path / "RN" / "demo" / "4").iterdir()) == []


def test_files_follow_the_umask(tmp_path):
    import importlib
    from utils.foundation import io
    old = os.umask(0o022)
    try:
        importlib.reload(io)
        io.atomic_save_json(str(tmp_path / "a.json"), {})
        assert stat.S_IMODE(os.stat(tmp_path / "a.json").st_mode) == 0o644
    finally:
        os.umask(old)
        importlib.reload(io)


# ----------------------------------------------------------------------------------------
# two runs at once, leftovers

def _start(args):
    parent, barrier = args
    barrier.wait()
    return RunFolder.start(parent, "same", {"a": 1}, Budget(None)).path


def test_runs_starting_at_the_same_instant_get_their_own_folders(tmp_path):
    ctx = multiprocessing.get_context("fork")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(6)
        with ctx.Pool(6) as pool:
            paths = pool.map(_start, [(str(tmp_path), barrier)] * 6)
    assert len(set(paths)) == 6
    assert sorted(os.listdir(tmp_path)) == sorted(["same"] + [f"same-{i}" for i in range(1, 6)])


def test_leftover_temporary_files_are_removed(tmp_path):
    (tmp_path / ".tmp-abc.npz").write_bytes(b"x" * 100)
    (tmp_path / "keep.npz").write_bytes(b"x")
    assert remove_leftovers(str(tmp_path)) == 1
    assert os.listdir(tmp_path) == ["keep.npz"]


# ----------------------------------------------------------------------------------------
# signals

def training(args, cwd):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    # a suite started in the background inherits SIGINT ignored, and Python then keeps it so
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "SM-SGE.py")] + args, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for(pattern_dir, glob, proc, seconds=600):
    deadline = time.time() + seconds
    while time.time() < deadline and proc.poll() is None:
        found = list(pattern_dir.glob(glob))
        if found:
            return found[0]
        time.sleep(0.1)
    return None


def test_sigterm_saves_nothing_half_written_names_the_resume_command_and_resumes(tmp_path):
    args = list(FAST)
    args[args.index("--pre_epochs") + 1] = "3"
    proc = training(args, tmp_path)
    checkpoint = wait_for(tmp_path, "RN/demo/4/*/resume.npz", proc)
    assert checkpoint is not None, "no checkpoint appeared before the run ended"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 143, err[-2000:]
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    folder = checkpoint.parent
    assert line.startswith("SIGTERM: stopped; nothing half-written was left behind; continue with: "
                           "python SM-SGE.py ")
    assert line.endswith(f" --resume {os.path.relpath(folder, tmp_path)}")
    load_state(str(folder))                                   # a readable checkpoint
    (folder / ".tmp-killed.npz").write_bytes(b"x" * 1000)    # what a SIGKILL mid-write leaves
    command = line.split("continue with: ", 1)[1].split()[2:]
    resumed = training(command, tmp_path)
    out, err = resumed.communicate(timeout=900)
    assert resumed.returncode == 0, err[-2000:]
    assert "Resuming " in out
    assert (folder / "metrics.json").exists() and not list(folder.glob(".tmp-*"))


def test_interrupt_before_the_first_checkpoint_removes_the_run_folder(tmp_path):
    proc = training(list(FAST), tmp_path)
    config = wait_for(tmp_path, "RN/demo/4/*/config.json", proc)
    assert config is not None
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=600)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    assert proc.returncode == 130, err[-2000:]
    line = err.strip().splitlines()[-1]
    if "continue with" in line:   # the first epoch ended first: then it must be resumable
        assert (config.parent / "resume.npz").exists()
    else:
        assert line == ("interrupted: stopped; nothing half-written was left behind; the run had "
                        "not finished its first epoch, so there is nothing to resume")
        assert not config.parent.exists()
