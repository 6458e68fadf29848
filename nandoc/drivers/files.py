"""Inputs from files, as check and replay gather them: the config's model, data, custom objects."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from concurrent.futures import BrokenExecutor, Executor, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from threading import Event

from nandoc.config import Config
from nandoc.engine.inputs import Inputs
from nandoc.errors import ConfigError, CustomObjectsError, DataError
from nandoc.loading.custom_objects import import_source
from nandoc.loading.dataset import (
    ModelInput,
    build_dataset,
    check_fit,
    scan_plan,
)
from nandoc.loading.model import (
    SavedModelSummary,
    inspect_model_file,
    refuse_unsafe,
    summarise_config,
)
from nandoc.loading.model_input import check_model_fits
from nandoc.loading.shards import is_glob, is_shard_set
from nandoc.loading.structured import check_names
from nandoc.loading.table import ScannedFile, ScanPlan, Table, open_table, scan_table
from nandoc.paths import require_file

# A small file's scan ends within QUICK_SCAN_S, so its errors come before TensorFlow imports;
# a larger one is not waited for: its scan overlaps the import.
QUICK_SCAN_S = 0.25
QUICK_SCAN_BYTES = 16 * 2**20
# Data this large, when its rows are sampled, is scanned in a child process while TensorFlow
# imports in this one: in one process the two share one interpreter lock and slow each other
# (10 GB of parquet shards: the scan alone 7.2 s; in a thread next to the import 10.5-11.1 s;
# in a second process both done at 8.8-9.0 s). Smaller data keeps the thread: a child costs
# ~0.3 s to start, and a whole file (not sampled) would have to come back through a pipe.
CHILD_SCAN_BYTES = 256 * 2**20
WHOLE = 2**62  # a plan's keep-all limits when every row is kept (replay: no sample)
# The child's memory allocator (polars' jemalloc) keeps the pages it freed for the next batch
# instead of handing them back and faulting fresh ones in (reading the 10 GB of shards: a
# third of the page faults). jemalloc reads it once, as it starts: polars' import writes its
# own defaults there, followed by what the variable held, and the last setting of a key wins;
# so the child's value is this process's (polars' defaults and any of the user's) followed by
# these. The child's environment only: never this process's.
CHILD_ALLOCATOR = {"_RJEM_MALLOC_CONF": "dirty_decay_ms:-1,muzzy_decay_ms:-1"}


@dataclass(frozen=True)
class _Scanned:
    data: ScannedFile | None
    val: ScannedFile | None


def _open_tables(cfg: Config) -> tuple[Table | None, Table | None]:
    """Open the data files (header and first rows only): bad paths and formats fail fast."""
    data = open_table(cfg.data_path) if cfg.data_path is not None else None
    val = open_table(cfg.validation_path) if cfg.validation_path is not None else None
    return data, val


def _plans(cfg: Config, tables: tuple[Table | None, Table | None], window_hint: int | None,
           sample: bool) -> tuple[ScanPlan | None, ScanPlan | None]:
    def one(table: Table | None) -> ScanPlan | None:
        if table is None:
            return None
        plan = scan_plan(cfg, table, window_hint)
        if not sample:
            plan = replace(plan, keep_all_rows=WHOLE, keep_all_bytes=WHOLE)
        return plan

    return one(tables[0]), one(tables[1])


def _scan_files(tables: tuple[Table | None, Table | None],
                plans: tuple[ScanPlan | None, ScanPlan | None], stop: Event | None) -> _Scanned:
    def one(k: int, role: str) -> ScannedFile | None:
        table, plan = tables[k], plans[k]
        if table is None or plan is None:
            return None
        return ScannedFile(table, scan_table(table, plan, stop), role)

    return _Scanned(one(0, "data"), one(1, "validation"))


def _model_input_from(summary: SavedModelSummary | None) -> ModelInput | None:
    if summary is None or summary.n_inputs != 1 or not summary.input_shape:
        return None
    return ModelInput.from_shapes([summary.input_shape], [])


def _check_names(cfg: Config, summary: SavedModelSummary | None) -> None:
    """Named inputs and outputs against the saved config's names: before TensorFlow."""
    if summary is None:
        return
    from nandoc.loading.structured import require_mapping

    for n, names, what, given in ((summary.n_inputs, summary.input_names, "input", cfg.inputs),
                                  (summary.n_outputs, summary.output_names, "output",
                                   cfg.outputs)):
        if n and len(names) == n:
            require_mapping(n, tuple(names), cfg, what)
        elif given and names:
            check_names(tuple(k for k, _ in given), tuple(names), what,
                        "inputs" if what == "input" else "target")


