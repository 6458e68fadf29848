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
    # einsum, not np.dot: BLAS starts its threads for every chunk (70x slower on 2 cores)
    return sum(float(np.einsum("i,i->", c, c)) for c in chunks(a))


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
    n_fin = int(np.count_nonzero(fin))
    bad_samples = np.zeros(len(rows), dtype=bool)
    if n_fin < a.size:
        for v in arrays:  # per sample: outputs whose first axis is the batch's
            if v.ndim >= 1 and v.shape[0] == len(rows):
                bad_samples |= ~np.isfinite(v.reshape(len(rows), -1)).all(axis=1)
    # max |value| over the non-NaN values: inf when one is infinite, NaN when all are NaN
    # (asked before the finite copy below exists: one bool temporary at a time)
    has_inf = n_fin < a.size and bool(np.isinf(a).any())
    finite_values = a if n_fin == a.size else a[fin]
    lo = float(finite_values.min()) if n_fin else float("nan")
    hi = float(finite_values.max()) if n_fin else float("nan")
    top = float("inf") if has_inf else max(-lo, hi) if n_fin else float("nan")
    return {
        "finite_fraction": float(n_fin) / a.size if a.size else 1.0,
        "max_abs": top,
        "min": lo,
        "max": hi,
        "nonfinite_rows": tuple(int(r) for r in rows[bad_samples]),
        "histogram": histogram_of(finite_values, lo=lo, hi=hi) if n_fin else None,
    }


def grad_summary(grads: list[Any]) -> tuple[float | None, bool | None]:
    """(L2 norm over `grads`, every value finite); None, None when no gradient reached."""
    parts = [_squares(g) for g in grads if g is not None]
    if not parts:
        return None, None
    return float(np.sqrt(sum(p[1] for p in parts))), all(p[0] for p in parts)


def _squares(t: Any) -> tuple[bool, float]:
    """(every value finite, sum of squares): a tensor whose float32 sum of squares is finite
    and not lost to underflow is finite, and one reduction says both; anything else is
    measured in full by `summary`."""
    if hasattr(t, "numpy") and is_float(t) and getattr(t, "dtype", None) is not None:
        import tensorflow as tf

        x = tf.convert_to_tensor(t)
        if x.dtype not in (tf.float32, tf.float64):
            x = tf.cast(x, tf.float32)
        squares = float(tf.reduce_sum(tf.square(x)))
        if np.isfinite(squares) and squares > 0:
            return True, squares
    finite, _, squares = summary(t)
    return finite, squares


def summary(t: Any) -> tuple[bool, float, float]:
    """(every value finite, max |value| over the non-NaN values or NaN, sum of squares) of a
    tensor or array. A float tensor is measured where it lives, by TensorFlow, in one call
    (no host copy); when its float32 sum of squares overflows or underflows it is taken again
    scaled by the max. A non-finite tensor or anything else is measured a chunk at a time on
    the host in float64."""
    if hasattr(t, "numpy") and is_float(t) and getattr(t, "dtype", None) is not None:
        import tensorflow as tf

        x = tf.convert_to_tensor(t)
        if x.dtype != tf.float64:
            x = tf.cast(x, tf.float32) if x.dtype != tf.float32 else x
        if int(tf.size(x)):
            fin, top, squares = (float(v) for v in _device_summary(x).numpy())
            if fin:
                if top > 0 and (not np.isfinite(squares) or squares < top * top):
                    squares = top * top * float(tf.reduce_sum(tf.square(x / top)))
                return True, top, squares
    a = as_numpy(t)
    finite, top = health(a)
    return finite, top, sum_squares(a)


def _device_summary(x: Any) -> Any:
    """[all finite (1/0), max |x|, sum of x**2] as one tensor: one round trip."""
    import tensorflow as tf

    return tf.stack([tf.cast(tf.reduce_all(tf.math.is_finite(x)), x.dtype),
                     tf.reduce_max(tf.abs(x)), tf.reduce_sum(tf.square(x))])


def compact_gradient(g: Any) -> Any:
    """A sparse gradient (an Embedding's IndexedSlices) as the rows it touches, each summed
    over its repeats: the same norm, finiteness and max as the dense gradient the optimizer
    applies, without a vocabulary-sized dense copy."""
    import tensorflow as tf

    if not isinstance(g, tf.IndexedSlices):
        return g
    unique, position = tf.unique(g.indices)  # IndexedSlices' indices are 1-D
    return tf.math.unsorted_segment_sum(g.values, position, tf.size(unique))


def all_finite(a: np.ndarray) -> bool:
    flat = a.reshape(-1)
    return all(bool(np.isfinite(flat[i:i + CHUNK]).all()) for i in range(0, flat.size, CHUNK))


def max_abs(x: Any) -> float:
    x = np.asarray(x)
    a = np.abs(x[~np.isnan(x)]) if x.size else np.zeros(0)
    return float(a.max()) if a.size else 0.0
