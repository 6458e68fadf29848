"""The data source `[data] source = "data.py:make_dataset"`: a function in a Python file the user
named, called with no arguments. Importing the file runs it, which is why nandoc only does so
for a file named in nandoc.toml (as for custom_objects). It returns a `tf.data.Dataset` whose
elements are `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)` as Keras reads them (x and y each
an array, a tuple or a dict of arrays; sample weights are not read), or in-memory arrays: a
tuple `(x, y)` (or `(x,)`, `(x, y, sample_weight)`) or a dict with keys "x" and "y".

Batched or not (`model.fit` takes elements as batches, but a pipeline may stop short of it):
1. the pipeline's nearest batching step decides, found through tf.data's `_input_dataset` links
   (map, prefetch, shuffle, repeat, take keep the answer): `.batch()`, `.padded_batch()` and
   friends make batches, `.unbatch()` makes samples;
2. otherwise (a generator, zip, interleave ...) elements are batches when every x and y tensor
   has an unknown first dimension (`TensorSpec((None, ...))`), samples otherwise.
A batch's rows are its samples; unbatched elements are streamed through `.batch(256)`.

The stream has bounded memory: every sample feeds the statistics (`ArrayStats`), only the first
`keep_samples` (and `keep_bytes`) are kept, and an endless `.repeat()` stops at `max_samples`.
"""

from __future__ import annotations

import difflib
import inspect
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nandoc.errors import DataError
from nandoc.loading.custom_objects import _one_line, _user_line, run_user_file
from nandoc.loading.named import ArrayStats
from nandoc.loading.stats import ColumnScan
from nandoc.paths import require_file

MAX_SAMPLES = 10_000_000
UNBATCHED_CHUNK = 256  # unbatched elements are streamed this many at a time
ARRAY_CHUNK = 4096  # rows of in-memory arrays fed to the statistics at once
EXAMPLE = '[data] source = "data.py:make_dataset"'
ACCEPTED = ('nandoc reads a tf.data.Dataset (elements x, (x, y) or (x, y, sample_weight)), a '
            'tuple (x, y) of arrays, or a dict with keys "x" and "y"')
_BATCHERS = ("_BatchDataset", "_ParallelBatchDataset", "_PaddedBatchDataset",
             "_RebatchDataset", "_DenseToRaggedDataset")


@dataclass(frozen=True)
class SourceData:
    spec: str  # "data.py:make_dataset" as the user wrote it
    path: Path  # the resolved .py file
    x: dict[str, np.ndarray]  # the kept samples: input name, "x", or "x0", "x1" ..
    y: dict[str, np.ndarray]  # output name, "y", or "y0", "y1" ..; {} when there are no targets
    rows: np.ndarray  # int64 sample index from 1 of each kept sample
    n_total: int  # samples streamed (the whole dataset, or up to the stop)
    complete: bool  # every sample of the dataset was kept in x/y
    capped: bool  # streaming stopped before the dataset's end (max_samples, or `seconds`)
    stats: dict[str, ColumnScan]  # over every streamed sample, one column per key of x and y
    batched: bool  # the dataset's elements were batches (their rows are the samples)
    x_structure: str  # "array" | "tuple" | "dict": feed x as one array, a list in order, a dict
    y_structure: str  # the same, or "none"
    stopped_by: str = ""  # why streaming stopped early: "max_samples", "seconds" or ""


@dataclass(frozen=True)
class _Layout:
    x_structure: str
    y_structure: str
    x_keys: tuple[str, ...]
    y_keys: tuple[str, ...]


def load_source(spec: str, base: Path, keep_samples: int = 4096, keep_bytes: int = 256 * 2**20,
                max_samples: int = MAX_SAMPLES, seconds: float | None = None) -> SourceData:
    """Import the file, call the function, and stream what it returns (module docstring)."""
    path, fn_name = _parse(spec, base)
    folder = str(path.parent)
    sys.path.insert(0, folder)  # the file may import its neighbours, as when run as a script
    try:
        fn = _function(spec, path, fn_name)
        result = _call(path, fn_name, fn)
        if _is_dataset(result):
            layout, batched, batches = _from_dataset(spec, path, result)
        else:
            (layout, batches), batched = _from_arrays(spec, result), False
        return _stream(spec, path, layout, batched, batches, keep_samples, keep_bytes,
                       max_samples, seconds)
    finally:
        if folder in sys.path:
            sys.path.remove(folder)


