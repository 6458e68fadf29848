"""The command line: options become a library call, then a renderer, then an exit code."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import typer

from nandoc import __version__
from nandoc.core.finding import FailOn
from nandoc.errors import NandocError
from nandoc.render import NORMAL, QUIET, VERBOSE, Format

EPILOG = """\b
Examples:
  nandoc init                          # write nandoc.toml for the files here
  nandoc check                         # check what ./nandoc.toml names
  nandoc check model.keras data.csv --target label
  nandoc check -f junit -o nandoc.xml  # JUnit XML for CI test reporters
  nandoc replay --epochs 2             # train a watched copy, stop at the NaN
  nandoc explain unclipped-log         # what it is, why NaN, how to fix

Exit codes: 0 no finding at or above --fail-on, 1 at least one, 2 the run could not be done.
Colour is off when NO_COLOR is set or the output is not a terminal.
"""



def _examples(*lines: str) -> str:
    # \b keeps click from re-wrapping the block.
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


app = typer.Typer(
    name="nandoc",
    help="A doctor for Keras/TensorFlow training runs whose loss turns into NaN.",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import warnings

    warnings.filterwarnings("ignore", module="keras")
    warnings.filterwarnings("ignore", module="tensorflow")


@contextlib.contextmanager
def _user_errors():
    """Every command's error contract: the user's problem is one paragraph and exit 2; Ctrl-C
    says so and exits 130; a bug in nandoc is one paragraph saying where the crash log is."""
    try:
        yield
    except (typer.Exit, typer.Abort):  # click's own exits are exceptions too: let them through
        raise
    except NandocError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        typer.echo("nandoc: interrupted", err=True)
        raise typer.Exit(130) from None
    except Exception as exc:
        from nandoc.errors import crash_report

        typer.echo(f"nandoc: error: {crash_report(exc)}", err=True)
        raise typer.Exit(2) from None


def _fail(exc: NandocError) -> None:
    typer.echo(f"nandoc: error: {exc}", err=True)
    raise typer.Exit(exc.exit_code)


def _color_wanted(stream) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set to anything (no-color.org)."""
    return bool(stream.isatty()) and not os.environ.get("NO_COLOR")


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    from nandoc.atomic import write_text_atomic

    try:
        write_text_atomic(output, text)
    except OSError as exc:
        _fail(NandocError(f"Could not write the report to {output} ({exc.strerror}). Choose a "
                          f"writable path for --output."))


@contextlib.contextmanager
def _terminal_stderr(enabled: bool):
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


def _verbosity(quiet: bool, verbose: bool) -> int:
    if quiet and verbose:
        _fail(NandocError("-q/--quiet and -v/--verbose ask for opposite things; give one."))
    return QUIET if quiet else VERBOSE if verbose else NORMAL


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nandoc {__version__}")
        raise typer.Exit()


def _complete_cause(incomplete: str) -> list[str]:
    from nandoc.core.causes import CAUSES

    return [c for c in CAUSES if c.startswith(incomplete)]


# Options that `check` and `replay` share, declared once so their help never drifts apart.
MODEL_ARG = typer.Argument(None, help="The saved model (.keras or .h5).")
DATA_ARG = typer.Argument(None, help="The training data (.csv, .parquet, .npz).")
CONFIG_OPT = typer.Option(None, "--config", "-c",
                          help="nandoc.toml (default: ./nandoc.toml if present).")
TARGET_OPT = typer.Option(None, "--target", help="Target column(s), comma-separated.")
CUSTOM_OBJECTS_OPT = typer.Option(
    None, "--custom-objects",
    help="A Python file defining custom losses/layers. nandoc imports (runs) it because you "
         "named it; repeat for several files.")
FORMAT_OPT = typer.Option(Format.TEXT, "--format", "-f",
                          help="Report format: text, json, junit (JUnit XML for CI test "
                               "reporters) or github (workflow annotations).")
OUTPUT_OPT = typer.Option(None, "--output", "-o",
                          help="Write the report to this file (any format).")
FAIL_ON_OPT = typer.Option(FailOn.ERROR, "--fail-on",
                           help="Exit 1 when a finding is at or above this severity (junit: "
                                "those findings are the failures).")
