"""`[data] source = "file.py:function"`: the user's data pipeline as nandoc's Dataset.

The function's dataset is streamed once (`source_fn.load_source`): the data checks read the
statistics of every element streamed; the model passes and the training burst use the first
samples kept. Its x and y are matched to the model's inputs and outputs by name (dict elements)
or in order (tuples); rows are element indices from 1, in the dataset's order.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from nandoc.config import Config
from nandoc.errors import DataError
from nandoc.loading.array_data import array_dataset
from nandoc.loading.structured import Arrays, Signature, check_names, fit_array


def _by_port(arrays: dict[str, np.ndarray], structure: str, names: tuple[str, ...],
             what: str, spec: str) -> dict[str, np.ndarray]:
    """The arrays keyed by model input (output) name."""
    if not names or structure in ("none", "array") and len(names) <= 1:
        return arrays
    if structure == "dict":
        check_names(tuple(arrays), names, what, "source")
        return arrays
    if len(arrays) != len(names):
        raise DataError(f"The source {spec} yields {len(arrays)} {what} array(s) but the model "
                        f"has {len(names)} {what}s ({', '.join(names)}); yield one per {what}, "
                        f"or a dict keyed by the {what} names.")
    return dict(zip(names, arrays.values(), strict=True))


def source_dataset(cfg: Config, sig: Signature | None) -> tuple[Any, list]:
    from nandoc.loading.source_fn import load_source

    assert cfg.data_function is not None
    base = cfg.source.parent if cfg.source is not None else Path.cwd()
    data = load_source(cfg.data_function, base)
    x = _by_port(data.x, data.x_structure, sig.input_names if sig else (), "input",
                 cfg.data_function)
    y = _by_port(data.y, data.y_structure, sig.output_names if sig else (), "output",
                 cfg.data_function)
    if sig is not None:
        ports = {p.name: p for p in sig.inputs}
        if len(sig.inputs) == 1:
            (key, arr), = x.items()
            x = {key: fit_array(arr, sig.inputs[0], key, data.path.name)}
        else:
            x = {k: fit_array(a, ports[k], k, data.path.name) for k, a in x.items()}
    several_in = len(x) > 1 or (sig is not None and len(sig.inputs) > 1)
    several_out = len(y) > 1 or (sig is not None and len(sig.outputs) > 1)
    named = replace(cfg, inputs=tuple((k, (k,)) for k in x) if several_in else (),
                    outputs=tuple((k, (k,)) for k in y) if several_out else (),
                    validation_path=None)
    picked = Arrays(x, y, tuple(x), tuple(y))
    # the statistics are keyed by the source's own keys (x0, y, ...): renamed to the model's
    # names, which `_by_port` gave the arrays in the same order
    renamed = dict(zip([*data.x, *data.y], [*x, *y], strict=True))
    stats = ({new: data.stats[old] for old, new in renamed.items()}
             if all(old in data.stats for old in renamed) else None)
    return array_dataset(picked, data.rows, named, data.path, "source",
                         n_total=None if data.complete else data.n_total, stats=stats)
