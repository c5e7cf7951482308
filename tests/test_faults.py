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

from tests.helpers import FAST, ROOT, small_demo, small_opts
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


@pytest.mark.slow
def test_evaluate_on_a_damaged_run_is_one_line(tmp_path):
    run = tmp_path / "RN" / "demo" / "4" / "run"
    run.mkdir(parents=True)
    from utils.orchestration.run import resolve
    from utils.orchestration.storage import save_config
    save_config(str(run), resolve(small_opts(), build=False).cfg.saved())
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
                                  f"file {tmp_path / 'afile'} is in the way; choose another folder")


def test_the_file_in_the_way_is_the_one_named(tmp_path):
    from utils.foundation.io import make_folder
    (tmp_path / "data").write_text("x")          # --data_dir data: the generated demo goes below
    with pytest.raises(UserError, match=rf"the file {tmp_path / 'data'} is in the way"):
        make_folder(str(tmp_path / "data" / "demo" / "6"))


def test_complex_valued_recordings_are_refused(tmp_path):
    path = tmp_path / "walk.npy"
    np.save(path, np.ones((40, 20, 3), np.complex64))
    with pytest.raises(RawDataError, match=r"walk\.npy: holds complex numbers \(complex64\); "
                                           r"coordinates must be real"):
        read_recording(str(path), KINECT_V1)


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


@pytest.mark.slow
def test_sigterm_saves_nothing_half_written_names_the_resume_command_and_resumes(tmp_path):
    args = list(FAST)
    args[args.index("--pre_epochs") + 1] = "3"
    proc = training(args, small_demo(tmp_path))
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


@pytest.mark.slow
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


# Text in other encodings than UTF-8, as other tools write it: each is one line naming the
# file and the encoding expected, through every reader (layouts, CSV and KGBD recordings,
# JSON records); UTF-8 with a byte-order mark is accepted.
FOREIGN_TEXT = {
    "latin-1": "{\"name\": \"Gelenk \u00e4\"}".encode("latin-1"),
    "cp1252": "{\"name\": \"k\u00f6rper \u2013 walk\"}".encode("cp1252"),
    "utf-16": "{\"name\": \"x\"}".encode("utf-16"),
    "binary": bytes(range(256)) * 4,
}


@pytest.mark.parametrize("encoding", sorted(FOREIGN_TEXT))
def test_a_layout_file_not_in_utf8_is_one_line(tmp_path, encoding):
    from utils.foundation.skeleton import get_layout
    path = tmp_path / "layout.json"
    path.write_bytes(FOREIGN_TEXT[encoding])
    with pytest.raises(UserError, match=rf"{path}: not UTF-8 text \(.*\); save the layout file as UTF-8"):
        get_layout(str(path))


def test_a_layout_file_with_a_byte_order_mark_is_read(tmp_path):
    from utils.foundation.skeleton import get_layout, layout_record
    path = tmp_path / "kinect.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(layout_record(KINECT_V1.as_data())).encode())
    assert get_layout(str(path)).joint_names == KINECT_V1.joint_names


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
def test_recordings_not_in_utf8_are_bad_files(tmp_path, encoding):
    csv = tmp_path / "walk.csv"
    csv.write_bytes("\u00e9".encode(encoding) + b"\n1,2,3\n")
    with pytest.raises(RawDataError, match=r"walk\.csv: not UTF-8 text .*save the recording as UTF-8"):
        read_recording(str(csv), KINECT_V1)
    write_kgbd_tree(tmp_path / "raw")
    first = sorted((tmp_path / "raw").rglob("*.txt"))[0]
    first.write_bytes(("\u00e9" + first.read_text()).encode(encoding))
    with pytest.raises(UserError, match=rf"{first.name}: not UTF-8 text"):
        prepare(str(tmp_path / "raw"), str(tmp_path / "out"), lengths=[4], log=lambda *_: None)


def test_a_run_record_not_in_utf8_is_one_line(tmp_path):
    from utils.orchestration.storage import load_config
    (tmp_path / "config.json").write_bytes(FOREIGN_TEXT["cp1252"])
    with pytest.raises(UserError, match=r"config\.json: not UTF-8 text .*the model folder is damaged"):
        load_config(str(tmp_path))


def test_long_numpy_errors_are_cut_after_a_whole_word():
    from utils.foundation.io import damage_detail
    message = ("cannot reshape array of size 12345 into shape (7,20,3) because the sizes "
               "differ entirely and beyond repair")
    text = damage_detail(ValueError(message))
    assert text.startswith("ValueError: ") and text.endswith(" ...")
    kept = text[len("ValueError: "):-len(" ...")]
    assert len(kept) <= 80 and message.startswith(kept) and message[len(kept)] == " "
    assert damage_detail(ValueError("short")) == "ValueError: short"


@pytest.mark.slow
def test_a_second_interrupt_during_the_clean_up_still_ends_in_one_line_and_130(tmp_path):
    proc = training(list(FAST), tmp_path)
    config = wait_for(tmp_path, "RN/demo/4/*/config.json", proc)
    assert config is not None
    for _ in range(3):                       # an impatient user: Ctrl-C, Ctrl-C, Ctrl-C
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
    _, err = proc.communicate(timeout=600)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("interrupted: stopped; nothing half-written")