UNSAFE_OPT = typer.Option(False, "--unsafe",
                          help="Load models with Keras safe mode off (runs code stored in the "
                               "model file, e.g. Lambda layers). Only for files you trust.")
SEED_OPT = typer.Option(None, "--seed", help="Seed for batch sampling and shuffling.")


QUIET_OPT = typer.Option(False, "--quiet", "-q",
                         help="Print only the verdict line (and errors).")
VERBOSE_OPT = typer.Option(False, "--verbose", "-v",
                           help="Also list every check with why it did or did not run, the "
                                "timings, and TensorFlow's captured log (on stderr).")


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """A doctor for Keras/TensorFlow training runs whose loss turns into NaN."""


@app.command(epilog=_examples(
    "nandoc check model.keras data.csv --target label",
    "nandoc check --config nandoc.toml --format json --output report.json",
    "nandoc check --format github --fail-on warning   # in a GitHub workflow",
    "nandoc check --format junit --output nandoc.xml  # for CI test reporters",
    "nandoc check -q && echo 'no NaN risk'"))
def check(
    model: Path | None = MODEL_ARG,
    data: Path | None = DATA_ARG,
    config: Path | None = CONFIG_OPT,
    target: str | None = TARGET_OPT,
    custom_objects: list[Path] | None = CUSTOM_OBJECTS_OPT,
    fmt: Format = FORMAT_OPT,
    output: Path | None = OUTPUT_OPT,
    fail_on: FailOn = FAIL_ON_OPT,
    unsafe: bool = UNSAFE_OPT,
    seed: int | None = SEED_OPT,
    quiet: bool = QUIET_OPT,
    verbose: bool = VERBOSE_OPT,
) -> None:
    """Check a model, its loss and its data for NaN causes, in seconds."""
    from nandoc.config import load_config, with_overrides

    verbosity = _verbosity(quiet, verbose)
    _quiet_tensorflow()
    captured_log = ""
    with _user_errors():
        cfg = with_overrides(load_config(config), model=model, data=data, target=target,
                             custom_objects=custom_objects, seed=seed, unsafe=unsafe)
        from nandoc.pipeline import check as run_check
        from nandoc.quiet import native_stderr_captured

        with native_stderr_captured() as captured:
            report = run_check(cfg)
        captured_log = captured.text
    _finish(report, fmt, output, fail_on, verbosity, captured_log)


def _finish(report, fmt: Format, output: Path | None, fail_on: FailOn, verbosity: int,
            captured_log: str) -> None:
    """Render, write, show the captured TensorFlow log when verbose, exit by --fail-on."""
    from nandoc.render import RenderOptions, render

    options = RenderOptions(color=fmt is Format.TEXT and output is None
                            and _color_wanted(sys.stdout),
                            fail_on=fail_on, verbosity=verbosity, base_dir=Path.cwd())
    _emit(render(report, fmt, options), output)
    if verbosity >= VERBOSE and captured_log.strip():
        typer.echo("--- TensorFlow's log, captured while nandoc ran ---", err=True)
        typer.echo(captured_log.rstrip(), err=True)
    if report.extra.get("replay", {}).get("stopped_by") == "interrupted":
        typer.echo("nandoc: interrupted; the report shows what was found so far", err=True)
        raise typer.Exit(130)
    raise typer.Exit(report.exit_code(fail_on))


@app.command(epilog=_examples(
    "nandoc replay                                  # ./nandoc.toml, its [train] epochs",
    "nandoc replay --epochs 2 --steps 200 --plot replay.png",
    "nandoc replay --no-verify-fixes --format json -o replay.json"))
