"""Errors meant for the user: the one exception type that carries a message for them, and the
guard every entry script runs its work under, which turns that message into one line and an
exit code."""
import sys


class UserError(Exception):
    """Bad input (flag, file, folder) described in one line: what is wrong and what to do.

    The entry scripts catch it and print the message without a traceback.
    """


# Exit codes of every entry script (docs/reliability.md: "Exit codes").
EXIT_OK, EXIT_USER_ERROR, EXIT_STOPPED = 0, 2, 3   # 3: --time_budget spent (SM-SGE.py)
EXIT_BUSY = 4                                      # another process is writing the run folder
EXIT_SIGINT, EXIT_SIGTERM = 130, 143               # 128 + the signal's number, as shells do


class Terminated(KeyboardInterrupt):
    """SIGTERM (what `timeout`, batch schedulers and container stops send), raised where the
    program is, like Ctrl-C: the same clean-up runs, nothing is left half-written."""


class _Stopping:
    """The signal handler of an entry script: the first Ctrl-C or SIGTERM stops the work where
    it is; later ones are ignored, so the clean-up it started (removing a half-written file,
    a run folder without a checkpoint) finishes, and the exit code stays 130 or 143."""

    def __init__(self):
        self.stopping = False

    def __call__(self, signum, frame):
        import signal
        if self.stopping:
            return
        self.stopping = True
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def interrupt_behind(exc: BaseException):
    """The Ctrl-C or SIGTERM that caused exc, or None. A signal that lands while C code calls
    back into Python (numpy's __array__ inside TensorFlow's tensor conversion) comes out as a
    SystemError whose context is the interrupt: still the user's stop, not a crash."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def resume_command(script: str, argv) -> str:
    """The command line that continues a run: the same flags, any --resume replaced."""
    import shlex
    args, i = [], 0
    while i < len(argv):
        if argv[i] == "--resume":
            i += 2 if i + 1 < len(argv) and not argv[i + 1].startswith("-") else 1
            continue
        if not argv[i].startswith("--resume="):
            args.append(argv[i])
        i += 1
    return shlex.join(["python", script] + args)


def guarded(work, script: str = "", argv=None) -> int:
    """Run an entry script's work; bad input ends in one line on stderr and exit code 2 (or
    the error's own code, such as EXIT_BUSY), an interrupt (Ctrl-C or SIGTERM) in one line and
    130 or 143, however often the signal comes. The exit code is otherwise what work()
    returns (None: 0). script, argv: name the command that resumes an interrupted run."""
    import signal
    handler = _Stopping()
    # A signal the process was started with ignored (SIGINT in a background job) stays so.
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)
                if signal.getsignal(sig) is not signal.SIG_IGN}
    try:
        code = work()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", EXIT_USER_ERROR)
    except (KeyboardInterrupt, Exception) as caught:
        exc = interrupt_behind(caught)
        if exc is None:
            raise
        handler.stopping = True
        name, code = (("SIGTERM", EXIT_SIGTERM) if isinstance(exc, Terminated)
                      else ("interrupted", EXIT_SIGINT))
        message = f"{name}: stopped; nothing half-written was left behind"
        run_dir = getattr(exc, "run_dir", None)
        if run_dir and script:
            argv = sys.argv[1:] if argv is None else argv
            message += f"; continue with: {resume_command(script, argv)} --resume {run_dir}"
        elif script and hasattr(exc, "run_dir"):
            message += "; the run had not finished its first epoch, so there is nothing to resume"
        print(message, file=sys.stderr)
        return code
    finally:
        for sig, before in previous.items():
            # once stopping, keep ignoring signals until the process has exited
            signal.signal(sig, signal.SIG_IGN if handler.stopping else before)
    return code or EXIT_OK
