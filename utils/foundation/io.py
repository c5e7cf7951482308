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


def _nearest_existing(path: str) -> str:
    """The deepest part of `path` that exists: the path itself, or a folder (or the file in
    the way) above it. os.makedirs names the deepest folder it tried, not the file that
    stopped it."""
    current = os.path.normpath(path)
    while current and not os.path.exists(current):
        current = os.path.dirname(current)
    return current or os.curdir


def check_can_write(path: str) -> None:
    """Before long work whose result goes to `path`: one line now if it could not be written
    then (a folder in its place, a file in the way of its folder, a folder not writable)."""
    if os.path.isdir(path):
        raise UserError(f"cannot write {path}: it is a folder; give a file name")
    existing = _nearest_existing(os.path.dirname(os.path.abspath(path)))
    if not os.path.isdir(existing):
        raise UserError(f"cannot write {path}: the file {existing} is in the way; choose another "
                        f"folder")
    if not os.access(existing, os.W_OK):
        raise UserError(f"cannot write {path}: the folder {existing} is not writable: choose a "
                        f"writable one")


def make_folder(path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"cannot create folder {path}: the file {_nearest_existing(path)} is in "
                        f"the way; choose another folder") from None
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
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=2, sort_keys=True, default=jsonable)
            fh.write("\n")


# What np.load raises on a damaged archive or array: a zip without its directory, a bad
# CRC, a truncated member, an empty file, garbage in an array's header (NumPy parses the
# header as a Python literal: SyntaxError, or tokenize's error for an older header).
DAMAGED = (OSError, ValueError, EOFError, KeyError, SyntaxError, tokenize.TokenError,
           zipfile.BadZipFile, zlib.error)


def damage_detail(exc: BaseException, limit: int = 80) -> str:
    """A short, one-line account of why np.load failed: the first line of the message, cut
    after a whole word when it is longer than `limit` characters."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " ..."
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


# Every text file the project reads (layouts, CSV recordings, KGBD text, JSON records) is
# UTF-8; a byte-order mark in front is accepted, as some editors write one.
TEXT_ENCODING = "UTF-8"


def read_text(path: str, what: str = "file", error=UserError) -> str:
    """A text file's content, or one line (`error`) naming the file and the encoding
    expected: not UTF-8 (Latin-1, cp1252, UTF-16, binary data) or unreadable."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise error(f"cannot read {path} ({exc.strerror or exc.__class__.__name__})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        found = ("UTF-16 text" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else
                 "binary data" if b"\x00" in data[:4096] else
                 f"byte 0x{data[exc.start]:02x} at offset {exc.start} is not UTF-8")
        raise error(f"{path}: not {TEXT_ENCODING} text ({found}); save the {what} as "
                    f"{TEXT_ENCODING}") from None


def read_json(path: str, what: str = "file", error=UserError):
    """A JSON file's content (UTF-8), or one line naming the file and what is wrong."""
    text = read_text(path, what, error)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None


def jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value)}")