def replay(
    model: Path | None = MODEL_ARG,
    data: Path | None = DATA_ARG,
    config: Path | None = CONFIG_OPT,
    target: str | None = TARGET_OPT,
    custom_objects: list[Path] | None = CUSTOM_OBJECTS_OPT,
    epochs: int | None = typer.Option(None, "--epochs", min=1,
                                      help="Epochs to train (default: [train] epochs)."),
    steps: int | None = typer.Option(None, "--steps", min=1,
                                     help="Stop after this many steps in all."),
    verify_fixes: bool = typer.Option(True, "--verify-fixes/--no-verify-fixes",
                                      help="Re-run the failing steps with each candidate fix."),
    plot: Path | None = typer.Option(None, "--plot",
                                     help="Write a PNG of loss and gradient norm per step."),
    fmt: Format = FORMAT_OPT,
    output: Path | None = OUTPUT_OPT,
    fail_on: FailOn = FAIL_ON_OPT,
    unsafe: bool = UNSAFE_OPT,
    seed: int | None = SEED_OPT,
    quiet: bool = QUIET_OPT,
    verbose: bool = VERBOSE_OPT,
) -> None:
    """Train a watched copy of the model for a few epochs; stop at the first NaN and explain it."""
    from nandoc.config import load_config, with_overrides

    verbosity = _verbosity(quiet, verbose)
    _quiet_tensorflow()
    captured_log = ""
    with _user_errors():
        cfg = with_overrides(load_config(config), model=model, data=data, target=target,
                             custom_objects=custom_objects, seed=seed, unsafe=unsafe)
        from nandoc.quiet import native_stderr_captured
        from nandoc.render.progress import replay_progress
        from nandoc.replay.command import replay as run_replay

        live = fmt is Format.TEXT and verbosity > QUIET and _color_wanted(sys.stderr)
        with _terminal_stderr(live) as terminal, native_stderr_captured() as captured, \
                terminal(), replay_progress(live, epochs or cfg.train.epochs) as bar:
            report = run_replay(cfg, epochs=epochs, steps=steps, verify_fixes=verify_fixes,
                                progress=bar.update if bar is not None else None)
        captured_log = captured.text
    if plot is not None:
        from nandoc.atomic import write_bytes_atomic
        from nandoc.render.plot import render_png

        try:
            write_bytes_atomic(plot, render_png(report))
        except OSError as exc:
            _fail(NandocError(f"Could not write the plot to {plot} ({exc.strerror}). Choose a "
                              f"writable path for --plot."))
    _finish(report, fmt, output, fail_on, verbosity, captured_log)


@app.command(epilog=_examples(
    "nandoc explain                       # every cause id with a one-line summary",
    "nandoc explain where-gradient-trap",
    "nandoc explain --markdown > docs/causes.md"))
def explain(
    cause: str | None = typer.Argument(None, help="A cause id, e.g. unclipped-log.",
                                          autocompletion=_complete_cause),
    markdown: bool = typer.Option(False, "--markdown",
                                  help="Markdown instead of text; with no CAUSE, the whole "
                                       "catalogue (docs/causes.md)."),
) -> None:
    """What a cause is, why it makes NaN, how to confirm and fix it. No argument: list all."""
    from nandoc.core.causes import CAUSES, get_cause
    from nandoc.render import explain as render_explain

    if cause is None:
        typer.echo(render_explain.markdown() if markdown else render_explain.index(), nl=False)
        return
    try:
        c = get_cause(cause)
    except KeyError:
        _fail(NandocError(f"Unknown cause '{cause}'.{render_explain.suggest(cause)} "
                          f"`nandoc explain` with no argument lists the {len(CAUSES)} cause "
                          f"ids."))
    typer.echo(render_explain.markdown_one(c) if markdown else render_explain.text(c), nl=False)


@app.command(epilog=_examples(
    "nandoc init                  # the model and data in the current folder",
    "nandoc init runs/exp3 --force && nandoc check -c runs/exp3/nandoc.toml"))
def init(
    folder: Path = typer.Argument(Path("."), help="The folder with the model and data files.",
                                  file_okay=False),
    force: bool = typer.Option(False, "--force", help="Replace an existing nandoc.toml."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors."),
) -> None:
    """Write a commented nandoc.toml for the model and data in a folder.

    It reads the model's saved config (never runs its code) for the input shape and the custom
    objects, and the data's header for the target column; every guess is explained in a
    comment. An existing nandoc.toml is never replaced without --force.
    """
    from nandoc.init import summary, write_config

    with _user_errors():
        path, plan = write_config(folder, force=force)
    if not quiet:
        typer.echo(summary(plan, path), nl=False)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("nandoc: interrupted", err=True)
        sys.exit(130)
