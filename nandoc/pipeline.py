"""`nandoc check` as a pipeline: load the inputs, run every check, return a Report."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from nandoc import __version__
from nandoc.checks import load_all
from nandoc.checks.base import Inputs, ScannedFile
from nandoc.config import Config
from nandoc.core.registry import all_checks
from nandoc.core.report import CheckResult, Outcome, Report
from nandoc.errors import ConfigError
from nandoc.loading.custom_objects import import_source
from nandoc.loading.dataset import ModelInput, build_dataset
from nandoc.loading.table import open_table, scan_table
from nandoc.runner import run_checks


@dataclass(frozen=True)
class _Scanned:
    data: ScannedFile | None
    val: ScannedFile | None


def _scan_files(cfg: Config) -> _Scanned:
    def one(path: Path | None, role: str) -> ScannedFile | None:
        if path is None:
            return None
        table = open_table(path)
        return ScannedFile(table, scan_table(table), role)

    return _Scanned(one(cfg.data_path, "data"), one(cfg.validation_path, "validation"))


def load_inputs(cfg: Config) -> Inputs:
    """Load what the config names. The data scan runs in a thread while TensorFlow imports."""
    if cfg.model_path is None and cfg.data_path is None:
        raise ConfigError(
            "Nothing to check: give a model and data as arguments (nandoc check model.keras "
            "data.csv --target label) or in a nandoc.toml ([model] path, [data] path); "
            "`nandoc init` writes one for the files in the current folder."
        )
    inputs = Inputs(config=cfg)
    with ThreadPoolExecutor(max_workers=1) as pool:
        scanning = pool.submit(_scan_files, cfg)
        if cfg.model_path is not None:
            from nandoc.loading.model import describe_losses, load_model

            sources = [import_source(p) for p in cfg.custom_objects]
            objects = {k: v for s in sources for k, v in s.objects.items()}
            inputs.sources = sources
            inputs.model = load_model(cfg.model_path, objects, cfg.unsafe)
            inputs.loss = describe_losses(inputs.model)
        else:
            inputs.sources = [import_source(p) for p in cfg.custom_objects]
        scanned = scanning.result()
    inputs.scan = [s for s in (scanned.data, scanned.val) if s is not None]
    if scanned.data is not None:
        model_input = ModelInput.of(inputs.model) if inputs.model is not None else None
        inputs.data = build_dataset(scanned.data.table, scanned.data.scan, cfg, model_input,
                                    scanned.val.table if scanned.val else None)
    return inputs


def check(cfg: Config) -> Report:
    """Run every registered check on the inputs `cfg` names."""
    started = time.perf_counter()
    broken = load_all()
    inputs = load_inputs(cfg)
    loaded = time.perf_counter()
    findings, results = run_checks(inputs, all_checks())
    results += [CheckResult(module.rsplit(".", 1)[-1], Outcome.FAILED, message=error)
                for module, error in sorted(broken.items())]
    done = time.perf_counter()
    return Report.build(
        "check", __version__, findings, checks=tuple(results), inputs=describe_inputs(inputs),
        timings={"load_s": round(loaded - started, 3), "checks_s": round(done - loaded, 3),
                 "total_s": round(done - started, 3)},
    )


def describe_inputs(inputs: Inputs) -> dict:
    cfg = inputs.config
    out: dict = {}
    if cfg.model_path is not None:
        out["model"] = str(cfg.model_path)
    if inputs.loss:
        out["loss"] = [li.name for li in inputs.loss]
    if cfg.data_path is not None:
        out["data"] = str(cfg.data_path)
    d = inputs.data
    if d is not None:
        out.update({
            "features": list(d.features), "targets": list(d.targets),
            "train_samples": d.train.n, "validation_samples": d.val.n if d.val else None,
        })
        if d.window:
            out["window"] = d.window
        if d.ignored_columns:
            out["ignored_columns"] = list(d.ignored_columns)
    return out
