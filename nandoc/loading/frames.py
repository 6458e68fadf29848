"""Data held in memory as polars frames: an .npz archive's arrays, or arrays handed in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from nandoc.errors import DataError


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def npz_frame(path: Path) -> pl.DataFrame:
    try:
        arrays = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise DataError(f"The data file {path} is not a readable .npz archive: "
                        f"{first_line(exc)}. Save it with np.savez.") from None
    if not hasattr(arrays, "files"):
        raise DataError(f"The data file {path} holds a single array, not an .npz archive of "
                        f"named arrays. Save it with np.savez(path, x=features, y=labels).")
    try:
        with arrays:
            named = {k: arrays[k] for k in arrays.files}
    except Exception as exc:
        raise DataError(f"The data file {path} is not a readable .npz archive: "
                        f"{first_line(exc)}.") from None
    cols: dict[str, np.ndarray] = {}
    for key, arr in named.items():
        if arr.ndim == 1:
            cols[key] = arr
        elif arr.ndim == 2:
            for i in range(arr.shape[1]):
                cols[f"{key}{i}"] = arr[:, i]
        else:
            raise DataError(
                f"In {path}, array '{key}' has {arr.ndim} dimensions. nandoc reads rows of "
                f"features: save it as 2-D (rows x features) and set [data.window] so nandoc "
                f"builds the windows itself."
            )
    lengths = {len(v) for v in cols.values()}
    if len(lengths) > 1:
        raise DataError(f"In {path}, the arrays have different lengths "
                        f"({', '.join(f'{k}: {len(v)}' for k, v in cols.items())}); every "
                        f"array must have one entry per row.")
    try:
        return pl.DataFrame({k: np.asarray(v, dtype=np.float64) for k, v in cols.items()})
    except (TypeError, ValueError) as exc:
        raise DataError(f"In {path}, an array is not numeric: {first_line(exc)}.") from None


def array_frame(columns: dict[str, np.ndarray], rows: np.ndarray, row_column: str
                ) -> pl.DataFrame:
    """One float column per array, plus each row's number in `row_column`."""
    return pl.DataFrame({**{c: np.asarray(v, dtype=np.float64) for c, v in columns.items()},
                         row_column: np.asarray(rows, dtype=np.int64)})
