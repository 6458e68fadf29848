"""[data] source = "file.py:function": a user function returning a tf.data.Dataset or arrays."""

from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from nandoc.errors import DataError
from nandoc.loading.source_fn import SourceData, load_source

DATA_PY = '''
import numpy as np
import tensorflow as tf

N = 10


def _x():
    return {"age": np.arange(N, dtype=np.float32),
            "img": np.arange(N * 4, dtype=np.float32).reshape(N, 2, 2)}


def _y():
    return (np.arange(N) % 2, np.ones((N, 1), np.float32))


def arrays():
    x = np.arange(30, dtype=np.float32).reshape(N, 3)
    return x, (x[:, 0] > 5).astype(np.int64)


def arrays_dict():
    return {"x": [np.zeros((4, 2)), np.ones(4)], "y": [np.int64(0), 1, 0, 1]}


def batched():
    return tf.data.Dataset.from_tensor_slices((_x(), _y())).batch(4).prefetch(1)


def unbatched():
    return tf.data.Dataset.from_tensor_slices((_x(), _y())).shuffle(1, seed=0)


def rebatched():
    return tf.data.Dataset.from_tensor_slices((_x(), _y())).batch(3).unbatch()


def x_only():
    return tf.data.Dataset.from_tensor_slices(np.ones((N, 3), np.float32)).batch(4)


def generator_batches():
    def g():
        for n in (4, 4, 2):
            yield np.ones((n, 3), np.float32), np.zeros((n,), np.float32)
    return tf.data.Dataset.from_generator(g, output_signature=(
        tf.TensorSpec((None, 3), tf.float32), tf.TensorSpec((None,), tf.float32)))


def endless():
    return tf.data.Dataset.from_tensor_slices((np.ones((N, 2)), np.zeros(N))).repeat()


def planted():
    def g():
        for i in range(1, 5001):
            v = np.full(3, float(i), np.float32)
            if i == 1234:
                v[1] = np.nan
            yield v, np.float32(i % 2)
    return tf.data.Dataset.from_generator(g, output_signature=(
        tf.TensorSpec((3,), tf.float32), tf.TensorSpec((), tf.float32)))


def big():
    ds = tf.data.Dataset.range(1_000_000).batch(10_000)
    return ds.map(lambda i: (tf.ones((tf.shape(i)[0], 16)), tf.cast(i, tf.float32)))


def strings():
    return tf.data.Dataset.from_tensor_slices(({"text": ["a", "b"], "n": [1.0, 2.0]}, [0, 1]))


def ragged():
    return tf.data.Dataset.from_tensor_slices(tf.ragged.constant([[1, 2], [3]])).batch(2)


def raises():
    values = [1, 2]
    return values[5]


def returns_number():
    return 42


def returns_generator():
    yield np.zeros(3)


def fails_mid_stream():
    def g():
        for i in range(100):
            if i == 50:
                raise ValueError("sensor 7 unplugged")
            yield np.zeros(3, np.float32)
    return tf.data.Dataset.from_generator(g, output_signature=tf.TensorSpec((3,)))


def lengths_differ():
    return np.zeros((5, 2)), np.zeros(4)


def needs_args(path, scale=1.0):
    return path


def quits():
    raise SystemExit(3)


def empty():
    return tf.data.Dataset.from_tensor_slices(np.ones((N, 3))).take(0)


def varlen():
    return tf.data.Dataset.from_generator(
        lambda: ((np.zeros(i), 0.0) for i in range(1, 4)),
        output_signature=(tf.TensorSpec((None,)), tf.TensorSpec(())))


not_a_function = 3
'''


def line_of(text: str) -> int:
    """The line of data.py that holds `text`."""
    return next(i for i, line in enumerate(DATA_PY.splitlines(), 1) if text in line)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("source")
    (folder / "data.py").write_text(DATA_PY, encoding="utf-8")
    (folder / "broken.py").write_text("import numpy as np\n\nx = 1\ny = x / 0\n")
    (folder / "exits.py").write_text("import sys\nsys.exit(2)\n")
    (folder / "data.txt").write_text("not python\n")
    return folder


@pytest.fixture(scope="module")
def batched(base) -> SourceData:
    return load_source("data.py:batched", base)


def error(base: Path, spec: str, **kw) -> str:
    with pytest.raises(DataError) as info:
        load_source(spec, base, **kw)
    text = str(info.value)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_arrays_source(base):
    src = load_source("data.py:arrays", base)
    assert (src.x_structure, src.y_structure, src.batched) == ("array", "array", False)
    assert src.x["x"].shape == (10, 3) and src.y["y"].tolist() == [0] * 2 + [1] * 8
    assert src.rows.tolist() == list(range(1, 11)) and src.rows.dtype == np.int64
    assert (src.n_total, src.complete, src.capped) == (10, True, False)
    assert src.stats["x"].n_rows == 10 and src.stats["x"].max == 29
    assert src.path == (base / "data.py").resolve()
    assert str(src.path.parent) not in sys.path  # put first only while the file is run


def test_arrays_dict_with_several_inputs(base):
    src = load_source("data.py:arrays_dict", base)
    assert src.x_structure == "tuple" and list(src.x) == ["x0", "x1"]
    assert src.x["x0"].shape == (4, 2) and src.y["y"].tolist() == [0, 1, 0, 1]


