"""What every command does around its library call: the error contract, colour, the terminal's
stderr while TensorFlow's is captured, and rendering, writing and exiting."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import typer

from nandoc.cli.process import interrupted_code, sigterm_as_interrupt, user_code
from nandoc.core.finding import FailOn
from nandoc.errors import NandocError
from nandoc.render import VERBOSE, Format, color_wanted


def quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import warnings

    warnings.filterwarnings("ignore", module="keras")
    warnings.filterwarnings("ignore", module="tensorflow")


@contextlib.contextmanager
def user_errors():
    """Every command's error contract: the user's problem is one paragraph and exit 2; Ctrl-C
    says so and exits 130; a bug in nandoc is one paragraph saying where the crash log is."""
    try:
        yield
    except (typer.Exit, typer.Abort):  # click's own exits are exceptions too: let them through
        raise
    except NandocError as exc:
        fail(exc)
    except KeyboardInterrupt:
        typer.echo("nandoc: interrupted", err=True)
        raise typer.Exit(interrupted_code()) from None
    except Exception as exc:
        from nandoc.errors import crash_report

        typer.echo(f"nandoc: error: {crash_report(exc)}", err=True)
        raise typer.Exit(2) from None


@contextlib.contextmanager
def running():
    """Around check's and replay's work: the error contract, SIGTERM as Ctrl-C, and the user's
    code kept from ending the process. Yields the dict of the user's code files -> roles, for
    the caller to fill in once the config is read (see `files.prepare`)."""
    roles: dict[Path, str] = {}
    with user_errors(), sigterm_as_interrupt(), user_code(roles):
        yield roles


def fail(exc: NandocError) -> None:
    typer.echo(f"nandoc: error: {exc}", err=True)
    raise typer.Exit(exc.exit_code)


def emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    from nandoc.atomic import write_text_atomic

    try:
        write_text_atomic(output, text)
    except OSError as exc:
        fail(NandocError(f"Could not write the report to {output} ({exc.strerror}). Choose a "
                         f"writable path for --output."))


def write_plot(report, plot: Path) -> str | None:
    """The --plot image of loss and gradient norm per step (and per layer on the failing
    step): PNG, or SVG/PDF when the file's suffix says so. Returns what went wrong (the report
    is still written, so a long replay's result is never lost to a plot), or None."""
    from nandoc.atomic import write_bytes_atomic

    try:
        from nandoc.render.plot import format_for, render_bytes

        data = render_bytes(report, format_for(plot))
    except ImportError as exc:
        return (f"--plot needs matplotlib, which could not be imported ({exc}). Install it "
                f"with `pip install 'matplotlib>=3.7'`, or leave out --plot.")
    try:
        write_bytes_atomic(plot, data)
    except OSError as exc:
        return (f"Could not write the plot to {plot} ({exc.strerror}). Choose a writable path "
                f"for --plot.")
    return None


@contextlib.contextmanager
def terminal_stderr(enabled: bool):
    """While TensorFlow's native stderr is captured, keep Python's sys.stderr (the progress
    bar) on the terminal: yields a context manager that points sys.stderr at a copy of the
    terminal's file descriptor taken before the capture."""
    if not enabled:
        yield contextlib.nullcontext
        return
    sys.stderr.flush()
    fd = os.dup(sys.stderr.fileno())
    stream = open(fd, "w", encoding="utf-8", errors="replace", closefd=True)

    @contextlib.contextmanager
    def swapped():
        saved, sys.stderr = sys.stderr, stream
        try:
            yield
        finally:
            stream.flush()
            sys.stderr = saved

    try:
        yield swapped
    finally:
        stream.close()


def text_width(output: Path | None) -> int:
    """The terminal's width when the report goes to one (at least 60), else 100: a file or a
    pipe gets the same lines wherever it was made."""
    if output is None:
        try:
            if sys.stdout.isatty():
                return max(60, os.get_terminal_size(sys.stdout.fileno()).columns)
        except (AttributeError, ValueError, OSError):
            pass
    return 100


def finish(report, fmt: Format, output: Path | None, fail_on: FailOn, verbosity: int,
           captured_log: str, failed_outputs: tuple[str, ...] = ()) -> None:
    """Render, write, show the captured TensorFlow log when verbose, exit by --fail-on.
    `failed_outputs`: side outputs (the plot, TensorBoard events) that could not be written:
    said after the report, exit 2."""
    from nandoc.render import RenderOptions, render

    options = RenderOptions(color=fmt is Format.TEXT and output is None
                            and color_wanted(sys.stdout),
                            fail_on=fail_on, verbosity=verbosity, base_dir=Path.cwd(),
                            width=text_width(output))
    text = render(report, fmt, options)
    if fmt is Format.HTML and output is None and hasattr(sys.stdout, "buffer"):
        sys.stdout.flush()  # the page declares UTF-8: write it so whatever the locale
        sys.stdout.buffer.write(text.encode("utf-8"))
        sys.stdout.buffer.flush()
    else:
        emit(text, output)
    if verbosity >= VERBOSE and captured_log.strip():
        typer.echo("--- TensorFlow's log, captured while nandoc ran ---", err=True)
        typer.echo(captured_log.rstrip(), err=True)
    if any(report.extra.get(run, {}).get("stopped_by") == "interrupted"
           for run in ("replay", "burst")):
        typer.echo("nandoc: interrupted; the report shows what was found so far", err=True)
        raise typer.Exit(interrupted_code())
    failed = [*failed_outputs, *([report.extra["tensorboard_error"]]
                                 if report.extra.get("tensorboard_error") else [])]
    for message in failed:
        typer.echo(f"nandoc: error: {message} The report itself was written.", err=True)
    if failed:
        raise typer.Exit(2)
    code = report.exit_code(fail_on)
    if code == 2:
        typer.echo(f"nandoc: error: the run is incomplete: {'; '.join(report.not_examined())}. "
                   f"The partial report was written; run with -v for TensorFlow's log, and "
                   f"report a crash of a check to the nandoc project.", err=True)
    raise typer.Exit(code)