# ----------------------------------------------------------------------------------------
# one writer per run folder; folders of dead runs; a bare --resume

def test_a_run_folder_has_one_writer(tmp_path):
    from utils.foundation.errors import EXIT_BUSY
    from utils.foundation.lock import FolderBusy, FolderLock
    run = RunFolder.start(str(tmp_path), "run", {"a": 1}, Budget(None), "TensorFlow on CPU")
    with pytest.raises(FolderBusy, match=rf"{tmp_path / 'run'} is in use by process {os.getpid()} "
                                         r"\(SM-SGE.py training, since [0-9: -]+\); wait for it"):
        FolderLock(str(tmp_path / "run"), "identify.py --enrol").acquire()
    assert FolderBusy("x").exit_code == EXIT_BUSY == 4
    with pytest.raises(FolderBusy):
        RunFolder.reopen(str(tmp_path / "run"), str(tmp_path), {"a": 1}, Budget(None))
    run.lock.release()                                   # the process is done with it
    FolderLock(str(tmp_path / "run"), "next").acquire().release()


@pytest.mark.slow
def test_a_second_training_process_on_a_run_in_use_exits_4_naming_the_holder(tmp_path):
    """SM-SGE.py --resume on a run another process holds: exit code 4 and one line naming
    the holder; nothing in the folder touched. (The run's config.json is all the process
    reads before the lock refuses it.)"""
    from utils.foundation.lock import FolderLock
    from utils.orchestration.cli import training_options, training_parser
    from utils.orchestration.run import resolve
    args = list(FAST)
    folder = tmp_path / "RN" / "demo" / "4" / "run"
    folder.mkdir(parents=True)
    saved = resolve(training_options(training_parser().parse_args(args)), build=False).cfg.saved()
    (folder / "config.json").write_text(json.dumps(saved))
    with FolderLock(str(folder), "a test holding the run"):
        busy = subprocess.run([sys.executable, os.path.join(ROOT, "SM-SGE.py")] + args
                              + ["--resume", str(folder)], cwd=tmp_path, capture_output=True,
                              text=True, timeout=900)
    assert busy.returncode == 4 and "Traceback" not in busy.stderr, busy.stderr[-2000:]
    since = busy.stderr.split("since ")[1].split(")")[0]
    assert busy.stderr.strip().splitlines()[-1] == (
        f"error: {folder} is in use by process {os.getpid()} (a test holding the run, since "
        f"{since}); wait for it to finish, or stop that process, then try again")
    assert sorted(p.name for p in folder.iterdir()) == [".lock", "config.json"]


def test_folders_of_runs_that_died_before_their_first_checkpoint_are_removed(tmp_path):
    from utils.foundation.lock import FolderLock
    from utils.orchestration.resume import remove_dead_runs
    for name in ("dead", "alive", "resumable", "finished"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
    (tmp_path / "resumable" / "resume.npz").write_bytes(b"x")
    (tmp_path / "finished" / "metrics.json").write_text("{}")
    with FolderLock(str(tmp_path / "alive"), "a run in its first epoch"):
        assert remove_dead_runs(str(tmp_path)) == [str(tmp_path / "dead")]
    assert sorted(os.listdir(tmp_path)) == ["alive", "finished", "resumable"]


def test_a_bare_resume_takes_the_newest_run_with_the_same_settings(tmp_path):
    from utils.orchestration.resume import latest_resumable
    for i, seed in enumerate((0, 1, 0, 2)):
        folder = tmp_path / f"run{i}"
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"dataset": "demo", "seed": seed}))
        (folder / "resume.npz").write_bytes(b"x")
        os.utime(folder / "resume.npz", (1000 + i, 1000 + i))
    assert latest_resumable(str(tmp_path), {"dataset": "demo", "seed": 0}) == str(tmp_path / "run2")
    assert latest_resumable(str(tmp_path), {"dataset": "demo", "seed": 1}) == str(tmp_path / "run1")
    with pytest.raises(UserError, match=r"no unfinished run under .* with these settings; the newest, "
                                        r".*run3, has seed=2 \(now 5\)"):
        latest_resumable(str(tmp_path), {"dataset": "demo", "seed": 5})


# ----------------------------------------------------------------------------------------
# leakage: retrieval scored with an encoder that saw the walks