def test_batched_dict_inputs_tuple_outputs(batched):
    assert batched.batched and batched.x_structure == "dict" and batched.y_structure == "tuple"
    assert set(batched.x) == {"age", "img"} and list(batched.y) == ["y0", "y1"]
    assert batched.x["img"].shape == (10, 2, 2) and batched.y["y1"].shape == (10, 1)
    assert batched.x["age"].tolist() == list(range(10))
    assert set(batched.stats) == {"age", "img", "y0", "y1"}
    assert batched.stats["img"].n_rows == 10 and batched.stats["img"].max == 39
    assert batched.complete and batched.n_total == 10


def test_unbatched_elements_are_samples(base, batched):
    src = load_source("data.py:unbatched", base)
    assert not src.batched and src.n_total == 10 and src.complete
    for key in ("age", "img"):
        np.testing.assert_array_equal(src.x[key], batched.x[key])
    assert src.stats["y0"] == batched.stats["y0"]


def test_batch_rule(base):
    assert not load_source("data.py:rebatched", base).batched  # .batch().unbatch()
    gen = load_source("data.py:generator_batches", base)  # no .batch(): (None, ...) specs
    assert gen.batched and gen.n_total == 10 and gen.x["x"].shape == (10, 3)


def test_x_only_dataset(base):
    src = load_source("data.py:x_only", base)
    assert src.y == {} and src.y_structure == "none" and src.x_structure == "array"
    assert src.x["x"].shape == (10, 3) and set(src.stats) == {"x"}


def test_repeat_is_capped(base):
    src = load_source("data.py:endless", base, max_samples=1000, keep_samples=50)
    assert (src.n_total, src.capped, src.complete, src.stopped_by) == (1000, True, False,
                                                                       "max_samples")
    assert src.x["x"].shape == (50, 2) and src.stats["x"].n_rows == 1000


def test_seconds_stop_streaming(base):
    src = load_source("data.py:endless", base, seconds=0.0)
    assert src.capped and src.stopped_by == "seconds" and 0 < src.n_total < 10_000_000


def test_nan_counted_once_over_every_sample(base):
    src = load_source("data.py:planted", base, keep_samples=100)
    scan = src.stats["x"]
    assert (scan.n_rows, scan.n_nan, scan.n_bad) == (5000, 1, 1) and 1234 in scan.bad_rows
    assert src.x["x"].shape == (100, 3) and src.rows[-1] == 100
    assert src.n_total == 5000 and not src.complete and not src.capped
    assert src.stats["y"].n_bad == 0


def test_keep_bytes_bounds_the_kept_samples(base):
    src = load_source("data.py:arrays", base, keep_bytes=3 * (12 + 8))
    assert len(src.rows) == 3 and src.x["x"].shape == (3, 3) and not src.complete


def test_memory_stays_bounded(base):
    tracemalloc.start()
    try:
        src = load_source("data.py:big", base, keep_samples=1000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert src.n_total == 1_000_000 and src.x["x"].shape == (1000, 16)
    assert src.stats["x"].n_rows == 1_000_000 and src.stats["y"].max == 999_999
    assert peak < 32 * 2**20  # the whole x is 64 MiB of float32


def test_no_pycache_written(base):
    load_source("data.py:arrays", base)
    assert not (base / "__pycache__").exists()


@pytest.mark.parametrize(("spec", "words"), [
    ("data.py", ["file.py:function", "data.py:make_dataset"]),
    ("data.py:", ["file.py:function"]),
    ("data.txt:load", ["not a .py file"]),
    ("missing.py:load", ["does not exist", "missing.py", "folder of nandoc.toml"]),
    ("data.py:make_dataset", ["no function 'make_dataset'", "arrays, arrays_dict, batched",
                              "planted"]),
    ("data.py:bached", ["Did you mean 'batched'?"]),
    ("data.py:not_a_function", ["is an object of type int, not a function"]),
    ("data.py:needs_args", ["needs the arguments path", "default values"]),
    ("data.py:raises", ["raises() ", f"failed at line {line_of('values[5]')}:",
                        "IndexError: list index"]),
    ("data.py:quits", ["sys.exit(3)"]),
    ("broken.py:load", ["Importing", "broken.py", "line 4", "ZeroDivisionError"]),
    ("exits.py:load", ["sys.exit(2)", "__main__"]),
    ("data.py:returns_number", ["returned an object of type int", "tf.data.Dataset",
                                '"x" and "y"']),
    ("data.py:returns_generator", ["returned a generator", "from_generator"]),
    ("data.py:strings", ["string tensors for 'text'", "StringLookup"]),
    ("data.py:ragged", ["ragged tensors for 'x'", "padded_batch"]),
    ("data.py:lengths_differ", ["different lengths", "x: 5", "y: 4"]),
    ("data.py:fails_mid_stream", [f"(line {line_of('sensor 7')} of data.py)",
                                  "ValueError: sensor 7 unplugged"]),
    ("data.py:empty", ["no samples"]),
    ("data.py:varlen", ["failed after 0 samples", "pad them to one shape"]),
])
def test_errors_are_one_paragraph(base, spec, words):
    text = error(base, spec)
    for word in words:
        assert word in text, (word, text)