def _check_data_fits(cfg: Config, scanned: _Scanned, summary: SavedModelSummary | None) -> None:
    """The data errors that need no model (or only its saved config): before TensorFlow."""
    if scanned.data is None:
        return
    check_fit(scanned.data.table, scanned.data.scan, cfg, _model_input_from(summary))


def table_config(cfg: Config) -> Config:
    """The config as the table reader takes it: named inputs' columns are the features."""
    if not cfg.inputs:
        return cfg
    return replace(cfg, features=tuple(dict.fromkeys(c for _, cols in cfg.inputs
                                                     for c in cols)))


def _array_route(cfg: Config, summary: SavedModelSummary | None) -> bool:
    """Data read as arrays (images, npz arrays of any rank, a source function), not a table."""
    if cfg.data_function is not None:
        return True
    path = cfg.data_path
    if path is None:
        return False
    if path.is_dir():
        return _image_folder(path)
    if path.suffix.lower() != ".npz":
        return False
    if cfg.inputs or cfg.outputs or (summary is not None and summary.n_inputs not in (None, 1)):
        return True
    shape = summary.input_shape if summary is not None else None
    if shape is not None and len(shape) > 3:
        return True
    from nandoc.loading.array_data import npz_ranks

    return any(rank >= 3 for rank in npz_ranks(path).values())


def _image_folder(path: Path) -> bool:
    """A folder with subfolders (the classes) is read as an image folder."""
    try:
        return path.is_dir() and any(not p.name.startswith(".") and p.is_dir()
                                     for p in path.iterdir())
    except OSError:
        return False


def _load_model(cfg: Config, inputs: Inputs) -> None:
    inputs.sources = [import_source(p) for p in cfg.custom_objects]
    if cfg.model_path is not None:
        from nandoc.loading.model import describe_losses, load_model

        objects = {k: v for s in inputs.sources for k, v in s.objects.items()}
        inputs.model = load_model(cfg.model_path, objects, cfg.unsafe)
        inputs.loss = describe_losses(inputs.model)


def _load_arrays(cfg: Config, summary: SavedModelSummary | None) -> Inputs:
    """Images, npz arrays or a source function: the model first (its input shapes say how to
    read the data), then the arrays."""
    from nandoc.loading import array_data
    from nandoc.loading.structured import Signature

    if cfg.data_function is None:  # a source's elements say which input they feed
        _check_names(cfg, summary)
    inputs = Inputs(config=cfg)
    _load_model(cfg, inputs)
    sig = Signature.of(inputs.model) if inputs.model is not None else None
    if cfg.data_function is not None:
        from nandoc.loading.source_data import source_dataset

        inputs.data, inputs.scan = source_dataset(cfg, sig)
    elif cfg.data_path is not None and cfg.data_path.is_dir():
        inputs.data, inputs.scan = array_data.image_dataset(cfg, sig)
    else:
        inputs.data, inputs.scan = array_data.npz_dataset(cfg, sig)
    return inputs


def _check_paths(cfg: Config) -> None:
    """Every input is a regular file (or a folder where one is read) before anything opens
    it, and an .npz's arrays fit in memory, from their headers: before TensorFlow imports."""
    fix = "Check [data] path in nandoc.toml or the DATA argument."
    if cfg.data_path is not None and not is_glob(cfg.data_path):
        require_file(cfg.data_path, "data file", DataError, fix=fix, folder="")
    if cfg.validation_path is not None and not is_shard_set(cfg.validation_path):
        images = cfg.data_path is not None and _image_folder(cfg.data_path)
        require_file(cfg.validation_path, "validation file", DataError,
                     fix="Check [data] validation_path in nandoc.toml.",
                     folder="" if images else None)
    for p in cfg.custom_objects:
        require_file(p, "custom_objects file", CustomObjectsError,
                     fix="Fix [model] custom_objects in nandoc.toml or the --custom-objects "
                         "option.")
    if cfg.data_function is not None:
        from nandoc.loading.source_fn import source_file

        source_file(cfg.data_function, cfg.source.parent if cfg.source else Path.cwd())
    for path, key in ((cfg.data_path, "[data] path"),
                      (cfg.validation_path, "[data] validation_path")):
        if path is not None and path.suffix.lower() == ".npz" and path.is_file():
            from nandoc.loading.array_data import check_npz

            check_npz(path, key)


