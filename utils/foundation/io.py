"""Crash-safe file writing: write to a temporary file beside the target, then rename.

A write that fails (a full disk, a read-only folder) ends in one UserError naming the file;
the temporary file is removed. A process killed outright (SIGKILL) can leave a `.tmp-*`
file behind: remove_leftovers() clears a folder of them when the same run starts again.
"""
import errno
import glob
import json
import os
import tempfile
import tokenize
import zipfile
import zlib
from contextlib import contextmanager

import numpy as np

from utils.foundation.errors import UserError

TMP_PREFIX = ".tmp-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# What an ordinary open() would give a new file: mkstemp's 0600 would otherwise survive the
# rename, and other users of a shared machine could not read the runs.
FILE_MODE = 0o666 & ~_umask()


def write_failure(path: str, exc: OSError) -> UserError:
    """One line for an OSError met while writing `path`: what happened and what to do."""
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        advice = "free some space, or write elsewhere"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        advice = "the folder is not writable: choose a writable one"
    else:
        advice = "check the folder"
    return UserError(f"cannot write {path}: {reason}; {advice}")


def make_folder(path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise UserError(f"cannot create folder {path}: the file {exc.filename or path} is in the "
                        f"way; choose another folder") from None
    except OSError as exc:
        raise write_failure(path, exc) from None


@contextmanager
def atomic_path(path: str):
    """Yield a temporary path in the target's folder; rename it onto `path` on success."""
    folder = os.path.dirname(os.path.abspath(path))
    make_folder(folder)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=TMP_PREFIX, suffix=os.path.splitext(path)[1])
    except OSError as exc:
        raise write_failure(path, exc) from None
    os.close(fd)
    try:
        try:
            yield tmp
            os.chmod(tmp, FILE_MODE)
            os.replace(tmp, path)
        except OSError as exc:
            raise write_failure(path, exc) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def remove_leftovers(folder: str) -> int:
    """Delete the temporary files a killed write left in `folder`; returns how many."""
    count = 0
    for path in glob.glob(os.path.join(glob.escape(folder), TMP_PREFIX + "*")):
        if os.path.isfile(path):
            os.remove(path)
            count += 1
    return count


def atomic_save_npy(path: str, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=array.dtype == object)


def atomic_save_npz(path: str, arrays: dict) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def atomic_save_json(path: str, obj) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w") as fh:
            json.dump(obj, fh, indent=2, sort_keys=True, default=jsonable)
            fh.write("\n")


# What np.load raises on a damaged archive or array: a zip without its directory, a bad
# CRC, a truncated member, an empty file, garbage in an array's header (NumPy parses the
# header as a Python literal: SyntaxError, or tokenize's error for an older header).
DAMAGED = (OSError, ValueError, EOFError, KeyError, SyntaxError, tokenize.TokenError,
           zipfile.BadZipFile, zlib.error)


def damage_detail(exc: BaseException) -> str:
    """A short, one-line account of why np.load failed."""
    text = str(exc).splitlines()[0][:80] if str(exc) else ""
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


def jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value)}")
