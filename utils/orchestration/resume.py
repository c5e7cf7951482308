"""Resumable runs: the run folder, its resume checkpoint, and the wall-clock budget.

A training run writes its folder under RN/ when it starts (config.json), then a resume
checkpoint at the end of every epoch of either stage (one file, replaced atomically: never
half-written, only the latest kept). A finished run has metrics.json and no checkpoint.

The checkpoint holds the stage's typed state (utils/foundation/train_loop.py): a JSON record (the
stage and epochs done, histories, the random generator's state, the early-stopping
counters) and named groups of arrays: the encoder's weights, the optimisers' slots and step
counters, the classifier, the draws, the best classifier so far, the training order. On the
same CPU and engine a resumed run ends exactly as an uninterrupted one (tests/test_resume.py).
"""
import json
import os
import shutil
import time
from contextlib import contextmanager
from typing import Dict, List, Optional, Tuple

import numpy as np

from utils.foundation.errors import UserError
from utils.foundation.lock import FolderLock, is_locked
from utils.foundation.io import (DAMAGED, atomic_save_npz, damage_detail, jsonable, make_folder,
                      remove_leftovers, write_failure)
from utils.orchestration.config import RunConfig, fields_affecting
from utils.orchestration.storage import (CONFIG_FILE, METRICS_FILE, RESUME_FILE, load_config,
                                         save_config, unfinished_runs)

TRAINING = "SM-SGE.py training"   # what a training process holds a run folder's lock for

# Besides the operational settings (not saved), the environment ones may differ when resuming
# (utils/orchestration/config.py AFFECTS): a run may continue on the other engine, or with its data moved.
MAY_DIFFER = fields_affecting("environment")


class TimeBudgetReached(Exception):
    """Raised at the end of an epoch once --time_budget is spent (after the checkpoint)."""


class Budget:
    def __init__(self, minutes: Optional[float]):
        self.deadline = None if minutes is None else time.time() + 60.0 * minutes

    def spent(self) -> bool:
        return self.deadline is not None and time.time() >= self.deadline


def first_difference(saved: dict, current: dict) -> Optional[Tuple[str, object, object]]:
    """(key, saved value, current value) of the first setting, in the current settings'
    order, whose saved (JSON) value differs; None when all agree. A setting the saved
    record lacks (added by a later version) agrees when it has its default value."""
    defaults = RunConfig().saved()
    for key, value in current.items():
        if key in MAY_DIFFER or (key not in saved and key in defaults and value == defaults[key]):
            continue
        old = saved.get(key)
        if isinstance(value, tuple):   # JSON has no tuples: compare as the saved list
            value = list(value)
        if old != value:
            return key, old, value
    return None


class ResumeState:
    """What one checkpoint holds: `info` (JSON-able) and `arrays` ({group: [arrays]})."""

    def __init__(self, info: dict, arrays: Dict[str, List[np.ndarray]]):
        self.info, self.arrays = info, arrays

    @property
    def stage(self) -> str:
        return self.info["stage"]


def save_state(folder: str, info: dict, arrays: Dict[str, List[np.ndarray]]) -> None:
    out = {f"{group}:{i:05d}": np.asarray(a) for group, values in arrays.items()
           for i, a in enumerate(values)}
    out["info"] = np.array(json.dumps(info, default=jsonable))
    atomic_save_npz(os.path.join(folder, RESUME_FILE), out)


def load_state(folder: str) -> ResumeState:
    path = os.path.join(folder, RESUME_FILE)
    if not os.path.isfile(path):
        raise UserError(f"{folder} holds no resume checkpoint ({RESUME_FILE}); it is finished "
                        f"or not a run folder")
    try:
        with np.load(path) as data:
            info = json.loads(str(data["info"]))
            arrays: Dict[str, List[np.ndarray]] = {}
            for key in sorted(k for k in data.files if ":" in k):
                arrays.setdefault(key.rsplit(":", 1)[0], []).append(data[key])
    except DAMAGED as exc:
        # Only the latest checkpoint is kept: there is no earlier state to go back to.
        raise UserError(f"cannot read {path}: the checkpoint is damaged ({damage_detail(exc)}); "
                        f"delete the folder {folder} and start the run again (a bare --resume "
                        f"then takes the next newest unfinished run)") from None
    if "encoder" not in arrays:
        raise UserError(f"{path} was written by an earlier version of this project; finish the "
                        f"run with that version, or start it again")
    return ResumeState(info, arrays)


