"""The command line: options become a library call, then a renderer, then an exit code."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from nandoc import __version__
from nandoc.core.finding import FailOn
from nandoc.errors import NandocError
from nandoc.render import Format

app = typer.Typer(
    name="nandoc",
    help="A doctor for Keras/TensorFlow training runs whose loss turns into NaN.",
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import warnings

    warnings.filterwarnings("ignore", module="keras")
    warnings.filterwarnings("ignore", module="tensorflow")


def _fail(exc: NandocError) -> None:
    typer.echo(f"nandoc: error: {exc}", err=True)
    raise typer.Exit(exc.exit_code)


def _emit(text: str, output: Optional[Path]) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        _fail(NandocError(f"Could not write the report to {output} ({exc.strerror}). Choose a "
                          f"writable path for --output."))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nandoc {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """A doctor for Keras/TensorFlow training runs whose loss turns into NaN."""


@app.command()
def check(
    model: Optional[Path] = typer.Argument(None, help="The saved model (.keras or .h5)."),
    data: Optional[Path] = typer.Argument(None, help="The training data (.csv, .parquet, .npz)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c",
                                          help="nandoc.toml (default: ./nandoc.toml if present)."),
    target: Optional[str] = typer.Option(None, "--target", help="Target column(s), comma-separated."),
    custom_objects: Optional[List[Path]] = typer.Option(
        None, "--custom-objects",
        help="A Python file defining custom losses/layers. nandoc imports (runs) it because "
             "you named it; repeat for several files."),
    fmt: Format = typer.Option(Format.TEXT, "--format", "-f", help="Report format."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the report here."),
    fail_on: FailOn = typer.Option(FailOn.ERROR, "--fail-on",
                                   help="Exit 1 when a finding is at or above this severity."),
    unsafe: bool = typer.Option(False, "--unsafe",
                                help="Load models with Keras safe mode off (runs code stored in "
                                     "the model file, e.g. Lambda layers). Only for files you trust."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for batch sampling."),
) -> None:
    """Check a model, its loss and its data for NaN causes, in seconds.

    Examples:

      nandoc check model.keras data.csv --target label

      nandoc check --config nandoc.toml --format json --output report.json
    """
    from nandoc.config import load_config, with_overrides

    _quiet_tensorflow()
    try:
        cfg = with_overrides(load_config(config), model=model, data=data, target=target,
                             custom_objects=custom_objects, seed=seed, unsafe=unsafe)
        from nandoc.pipeline import check as run_check
        from nandoc.quiet import native_stderr_captured

        with native_stderr_captured():
            report = run_check(cfg)
    except NandocError as exc:
        _fail(exc)
    from nandoc.render import render

    color = fmt is Format.TEXT and output is None and sys.stdout.isatty() \
        and "NO_COLOR" not in os.environ
    _emit(render(report, fmt, color=color), output)
    raise typer.Exit(report.exit_code(fail_on))


@app.command()
def explain(cause: Optional[str] = typer.Argument(None, help="A cause id, e.g. unclipped-log.")
            ) -> None:
    """What a cause is, why it makes NaN, how to confirm and fix it. No argument: list all.

    Example: nandoc explain where-gradient-trap
    """
    from nandoc.core.causes import CAUSES, get_cause

    if cause is None:
        width = max(len(c) for c in CAUSES)
        for c in CAUSES.values():
            typer.echo(f"{c.id:<{width}}  {c.summary}")
        return
    try:
        c = get_cause(cause)
    except KeyError:
        _fail(NandocError(f"Unknown cause '{cause}'. `nandoc explain` with no argument lists "
                          f"the {len(CAUSES)} cause ids."))
    example = "\n".join("    " + line for line in c.example.splitlines())
    typer.echo(f"{c.id}: {c.summary}\n\nWhat it is\n  {c.what}\n\nWhy it makes NaN\n  {c.why}"
               f"\n\nHow to confirm\n  {c.confirm}\n\nHow to fix\n  {c.fix}\n\n{example}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("nandoc: interrupted", err=True)
        sys.exit(130)
