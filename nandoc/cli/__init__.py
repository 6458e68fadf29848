"""The command line: options become a library call, then a renderer, then an exit code.

The commands here are thin: the options they share are declared in `options`, and what every
command does around its library call (errors, colour, rendering, exit codes) is in `output`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from nandoc.cli.files import prepare
from nandoc.cli.options import (
    BURST_OPT,
    CAUSE_ARG,
    CONFIG_OPT,
    CUSTOM_OBJECTS_OPT,
    DATA_ARG,
    EPILOG,
    EPOCH_OPT,
    EPOCHS_OPT,
    FAIL_ON_OPT,
    FOLDER_ARG,
    FORCE_OPT,
    FORMAT_OPT,
    FROM_OPT,
    INIT_QUIET_OPT,
    MARKDOWN_OPT,
    MODEL_ARG,
    OUTPUT_OPT,
    PLOT_OPT,
    QUIET_OPT,
    RESUME_STEP_OPT,
    SEED_OPT,
    STEPS_OPT,
    TARGET_OPT,
    TENSORBOARD_OPT,
    UNSAFE_OPT,
    VERBOSE_OPT,
    VERIFY_FIXES_OPT,
    VERSION_OPT,
    examples,
    verbosity,
)
from nandoc.cli.output import (
    color_wanted,
    finish,
    quiet_tensorflow,
    running,
    terminal_stderr,
    user_errors,
    write_plot,
)
from nandoc.cli.process import interrupted_code, leave, user_output_to_stderr
from nandoc.core.finding import FailOn
from nandoc.render import QUIET, Format

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


@app.callback()
def main_options(version: bool = VERSION_OPT) -> None:
    """A doctor for Keras/TensorFlow training runs whose loss turns into NaN."""


@app.command(epilog=examples(
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
    steps: int = BURST_OPT,
    unsafe: bool = UNSAFE_OPT,
    seed: int | None = SEED_OPT,
    quiet: bool = QUIET_OPT,
    verbose: bool = VERBOSE_OPT,
) -> None:
    """Check a model, its loss and its data for NaN causes, in seconds."""
    from nandoc.config import load_config, with_overrides

    level = verbosity(quiet, verbose)
    quiet_tensorflow()
    with running() as code_files:
        cfg = with_overrides(load_config(config), model=model, data=data, target=target,
                             custom_objects=custom_objects, seed=seed, unsafe=unsafe)
        prepare(cfg, code_files, output=output)  # before any work: outputs never on inputs
        from nandoc.drivers.check import check as run_check
        from nandoc.quiet import native_stderr_captured

        with user_output_to_stderr(), native_stderr_captured() as captured:
            report = run_check(cfg, steps=steps, child_process=True)
    finish(report, fmt, output, fail_on, level, captured.text)


@app.command(epilog=examples(
    "nandoc replay                                  # ./nandoc.toml, its [train] epochs",
    "nandoc replay --epochs 2 --steps 200 --plot replay.png",
    "nandoc replay --no-verify-fixes --format json -o replay.json",
    "nandoc replay --from last_finite.keras --epoch 66   # resume where the run failed"))
def replay(
    model: Path | None = MODEL_ARG,
    data: Path | None = DATA_ARG,
    config: Path | None = CONFIG_OPT,
    target: str | None = TARGET_OPT,
    custom_objects: list[Path] | None = CUSTOM_OBJECTS_OPT,
    epochs: int | None = EPOCHS_OPT,
    steps: int | None = STEPS_OPT,
    verify_fixes: bool = VERIFY_FIXES_OPT,
    plot: Path | None = PLOT_OPT,
    tensorboard: Path | None = TENSORBOARD_OPT,
    checkpoint: Path | None = FROM_OPT,
    epoch: int | None = EPOCH_OPT,
    step: int | None = RESUME_STEP_OPT,
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

    level = verbosity(quiet, verbose)
    quiet_tensorflow()
    with running() as code_files:
        cfg = with_overrides(load_config(config), model=model, data=data, target=target,
                             custom_objects=custom_objects, seed=seed, unsafe=unsafe)
        from nandoc.cli.resume import last_epoch, resume_from

        resume = resume_from(checkpoint, epoch, step)
        prepare(cfg, code_files, output=output, plot=plot, folders={"tensorboard": tensorboard},
                extra_inputs={"the --from checkpoint": checkpoint})
        from nandoc.drivers.replay import replay as run_replay
        from nandoc.quiet import native_stderr_captured
        from nandoc.render.progress import replay_progress

        live = fmt is Format.TEXT and level > QUIET and color_wanted(sys.stderr)
        with user_output_to_stderr(), terminal_stderr(live) as terminal, \
                native_stderr_captured() as captured, terminal(), \
                replay_progress(live, last_epoch(resume, epochs, cfg.train.epochs)) as bar:
            report = run_replay(cfg, epochs=epochs, steps=steps, verify_fixes=verify_fixes,
                                progress=bar.update if bar is not None else None,
                                tensorboard=tensorboard, resume=resume)
    plot_error = write_plot(report, plot) if plot is not None else None
    finish(report, fmt, output, fail_on, level, captured.text,
           (plot_error,) if plot_error else ())


@app.command(epilog=examples(
    "nandoc explain                       # every cause id with a one-line summary",
    "nandoc explain where-gradient-trap",
    "nandoc explain --markdown > docs/causes.md"))
def explain(cause: str | None = CAUSE_ARG, markdown: bool = MARKDOWN_OPT) -> None:
    """What a cause is, why it makes NaN, how to confirm and fix it. No argument: list all."""
    from nandoc.cli.explaining import explain as run_explain

    run_explain(cause, markdown)


@app.command(epilog=examples(
    "nandoc init                  # the model and data in the current folder",
    "nandoc init runs/exp3 --force && nandoc check -c runs/exp3/nandoc.toml"))
def init(folder: Path = FOLDER_ARG, force: bool = FORCE_OPT,
         quiet: bool = INIT_QUIET_OPT) -> None:
    """Write a commented nandoc.toml for the model and data in a folder.

    It reads the model's saved config (never runs its code) for the input shape and the custom
    objects, and the data's header for the target column; every guess is explained in a
    comment. An existing nandoc.toml is never replaced without --force.
    """
    from nandoc.init import summary, write_config

    with user_errors():
        path, plan = write_config(folder, force=force)
    if not quiet:
        typer.echo(summary(plan, path), nl=False)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("nandoc: interrupted", err=True)
        leave(interrupted_code())
    except SystemExit as done:
        leave(done.code)
