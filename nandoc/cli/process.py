"""The process around the user's code that check and replay run: stdout keeps only the report,
a file that ends the process (exit(), sys.exit(), os._exit()) becomes a one-paragraph error,
and SIGTERM stops a run the way Ctrl-C does (the partial report, then exit 143).

User code runs when nandoc imports the custom-objects files and the `[data] source` file, and
when it calls their functions (a custom loss, the source function). What that code prints must
not end up inside a JSON or JUnit report on stdout, nor in TensorFlow's captured log.
"""

from __future__ import annotations

import contextlib
import linecache
import os
import signal
import sys
import sysconfig
import traceback
from collections.abc import Iterator
from pathlib import Path

from nandoc.errors import NandocError

INTERRUPTED, TERMINATED = 130, 143  # 128 + SIGINT, 128 + SIGTERM


class UserExit(BaseException):
    """Raised in place of os._exit() while nandoc runs the user's code, so that the process
    survives to say which file asked to end it. A BaseException, like SystemExit: the guards
    that keep one failing check from stopping the others must not swallow it."""

    def __init__(self, code: object, stack: list[traceback.FrameSummary]) -> None:
        super().__init__(code)
        self.code = code
        self.stack = stack


class UserCodeExit(NandocError):
    """The user's code asked to end the process."""


class _State:
    sigterm = False  # set by the SIGTERM handler: the interrupt came from SIGTERM
    exit_call: UserExit | None = None  # an os._exit() that was raised but may have been caught


def interrupted_code() -> int:
    """The exit code of an interrupted run: 143 after SIGTERM, 130 after Ctrl-C."""
    return TERMINATED if _State.sigterm else INTERRUPTED


def _on_sigterm(signum: int, frame: object) -> None:
    _State.sigterm = True
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While the command runs, SIGTERM raises KeyboardInterrupt (as Ctrl-C does) and is
    remembered, so that the partial report is written and the exit code is 143."""
    _State.sigterm = False
    try:
        saved = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread: signals cannot be handled here
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, saved)


@contextlib.contextmanager
def user_code(roles: dict[Path, str]) -> Iterator[None]:
    """While nandoc may run the user's code: os._exit raises UserExit in this process (a forked
    child still exits for real), and SystemExit or UserExit from the user's code become one
    paragraph naming the file and line. `roles`: the user's files (filled in by the caller
    once the config is read) -> what they are, e.g. "the custom_objects file"."""
    real_exit, pid = os._exit, os.getpid()

    def refused_exit(code: int) -> None:
        if os.getpid() != pid:  # a forked child (multiprocessing) must really exit
            real_exit(code)
        stack = traceback.extract_stack(sys._getframe(1))
        exc = UserExit(code, stack)
        if _State.exit_call is None:
            _State.exit_call = exc
        raise exc

    _State.exit_call = None
    os._exit = refused_exit
    try:
        yield
        if _State.exit_call is not None:  # raised, then swallowed by a library on the way up
            raise _paragraph(_State.exit_call, _State.exit_call.stack, roles)
    except UserExit as exc:
        raise _paragraph(exc, exc.stack, roles) from None
    except SystemExit as exc:
        stack = list(traceback.extract_tb(exc.__traceback__))
        raise _paragraph(exc, stack, roles) from None
    finally:
        os._exit = real_exit
        _State.exit_call = None


def _library_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths.get(k, "") for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    dirs.add(str(Path(__file__).resolve().parent.parent))  # nandoc itself
    return tuple(os.path.realpath(d) + os.sep for d in dirs if d)


def _user_frame(stack: list[traceback.FrameSummary], roles: dict[Path, str]
                ) -> traceback.FrameSummary | None:
    """The frame that asked to exit: the innermost in one of the user's named files, else the
    innermost outside Python's and the libraries' folders (and nandoc's)."""
    known = {os.path.realpath(p) for p in roles}
    for frame in reversed(stack):
        if os.path.realpath(frame.filename) in known:
            return frame
    libs = _library_dirs()
    for frame in reversed(stack):
        name = frame.filename
        if name.startswith("<") or os.path.realpath(name).startswith(libs):
            continue
        return frame
    return None


def _call_text(exc: BaseException, frame: traceback.FrameSummary | None) -> str:
    code = getattr(exc, "code", None)
    args = "" if code is None else repr(code)
    if isinstance(exc, UserExit):
        return f"os._exit({args})"
    line = linecache.getline(frame.filename, frame.lineno or 0) if frame is not None else ""
    if "raise SystemExit" in line:
        return f"raise SystemExit({args})"
    for name in ("sys.exit", "quit", "exit"):
        if f"{name}(" in line:
            return f"{name}({args})"
    return f"sys.exit({args})"


def _paragraph(exc: BaseException, stack: list[traceback.FrameSummary],
               roles: dict[Path, str]) -> UserCodeExit:
    frame = _user_frame(stack, roles)
    call = _call_text(exc, frame)
    if frame is None:
        return UserCodeExit(
            f"Code that nandoc ran (a custom_objects file, the [data] source file or a function "
            f"in them) called {call}, so nandoc stopped before it could report anything. Remove "
            f"that call from the code nandoc imports or calls, then run nandoc again.")
    resolved = os.path.realpath(frame.filename)
    role, shown = next(((r, str(p)) for p, r in roles.items() if os.path.realpath(p) == resolved),
                       ("the Python file", frame.filename))
    when = ("while nandoc imported it" if frame.name == "<module>"
            else f"in {frame.name}() when nandoc called it")
    return UserCodeExit(
        f"{role[0].upper()}{role[1:]} {shown} called {call} at line {frame.lineno}, "
        f"{when}, so nandoc stopped: that call would end nandoc's process before any report. "
        f"Remove the call from the code nandoc runs (keep a script's own part under `if "
        f"__name__ == '__main__':`), then run nandoc again.")


@contextlib.contextmanager
def user_output_to_stderr() -> Iterator[None]:
    """Point stdout (Python's sys.stdout and file descriptor 1, so native writes too, such as
    tf.print(output_stream=sys.stdout)) at the terminal's stderr while the run goes on; stdout
    is restored, for the report alone, afterwards. Enter it before TensorFlow's stderr is
    captured: the user's printing then lands on the real stderr, not in the captured log."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    try:
        out_fd, err_fd = sys.stdout.fileno(), sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):  # no real descriptors (an in-process runner)
        saved_stream, sys.stdout = sys.stdout, sys.stderr
        try:
            yield
        finally:
            sys.stdout = saved_stream
        return
    saved = os.dup(out_fd)
    os.dup2(err_fd, out_fd)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        _flush_c_stdio()
        os.dup2(saved, out_fd)
        os.close(saved)


def _flush_c_stdio() -> None:
    """Flush C's stdio buffers (printf from native code) before stdout is pointed back."""
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):
        pass


_END = os._exit  # the real one, whatever user_code() does meanwhile


def leave(code: object) -> None:
    """End the process with `code` (sys.exit's meaning). Once TensorFlow is imported, the
    interpreter's own teardown takes about a second more (measured: a script that imports
    TensorFlow and loads a model ends 0.9-1.0 s later than os._exit would); the exit handlers
    (temporary files, TensorFlow's own) run and the streams are flushed, then the process ends
    at once. Without TensorFlow, or for a message code, a normal exit."""
    if "tensorflow" not in sys.modules or not (code is None or isinstance(code, int)):
        sys.exit(code)
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    _flush_c_stdio()
    _END(int(code or 0))
