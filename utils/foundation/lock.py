"""One writer per folder: an exclusive lock on FOLDER/.lock, held while the process lives.

The lock is the operating system's (flock), not the file's existence: a process that dies in
any way, SIGKILL included, releases it, so a stale lock never blocks anyone. The file only
says who holds it (process id, start time, what it is doing), for the message a second
writer gets. It stays in the folder (removing it would race with a process opening it).
"""
import fcntl
import os
import time

from utils.foundation.errors import EXIT_BUSY, UserError

LOCK_FILE = ".lock"


class FolderBusy(UserError):
    """Another process is writing the folder; ends the script with EXIT_BUSY."""
    exit_code = EXIT_BUSY


class FolderLock:
    def __init__(self, folder: str, purpose: str):
        self.folder, self.purpose, self._fd = folder, purpose, None

    @property
    def path(self) -> str:
        return os.path.join(self.folder, LOCK_FILE)

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; True when this process now holds it."""
        if self._fd is not None:
            return True
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise UserError(f"cannot lock {self.folder}: {exc.strerror}; check the folder") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {time.strftime('%Y-%m-%d %H:%M:%S')} {self.purpose}\n".encode())
        self._fd = fd
        return True

    def acquire(self) -> "FolderLock":
        """Take the lock, or raise FolderBusy naming the process that holds it."""
        if not self.try_acquire():
            raise FolderBusy(f"{self.folder} is in use by {holder(self.folder)}; wait for it to "
                             f"finish, or stop that process, then try again")
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def holder(folder: str) -> str:
    """Who holds a folder's lock, as its lock file says: 'process PID (PURPOSE, since TIME)'."""
    try:
        with open(os.path.join(folder, LOCK_FILE), encoding="utf-8") as fh:
            pid, day, clock, purpose = (fh.read().split(" ", 3) + ["", "", "", ""])[:4]
    except OSError:
        return "another process"
    if not pid.isdigit():
        return "another process"
    return f"process {pid} ({purpose.strip() or 'unknown work'}, since {day} {clock})"


def is_locked(folder: str) -> bool:
    """Whether a live process holds the folder's lock (without taking it for long)."""
    probe = FolderLock(folder, "probe")
    if not os.path.exists(probe.path):
        return False
    try:
        fd = os.open(probe.path, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)            # closing releases a lock this probe may have taken
    return False