def _start_scan(tables: tuple[Table | None, Table | None],
                plans: tuple[ScanPlan | None, ScanPlan | None], stop: Event | None,
                child_process: bool = False) -> tuple[Executor, Future]:
    """The scan, started: in a child process for big data whose rows are sampled (the scan
    comes back pickled: a sample, not the whole file) when `child_process`, else in a thread."""
    size = sum(t.size_bytes for t in tables if t is not None)
    sampled = all(p.keep_all_bytes < WHOLE for p in plans if p is not None)
    if child_process and sampled and size > CHILD_SCAN_BYTES:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool: Executor | None = None
        try:
            with _environment(CHILD_ALLOCATOR):  # the child starts within submit
                pool = ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_child_setup)
                return pool, pool.submit(_scan_files, tables, plans, None)
        except (OSError, RuntimeError, ImportError):  # no child processes here: a thread
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nandoc-scan")
    return pool, pool.submit(_scan_files, tables, plans, stop)


@contextlib.contextmanager
def _environment(settings: dict[str, str]):
    """os.environ with each of `settings` appended to its variable's comma-separated value,
    for a child started inside the block; restored after."""
    before = {k: os.environ.get(k) for k in settings}
    for k, v in settings.items():
        os.environ[k] = f"{before[k]},{v}" if before[k] else v
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _child_setup() -> None:
    """The scanning child ignores Ctrl-C (it reaches the whole process group: the parent
    handles it and ends the child), and writes nothing to standard output, where the parent
    may be writing a JSON or JUnit report: its stdout goes to stderr."""
    import signal
    import sys

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.stdout.flush()
    os.dup2(2, 1)


def _scan_result(scanning: Future, again: Callable[[], _Scanned],
                 timeout: float | None = None) -> _Scanned:
    """The scan's result; when its child process died (killed, out of memory), the scan run
    again here."""
    try:
        return scanning.result(timeout=timeout)
    except BrokenExecutor:
        return again()


def _end_child(pool: Executor) -> None:
    """Stop a scanning child process at once (the load failed, or Ctrl-C)."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            proc.terminate()


def load_inputs(cfg: Config, *, sample: bool = True, child_process: bool = False) -> Inputs:
    """Load what the config names. The data scan runs while TensorFlow imports: in a thread,
    or, with `child_process`, in a child process for data over CHILD_SCAN_BYTES whose rows are
    sampled. Only the command line asks for a child: a spawned child imports the parent's main
    module again, which runs a user's unguarded script a second time.

    Everything that can be refused without TensorFlow is refused first: the model file is
    inspected (format, Lambda layers, input shape) and the data files opened before the model
    loads; a small file's scan finishes before the import starts, so its errors come at once.
    A large file keeps a bounded sample of rows for the model passes unless `sample` is False.
    """
    if cfg.model_path is None and cfg.data_path is None and cfg.data_function is None:
        raise ConfigError(
            "Nothing to check: give a model and data as arguments (nandoc check model.keras "
            "data.csv --target label) or in a nandoc.toml ([model] path, [data] path); "
            "`nandoc init` writes one for the files in the current folder."
        )
    summary = None
    if cfg.model_path is not None:
        summary = summarise_config(inspect_model_file(cfg.model_path))
        refuse_unsafe(cfg.model_path, summary, cfg.unsafe)
    _check_paths(cfg)
    if _array_route(cfg, summary):
        return _load_arrays(cfg, summary)
    _check_names(cfg, summary)
    cfg = table_config(cfg)
    tables = _open_tables(cfg)
    hint = summary.input_shape[1] if summary and summary.input_shape and len(
        summary.input_shape) == 3 and summary.input_shape[1] else None
    inputs = Inputs(config=cfg)
    stop = Event()
    plans = _plans(cfg, tables, hint, sample)
    size = sum(t.size_bytes for t in tables if t is not None)
    pool, scanning = _start_scan(tables, plans, stop, child_process)
    again = partial(_scan_files, tables, plans, stop)
    try:
        try:
            scanned: _Scanned | None = _scan_result(
                scanning, again, QUICK_SCAN_S if size <= QUICK_SCAN_BYTES else 0)
        except FutureTimeout:
            scanned = None
        if scanned is not None:
            _check_data_fits(cfg, scanned, summary)
        _load_model(cfg, inputs)
        scanned = scanned or _scan_result(scanning, again)
    except BaseException:
        stop.set()  # a failed load or Ctrl-C: the scan ends at its next batch
        _end_child(pool)
        raise
    finally:
        pool.shutdown(wait=True)
    inputs.scan = [s for s in (scanned.data, scanned.val) if s is not None]
    if scanned.data is not None:
        model_input = (check_model_fits(inputs.model, cfg)
                       if inputs.model is not None else None)
        inputs.data = build_dataset(scanned.data.table, scanned.data.scan, cfg, model_input,
                                    scanned.val.table if scanned.val else None,
                                    scanned.val.scan if scanned.val else None)
    return inputs