def test_retrieval_on_a_classification_encoder_that_saw_the_walks_is_refused(tmp_path):
    from utils.orchestration.run import resolve
    from utils.orchestration.pipeline import seen_walks_note
    write_kgbd_tree(tmp_path / "raw")
    prepare(str(tmp_path / "raw"), str(tmp_path / "data"), lengths=[4], log=lambda *_: None)
    run = resolve(small_opts(dataset="KGBD", data_dir=str(tmp_path / "data"), protocol="retrieval"))
    manifest = json.loads((tmp_path / "data" / "KGBD" / "4" / "manifest.json").read_text())
    trained, searched = set(), set()
    for person in manifest["protocols"]["classification"]["persons"].values():
        trained |= {(person["folder"], r) for r, v in person["recordings"].items() if "train" in v["role"]}
    for person in manifest["protocols"]["retrieval"]["persons"].values():
        searched |= {(person["folder"], r) for r, v in person["recordings"].items()
                     if v["role"] in ("probe", "gallery")}
    expected = f"{len(searched & trained)} of {len(searched)} probe and gallery walks"
    assert searched & trained                 # the tree's split does share walks
    with pytest.raises(UserError, match=rf"^{expected} were in this encoder's pre-training data; "
                                        r"score a retrieval run instead .* --allow_seen_walks 1"):
        seen_walks_note(run, "classification", allowed=False)
    assert seen_walks_note(run, "classification", allowed=True).startswith(expected)
    assert seen_walks_note(run, "retrieval", allowed=False) is None   # its own training walks
    (tmp_path / "data" / "KGBD" / "4" / "manifest.json").unlink()     # the authors' files have none
    assert seen_walks_note(run, "classification", allowed=False) is None


def test_evaluate_best_without_a_run_says_so_before_generating_any_data(tmp_path):
    from utils.orchestration.pipeline import run_evaluation
    os.chdir(tmp_path)
    with pytest.raises(UserError, match=r"no saved classification model for demo f=4 under "):
        run_evaluation(small_opts(model_dir="best", data_dir=str(tmp_path / "data")),
                       log=lambda *_: None)
    assert not (tmp_path / "data").exists()


# ----------------------------------------------------------------------------------------
# the preparation: recordings it does not use, leftovers, one preparation at a time

def test_recordings_the_preparation_does_not_use_are_named_and_counted(tmp_path):
    raw = write_kgbd_tree(tmp_path / "raw")           # person 4's walk 4: 25 frames
    lines = []
    result = prepare(str(raw), str(tmp_path / "out"), lengths=[6], log=lines.append)
    why = "25 frames: shorter than the 26 that one window of 6 needs after trimming 10 at each end"
    assert f"f=6: Person004/4.txt not used ({why})" in lines
    assert result.manifests[6]["unused_recordings"] == {"Person004/4.txt": why}
    saved = json.loads((tmp_path / "out" / "KGBD" / "6" / "manifest.json").read_text())
    assert saved["unused_recordings"] == {"Person004/4.txt": why}


def test_a_preparation_killed_outright_leaves_nothing_the_next_one_keeps(tmp_path):
    from utils.foundation.lock import FolderBusy, FolderLock
    raw = write_kgbd_tree(tmp_path / "raw")
    stale = tmp_path / "out" / "KGBD" / ".tmp-prepare-killed"
    (stale / "6").mkdir(parents=True)
    (stale / "6" / "big.npy").write_bytes(b"x" * 1000)
    with FolderLock(str(tmp_path / "out" / "KGBD"), "another preparation"):
        with pytest.raises(FolderBusy, match="is in use by process .*another preparation"):
            prepare(str(raw), str(tmp_path / "out"), lengths=[6], log=lambda *_: None)
    assert stale.exists()                             # not touched while another one runs
    prepare(str(raw), str(tmp_path / "out"), lengths=[6], log=lambda *_: None)
    assert sorted(p.name for p in (tmp_path / "out" / "KGBD").iterdir()) == [".lock", "6"]


def test_identify_never_suggests_resuming_a_run_without_a_checkpoint(tmp_path):
    from utils.orchestration.identify import load_identifier
    from utils.orchestration.storage import save_config
    from utils.orchestration.run import resolve
    save_config(str(tmp_path / "run"), resolve(small_opts(), build=False).cfg.saved())   # config.json alone
    with pytest.raises(UserError, match=r"holds neither encoder\.npz nor a resume checkpoint: a run "
                                        r"that ended before its first epoch"):
        load_identifier(str(tmp_path / "run"))


def test_a_signal_that_lands_inside_c_code_is_still_a_clean_stop_not_a_traceback(capsys):
    # SIGTERM while TensorFlow converts a NumPy array (a resumed run restoring its weights)
    # surfaces as SystemError "returned a result with an exception set", the signal's
    # exception as its context: seen once as a traceback instead of the one-line stop.
    from utils.foundation.errors import EXIT_SIGTERM, Terminated, guarded

    def work():
        try:
            raise Terminated()
        except Terminated as stop:
            stop.run_dir = "RN/KGBD/6/run"
            raise SystemError("<built-in method __array__> returned a result with an exception set")

    assert guarded(work, "SM-SGE.py", ["--dataset", "KGBD"]) == EXIT_SIGTERM
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["SIGTERM: stopped; nothing half-written was left behind; continue with: "
                   "python SM-SGE.py --dataset KGBD --resume RN/KGBD/6/run"]

    def crash():   # a real error is not taken for a stop
        raise SystemError("something else")
    with pytest.raises(SystemError):
        guarded(crash, "SM-SGE.py", [])
