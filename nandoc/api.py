"""The Python API: `diagnose(model, x, y)` runs nandoc's checks on a live model and in-memory
arrays and returns the same Report the command line renders."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from nandoc.core.report import Report


def diagnose(model: Any, x: Any, y: Any = None, *, loss: Any = None, batch_size: int = 32,
             validation_split: float = 0.0, feature_names: Sequence[str] | None = None,
             target_names: Sequence[str] | None = None, sources: Sequence[Any] = (),
             rows: Sequence[int] | None = None, seed: int = 0) -> Report:
    """Run nandoc's checks on a live Keras model and in-memory data; return the Report.

    `model`: a built Keras model (compiled, or pass `loss=`). `x`: what `model.fit` takes:
    rows (n, features) or windows (n, timesteps, features) as numpy, a DataFrame (its column
    names become feature names) or a tensor; an array of any rank the model input takes
    (images (n, H, W, C), token ids (n, T)); for several inputs, a dict {input name: array} or
    a list of arrays in the model's input order. `y`: (n,) or (n, k); for several outputs, a
    dict {output name: array} or a list in output order; None for a model that computes its
    own loss. Findings name the model input or output an array feeds. `validation_split`: the
    LAST fraction of samples, as Keras takes it. `sources`: custom-objects .py files to read
    (never imported) for the static checks. `rows`: the row number (from 1) of each sample in
    your own data, used in findings (default 1..n). The Report renders with
    `nandoc.render.render(report, Format.TEXT)`. Data that does not fit the model (an unknown
    input name, a wrong shape, different sample counts) raises `nandoc.errors.DataError`.
    """
    from nandoc import require_tensorflow_backend
    from nandoc.drivers.arrays import build_inputs, describe
    from nandoc.engine import diagnosis

    require_tensorflow_backend()
    started = time.perf_counter()
    inputs = build_inputs(model, x, y, loss=loss, batch_size=batch_size,
                          validation_split=validation_split, feature_names=feature_names,
                          target_names=target_names, sources=sources, rows=rows, seed=seed)
    loaded = time.perf_counter()
    d = diagnosis.examine(inputs, started)
    done = time.perf_counter()
    return diagnosis.build_report(
        d, "diagnose", inputs=describe(inputs),
        timings={"load_s": round(loaded - started, 3), "checks_s": round(done - loaded, 3),
                 "total_s": round(done - started, 3)})
