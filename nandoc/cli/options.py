"""Option declarations the commands share, declared once so their help never drifts apart, and
the small callbacks behind them (--version, completion of cause ids, -q/-v)."""

from __future__ import annotations

from pathlib import Path

import typer

from nandoc import __version__
from nandoc.cli.output import fail
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


def examples(*lines: str) -> str:
    # \b keeps click from re-wrapping the block.
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def verbosity(quiet: bool, verbose: bool) -> int:
    if quiet and verbose:
        fail(NandocError("-q/--quiet and -v/--verbose ask for opposite things; give one."))
    return QUIET if quiet else VERBOSE if verbose else NORMAL


def show_version(value: bool) -> None:
    if value:
        typer.echo(f"nandoc {__version__}")
        raise typer.Exit()


def complete_cause(incomplete: str) -> list[str]:
    from nandoc.core.causes import CAUSES

    return [c for c in CAUSES if c.startswith(incomplete)]


VERSION_OPT = typer.Option(False, "--version", callback=show_version, is_eager=True,
                           help="Print the version and exit.")

# Options that `check` and `replay` share.
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
                               "reporters), github (workflow annotations) or html (one "
                               "self-contained page).")
OUTPUT_OPT = typer.Option(None, "--output", "-o",
                          help="Write the report to this file (any format). Its folder must "
                               "exist; an input file (model, data, config, .py) is refused.")
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

# replay's own options.
EPOCHS_OPT = typer.Option(None, "--epochs", min=1,
                          help="Epochs to train (default: [train] epochs).")
STEPS_OPT = typer.Option(None, "--steps", min=1, help="Stop after this many steps in all.")
BURST_OPT = typer.Option(50, "--steps", min=0,
                         help="Train a watched copy for this many steps (at most about 5 s) "
                              "to catch early NaNs, divergence and explosions; 0 skips it.")
VERIFY_FIXES_OPT = typer.Option(True, "--verify-fixes/--no-verify-fixes",
                                help="Re-run the failing steps with each candidate fix.")
PLOT_OPT = typer.Option(None, "--plot",
                        help="Write an image of loss and gradient norm per step: PNG, or "
                             "SVG/PDF by the file's suffix (checked like --output before "
                             "training starts).")
TENSORBOARD_OPT = typer.Option(
    None, "--tensorboard", metavar="DIR",
    help="Write TensorBoard events into this folder (created if missing): nandoc/loss, "
         "nandoc/grad_norm and nandoc/layer_grad_norm/<layer> per step, and at the NaN "
         "nandoc/first_nonfinite and nandoc/finding.")

# explain's.
CAUSE_ARG = typer.Argument(None, help="A cause id, e.g. unclipped-log.",
                           autocompletion=complete_cause)
MARKDOWN_OPT = typer.Option(False, "--markdown",
                            help="Markdown instead of text; with no CAUSE, the whole catalogue "
                                 "(docs/causes.md).")

# init's.
FOLDER_ARG = typer.Argument(Path("."), help="The folder with the model and data files.",
                            file_okay=False)
FORCE_OPT = typer.Option(False, "--force", help="Replace an existing nandoc.toml.")
INIT_QUIET_OPT = typer.Option(False, "--quiet", "-q", help="Print nothing but errors.")

# replay --from's.
FROM_OPT = typer.Option(
    None, "--from", metavar="CHECKPOINT",
    help="Start from a checkpoint: a model saved with model.save('x.keras') (weights and "
         "optimizer state; the [model] path is then not needed) or weights saved with "
         "model.save_weights('x.weights.h5') (the optimizer starts fresh). Needs --epoch, "
         "unless the checkpoint has the .json sidecar NanDoctor(checkpoint_path=...) writes.")
EPOCH_OPT = typer.Option(
    None, "--epoch", metavar="E",
    help="With --from: the epoch (from 1) of the original run the checkpoint starts; it is "
         "replayed with that epoch's batches in nandoc's order ([train] shuffle and --seed). "
         "Reported epochs and steps are the original run's.")
RESUME_STEP_OPT = typer.Option(
    None, "--step", metavar="S",
    help="With --from: the step (from 1) of epoch E to start at; the checkpoint is the state "
         "after step S-1 (default 1).")