# -- the file and the function --------------------------------------------------------------
def _parse(spec: str, base: Path) -> tuple[Path, str]:
    file, sep, fn_name = str(spec).strip().rpartition(":")
    if not sep or not file.strip() or not fn_name.strip().isidentifier():
        raise DataError(
            f'[data] source = "{spec}" is not of the form "file.py:function". Name the Python '
            f"file and, after a colon, the function in it that returns the data (a "
            f"tf.data.Dataset or arrays), e.g. {EXAMPLE}.")
    path = Path(file.strip()).expanduser()
    path = (path if path.is_absolute() else Path(base) / path).resolve()
    if path.suffix != ".py":
        raise DataError(
            f'[data] source = "{spec}" names {path}, which is not a .py file. Name the Python '
            f"file that defines the data function, e.g. {EXAMPLE}.")
    fix = (f'It comes from [data] source = "{spec}": fix the path in nandoc.toml; a relative '
           f"path is read from the folder of nandoc.toml ({Path(base).resolve()}).")
    require_file(path, "data source file", DataError, fix=fix)
    return path, fn_name.strip()


def source_file(spec: str, base: Path) -> Path:
    """The Python file `[data] source` names, checked to be a regular file (nothing runs)."""
    return _parse(spec, base)[0]


def _function(spec: str, path: Path, fn_name: str) -> Any:
    name = f"nandoc_data_{abs(hash(str(path)))}"
    module = run_user_file(
        path, name, DataError, "the data source file",
        not_python=f"The data source file {path} could not be imported as Python code.",
        script_fix="", hint=_hint,
        fix=f"Fix the file so that it imports without error (python {path.name} runs the same "
            f"code).")
    fn = getattr(module, fn_name, None)
    if fn is None:
        names = sorted(k for k, v in vars(module).items()
                       if inspect.isfunction(v) and v.__module__ == name and k[:1] != "_")
        close = difflib.get_close_matches(fn_name, names, n=1)
        listed = f"Its functions are: {', '.join(names)}." if names else "It has no functions."
        raise DataError(
            f'{path.name} has no function {fn_name!r} (from [data] source = "{spec}"). {listed}'
            f"{f' Did you mean {close[0]!r}?' if close else ''} Fix the name after the colon "
            f"in nandoc.toml.")
    if not callable(fn):
        raise DataError(
            f'{fn_name} in {path} is an object of type {type(fn).__name__}, not a function (from '
            f'[data] source = "{spec}"). Name a function that takes no arguments and returns the '
            f"data.")
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        params = []
    required = [p.name for p in params if p.default is p.empty and p.kind not in
                (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if required:
        raise DataError(
            f"{fn_name}() in {path} needs the arguments {', '.join(required)}, but nandoc calls "
            f"it with none. Give them default values, or add a function without arguments that "
            f"calls it, and name that one in [data] source.")
    return fn


def _hint(exc: BaseException) -> str:
    return (f" Relative paths in the file are opened from the current folder ({Path.cwd()}), "
            f"not from the file's folder." if isinstance(exc, FileNotFoundError) else "")


def _call(path: Path, fn_name: str, fn: Any) -> Any:
    try:
        return fn()
    except SystemExit as exc:
        raise DataError(
            f"Calling {fn_name}() from the data source file {path} called sys.exit({exc.code!r})"
            f". The function must return the data instead of ending the program.") from None
    except Exception as exc:
        raise DataError(
            f"Calling {fn_name}() from the data source file {path} failed at line "
            f"{_user_line(exc, path)}: {type(exc).__name__}: {_one_line(exc)}.{_hint(exc)} Fix "
            f"the function so that it runs with no arguments.") from None


# -- what it returned -----------------------------------------------------------------------
def _is_dataset(obj: Any) -> bool:
    tf = sys.modules.get("tensorflow")  # a dataset means that TensorFlow is imported already
    return tf is not None and isinstance(obj, tf.data.Dataset)


def _flatten(spec: str, element: Any, what: str, is_leaf) -> tuple[_Layout, dict[str, Any]]:
    """x and y of an element as Keras' unpack_x_y_sample_weight reads them (a sample weight is
    dropped), each an array, a tuple of arrays ("x0", "x1" ..) or a dict of arrays (its keys)."""
    if isinstance(element, list):
        element = tuple(element)
    if not isinstance(element, tuple):
        element = (element,)
    if not 1 <= len(element) <= 3:
        raise DataError(
            f"{spec} returned {what} of {len(element)} items; Keras reads (x,), (x, y) or "
            f"(x, y, sample_weight). Put several inputs in a tuple or dict of their own: "
            f"((x1, x2), y) or ({{'a': x1, 'b': x2}}, y).")
    structures, flat = [], []
    for prefix, part in zip("xy", (element[0], element[1] if len(element) > 1 else None),
                            strict=True):
        if part is None:
            structure, items = "none", []
        elif isinstance(part, dict):
            structure, items = "dict", [(str(k), v) for k, v in part.items()]
        elif isinstance(part, (tuple, list)) and not is_leaf(part):
            structure, items = "tuple", [(f"{prefix}{i}", v) for i, v in enumerate(part)]
        else:
            structure, items = "array", [(prefix, part)]
        if structure in ("dict", "tuple") and not items:
            raise DataError(f"{spec} returned an empty {type(part).__name__} for {prefix}; give "
                            f"at least one array.")
        for key, v in items:
            if isinstance(v, (dict, tuple, list)) and not is_leaf(v):
                raise DataError(
                    f"{spec} returned a nested {type(v).__name__} for {key!r}; nandoc reads "
                    f"{prefix} as one array, a tuple of arrays or a dict of arrays. Flatten it.")
        structures.append(structure)
        flat.append(dict(items))
    both = set(flat[0]) & set(flat[1])
    if both:
        raise DataError(f"{spec} gives inputs and targets the same name {sorted(both)[0]!r}; "
                        f"rename one of them (dict keys are the model's input and output names).")
    layout = _Layout(structures[0], structures[1], tuple(flat[0]), tuple(flat[1]))
    return layout, {**flat[0], **flat[1]}


def _is_numbers(v: Any) -> bool:
    """A list or tuple of numbers (one array), not one of arrays (several inputs)."""
    return not any(getattr(item, "ndim", 0) or isinstance(item, dict) for item in v)


def _from_dataset(spec: str, path: Path, ds: Any):
    import tensorflow as tf

    elements = "a dataset whose elements are tuples"
    layout, specs = _flatten(spec, ds.element_spec, elements, lambda v: False)
    for key, ts in specs.items():
        kind = type(ts).__name__
        if isinstance(ts, tf.RaggedTensorSpec) or "Ragged" in kind:
            what, fix = "ragged tensors", "pad them to one length (padded_batch or .to_tensor())"
        elif isinstance(ts, tf.SparseTensorSpec) or "Sparse" in kind:
            what, fix = "sparse tensors", "densify them (tf.sparse.to_dense)"
        elif not isinstance(ts, tf.TensorSpec):
            what, fix = f"a {kind}", "yield plain tensors"
        elif not (ts.dtype.is_floating or ts.dtype.is_integer or ts.dtype.is_bool):
            what = f"{ts.dtype.name} tensors"
            fix = ("turn the text into numbers inside the pipeline (a StringLookup or "
                   "TextVectorization map)" if ts.dtype == tf.string else "cast them to numbers")
        else:
            continue
        raise DataError(
            f"The dataset from {spec} yields {what} for {key!r}; nandoc reads dense numeric "
            f"tensors only. In {path.name}, {fix} before returning the dataset.")
    batched = _batched(ds, specs)
    stream = ds if batched else ds.batch(UNBATCHED_CHUNK)
    batches = ({k: np.asarray(v)
                for k, v in _flatten(spec, e, elements, lambda v: False)[1].items()}
               for e in stream)
    return layout, batched, batches


def _batched(ds: Any, specs: dict[str, Any]) -> bool:
    node, seen = ds, 0
    while node is not None and seen < 1000:  # rule 1: the nearest batching step
        kind = type(node).__name__
        if kind == "_UnbatchDataset":
            return False
        if kind in _BATCHERS:
            return True
        node, seen = getattr(node, "_input_dataset", None), seen + 1
    shapes = [ts.shape for ts in specs.values()]  # rule 2: an unknown first dimension
    return all(s.rank is not None and s.rank >= 1 and s[0] is None for s in shapes)


def _from_arrays(spec: str, result: Any) -> tuple[_Layout, Iterator[dict[str, np.ndarray]]]:
    if isinstance(result, dict) and "x" in result and set(result) <= {"x", "y", "sample_weight"}:
        result = (result["x"], result.get("y"))
    elif not isinstance(result, (tuple, list)) or not result:
        what = (f"a dict with keys {', '.join(map(repr, list(result)[:8]))}"
                if isinstance(result, dict) else f"an object of type {type(result).__name__}")
        extra = ""
        if inspect.isgenerator(result):
            what, extra = "a generator", " Wrap a generator in tf.data.Dataset.from_generator."
        raise DataError(f"{spec} returned {what}; {ACCEPTED}.{extra} Return one of these.")
    layout, flat = _flatten(spec, tuple(result), "a tuple", _is_numbers)
    arrays = {}
    for key, value in flat.items():
        try:
            a = np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise DataError(f"{spec} returned {key!r} that is not one array ({_one_line(exc)}); "
                            f"give rows of one length (pad them).") from None
        if a.dtype.kind not in "biuf" or a.ndim == 0:
            what = "a single value" if a.ndim == 0 else f"values of dtype {a.dtype}"
            raise DataError(f"{spec} returned {what} for {key!r}; nandoc reads numeric arrays "
                            f"with one row per sample. Convert it to numbers, one row a sample.")
        arrays[key] = a
    lengths = {k: int(a.shape[0]) for k, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{k}: {n}" for k, n in lengths.items())
        raise DataError(f"{spec} returned arrays of different lengths ({listed}); x and y need "
                        f"one row per sample each.")
    n = next(iter(lengths.values()))
    return layout, ({k: a[lo:lo + ARRAY_CHUNK] for k, a in arrays.items()}
                    for lo in range(0, n, ARRAY_CHUNK))


# -- streaming ------------------------------------------------------------------------------
def _tf_error(spec: str, path: Path, exc: Exception, n: int) -> DataError:
    """An error while iterating, often the user's own exception relayed by tf.data."""
    text = str(getattr(exc, "message", None) or exc)
    lines = [m.group(2) for m in re.finditer(r'File "([^"]+)", line (\d+)', text)
             if Path(m.group(1)).resolve() == path]
    text = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", text.strip())
    first = _one_line(Exception(text.split("\nTraceback")[0].split("[[{{node")[0]
                                .split("[Op:")[0]))
    if not re.match(r"[A-Za-z_][\w.]*: ", first):  # not already "ValueError: ..." from the user
        first = f"{type(exc).__name__}: {first}"
    fix = (" The elements differ in shape: pad them to one shape (padded_batch), or batch the "
           "dataset yourself." if "Cannot batch tensors with different shapes" in first
           else f" Fix the dataset pipeline in {path.name}.")
    where = f" (line {lines[-1]} of {path.name})" if lines else ""
    return DataError(f"Reading the dataset from {spec} failed after {n} samples had been read"
                     f"{where}: {first.rstrip('.')}.{fix}")


def _stream(spec: str, path: Path, layout: _Layout, batched: bool,
            batches: Iterator[dict[str, np.ndarray]], keep_samples: int, keep_bytes: int,
            max_samples: int, seconds: float | None) -> SourceData:
    keys = layout.x_keys + layout.y_keys
    stats = ArrayStats(keys)
    kept: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    n_total = n_kept = kept_bytes = 0
    keeping, empty, stopped_by, capped = True, None, "", False
    start = time.monotonic()

    def pull() -> dict[str, np.ndarray] | None:
        try:
            return next(batches, None)
        except DataError:
            raise
        except Exception as exc:
            raise _tf_error(spec, path, exc, n_total) from None

    while (batch := pull()) is not None:
        lengths = {k: (int(v.shape[0]) if v.ndim else -1) for k, v in batch.items()}
        n = lengths[keys[0]]
        if len(set(lengths.values())) > 1 or n < 0:
            listed = ", ".join(f"{k}: {'a scalar' if m < 0 else m}" for k, m in lengths.items())
            raise DataError(
                f"The dataset from {spec} yields batches whose parts differ in length ({listed})"
                f". Every x and y tensor of a batch needs one row per sample.")
        if n_total + n > max_samples:
            batch = {k: v[:max_samples - n_total] for k, v in batch.items()}
            n, capped, stopped_by = max_samples - n_total, True, "max_samples"
        rows = np.arange(n_total + 1, n_total + n + 1, dtype=np.int64)
        stats.add(batch, rows)
        if keeping and n:
            empty = empty or {k: v[:0].copy() for k, v in batch.items()}
            same = all(v.shape[1:] == empty[k].shape[1:] for k, v in batch.items())
            per = sum(v.nbytes // n for v in batch.values())
            room = min(keep_samples - n_kept, (keep_bytes - kept_bytes) // max(per, 1))
            take = max(0, min(n, room)) if same else 0
            if take:
                for k, v in batch.items():
                    kept[k].append(np.array(v[:take]))  # a copy: the batch is not held
                n_kept, kept_bytes = n_kept + take, kept_bytes + take * per
            keeping = take == n
        n_total += n
        if capped:
            break
        over_time = seconds is not None and time.monotonic() - start > seconds
        if n_total >= max_samples or over_time:
            if pull() is not None:
                capped, stopped_by = True, "max_samples" if n_total >= max_samples else "seconds"
            break
    if n_total == 0:
        raise DataError(f"The data from {spec} holds no samples. Check that {path.name} returns "
                        f"the data (a filter or a take(0) may drop everything).")
    arrays = {k: np.concatenate(parts) if parts else (empty or {}).get(k, np.empty((0,)))
              for k, parts in kept.items()}
    return SourceData(
        spec=spec, path=path, x={k: arrays[k] for k in layout.x_keys},
        y={k: arrays[k] for k in layout.y_keys}, rows=np.arange(1, n_kept + 1, dtype=np.int64),
        n_total=n_total, complete=not capped and n_kept == n_total, capped=capped,
        stats=stats.result(), batched=batched, x_structure=layout.x_structure,
        y_structure=layout.y_structure, stopped_by=stopped_by)
