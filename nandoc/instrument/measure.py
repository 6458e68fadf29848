"""Plain-data measurements of the arrays a layer pass sees (outputs, gradients, weights).

Big models have big weights (a 32k x 512 embedding is 64 MB of float32): nothing here makes a
whole-array float64 copy; sums and maxima in float64 are taken a chunk of CHUNK values at a
time, so the temporaries stay a few MB whatever the layer's size.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nandoc.instrument.layer_records import histogram_of


def as_numpy(t: Any) -> np.ndarray:
    return np.asarray(t.numpy() if hasattr(t, "numpy") else t)


def is_float(t: Any) -> bool:
    dtype = getattr(t, "dtype", None)
    return dtype is not None and getattr(dtype, "is_floating", False)


CHUNK = 1 << 16  # values converted to float64 at a time: bounded temporaries on big weights


def chunks(a: np.ndarray):
    flat = a.reshape(-1)
    for i in range(0, flat.size, CHUNK):
        yield flat[i:i + CHUNK].astype(np.float64, copy=False)


def health(a: np.ndarray) -> tuple[bool, float]:
    """(every value finite, max |value| over the non-NaN values: NaN when there is none), a
    chunk at a time."""
    finite, top, any_value = True, 0.0, False
    for c in chunks(a):
        fin = np.isfinite(c)
        finite = finite and bool(fin.all())
        ok = c[~np.isnan(c)]
        if ok.size:
            any_value = True
            top = max(top, float(np.abs(ok).max()))
    return finite, (top if any_value else float("nan"))


def sum_squares(a: np.ndarray) -> float:
    return sum(float(np.dot(c, c)) for c in chunks(a))


def stats(arrays: list[np.ndarray], rows: np.ndarray) -> dict[str, Any]:
    if not arrays:
        return {"finite_fraction": 1.0, "max_abs": 0.0, "min": float("nan"),
                "max": float("nan"), "nonfinite_rows": ()}
    # the values in their own dtype (float16 widened to float32 for the sums); float64 only a
    # chunk at a time: a whole-activation float64 copy doubles or quadruples the memory
    dtype = np.result_type(np.float32, *[v.dtype for v in arrays])
    a = arrays[0].reshape(-1).astype(dtype, copy=False) if len(arrays) == 1 else \
        np.concatenate([v.reshape(-1).astype(dtype, copy=False) for v in arrays])
    fin = np.isfinite(a)
    n_fin = int(fin.sum())
    bad_samples = np.zeros(len(rows), dtype=bool)
    for v in arrays:  # per sample: outputs whose first axis is the batch's
        if v.ndim >= 1 and v.shape[0] == len(rows):
            bad_samples |= ~np.isfinite(v.reshape(len(rows), -1)).all(axis=1)
    finite_values = a if n_fin == a.size else a[fin]
    _, top = health(a)
    return {
        "finite_fraction": float(n_fin) / a.size if a.size else 1.0,
        "max_abs": top,
        "min": float(finite_values.min()) if n_fin else float("nan"),
        "max": float(finite_values.max()) if n_fin else float("nan"),
        "nonfinite_rows": tuple(int(r) for r in rows[bad_samples]),
        "histogram": histogram_of(finite_values),
    }


def grad_summary(grads: list[Any]) -> tuple[float | None, bool | None]:
    """(L2 norm over `grads`, every value finite); None, None when no gradient reached."""
    parts = [summary(g) for g in grads if g is not None]
    if not parts:
        return None, None
    return float(np.sqrt(sum(p[2] for p in parts))), all(p[0] for p in parts)


def summary(t: Any) -> tuple[bool, float, float]:
    """(every value finite, max |value| over the non-NaN values or NaN, sum of squares) of a
    tensor or array. A finite float tensor is measured where it lives, by TensorFlow (no host
    copy; the squares scaled by the max so that float32 cannot overflow); anything else, a
    chunk at a time on the host in float64."""
    if hasattr(t, "numpy") and is_float(t) and getattr(t, "dtype", None) is not None:
        import tensorflow as tf

        x = tf.convert_to_tensor(t)
        if x.dtype != tf.float64:
            x = tf.cast(x, tf.float32) if x.dtype != tf.float32 else x
        if int(tf.size(x)) and bool(tf.reduce_all(tf.math.is_finite(x))):
            top = float(tf.reduce_max(tf.abs(x)))
            squares = 0.0 if top == 0 else top * top * float(tf.reduce_sum(tf.square(x / top)))
            return True, top, squares
    a = as_numpy(t)
    finite, top = health(a)
    return finite, top, sum_squares(a)


def all_finite(a: np.ndarray) -> bool:
    flat = a.reshape(-1)
    return all(bool(np.isfinite(flat[i:i + CHUNK]).all()) for i in range(0, flat.size, CHUNK))


def max_abs(x: Any) -> float:
    x = np.asarray(x)
    a = np.abs(x[~np.isnan(x)]) if x.size else np.zeros(0)
    return float(a.max()) if a.size else 0.0