class RunFolder:
    """The folder of one training run, from its start: config.json at once, the resume
    checkpoint after every epoch, the final files (metrics.json last) at the end. One process
    writes it at a time (utils/foundation/lock.py); `parts` records when, from which epoch and
    on which engine (name, version, device) each process worked on it."""

    def __init__(self, path: str, budget: Budget, state: Optional[ResumeState] = None,
                 lock: Optional[FolderLock] = None):
        self.path, self.budget, self.state = path, budget, state
        self.parts = list(state.info.get("parts", [])) if state else []
        self.lock = lock or FolderLock(path, TRAINING)

    @property
    def resumed(self) -> List[dict]:
        """The parts after the first: every resumption of the run."""
        return self.parts[1:]

    @classmethod
    def start(cls, parent: str, name: str, config: dict, budget: Budget,
              device: Optional[str] = None) -> "RunFolder":
        make_folder(parent)
        path, suffix = os.path.join(parent, name), 1
        while True:   # mkdir either creates the folder or fails: two runs never share one
            try:
                os.mkdir(path)
                break
            except FileExistsError:
                path, suffix = os.path.join(parent, f"{name}-{suffix}"), suffix + 1
            except OSError as exc:
                raise write_failure(path, exc) from None
        run = cls(path, budget)
        run.lock.acquire()
        run.parts.append(dict(at=time.strftime("%Y-%m-%d %H:%M:%S"), stage="pretrain",
                              epochs_done=0, backend=device or config.get("backend")))
        with run.discarded_unless_saved():
            save_config(path, config)
        return run

    def has_checkpoint(self) -> bool:
        return os.path.exists(os.path.join(self.path, RESUME_FILE))

    @contextmanager
    def discarded_unless_saved(self):
        """A run that fails or is interrupted before its first checkpoint has nothing to
        resume or evaluate: its folder (config.json alone) is removed, not left to mislead."""
        try:
            yield
        except BaseException:
            if not self.resumed and not self.has_checkpoint() and not os.path.exists(
                    os.path.join(self.path, METRICS_FILE)):
                shutil.rmtree(self.path, ignore_errors=True)
            raise

    @contextmanager
    def in_use(self):
        """This process's work on the run: the folder discarded if it fails before its first
        checkpoint, the lock released however the work ends."""
        try:
            with self.discarded_unless_saved():
                yield self
        finally:
            self.lock.release()

    @classmethod
    def reopen(cls, resume: str, parent: str, config: dict, budget: Budget,
               device: Optional[str] = None) -> "RunFolder":
        """resume: a run folder, or "latest" for the newest unfinished one under `parent`
        started with the same settings."""
        if resume == "latest":
            resume = latest_resumable(parent, config)
        if not os.path.isdir(resume):
            raise UserError(f"--resume: {resume} is not a folder")
        difference = first_difference(load_config(resume), config)
        if difference:
            key, old, new = difference
            raise UserError(f"cannot resume {resume} with other settings: {key}={old!r} when "
                            f"started, {new!r} now")
        lock = FolderLock(resume, TRAINING).acquire()
        try:
            state = load_state(resume)
        except BaseException:
            lock.release()
            raise
        remove_leftovers(resume)   # temporary files of a write that was killed
        run = cls(resume, budget, state, lock)
        if not run.parts:          # a checkpoint of a version that recorded only resumptions
            run.parts = [dict(at=None, stage="pretrain", epochs_done=0,
                              backend=load_config(resume).get("backend"))]
            run.parts += list(state.info.get("resumed", []))
        run.parts.append(dict(at=time.strftime("%Y-%m-%d %H:%M:%S"), stage=state.stage,
                              epochs_done=state.info["epoch"], backend=device or config.get("backend")))
        return run

    def checkpoint(self, info: dict, arrays: Dict[str, List[np.ndarray]]) -> None:
        """Write the resume checkpoint; then stop the run if the time budget is spent."""
        save_state(self.path, dict(info, parts=self.parts), arrays)
        if self.budget.spent():
            raise TimeBudgetReached()

    def finish(self) -> None:
        path = os.path.join(self.path, RESUME_FILE)
        if os.path.exists(path):
            os.remove(path)


def latest_resumable(parent: str, config: dict) -> str:
    """The newest unfinished run under `parent` started with the same settings (a bare
    --resume); runs with other settings are passed over, and named if none is left."""
    candidates = unfinished_runs(parent)
    if not candidates:
        raise UserError(f"--resume: no unfinished run under {parent}; start one without "
                        f"--resume, or give its folder: --resume PATH")
    others = []
    for folder in reversed(candidates):
        try:
            difference = first_difference(load_config(folder), config)
        except UserError:
            continue
        if difference is None:
            return folder
        others.append((folder, difference))
    folder, (key, old, new) = others[0]
    raise UserError(f"--resume: no unfinished run under {parent} with these settings; the newest, "
                    f"{folder}, has {key}={old!r} (now {new!r}): repeat its flags, or give "
                    f"a folder: --resume PATH")


def remove_dead_runs(parent: str) -> List[str]:
    """Folders under `parent` of runs that died before their first checkpoint (config.json
    alone, and no live process holding them): removed, so that nothing suggests resuming
    or scoring them. Returns the removed folders."""
    removed = []
    if not os.path.isdir(parent):
        return removed
    for name in sorted(os.listdir(parent)):
        folder = os.path.join(parent, name)
        if (os.path.isfile(os.path.join(folder, CONFIG_FILE))
                and not os.path.exists(os.path.join(folder, RESUME_FILE))
                and not os.path.exists(os.path.join(folder, METRICS_FILE))
                and not is_locked(folder)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed
