"""Property-based tests: whatever the config text or the data file holds, nandoc returns a
result or raises its own clean error (exit 2), never an unhandled exception."""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nandoc.config import Config, TrainConfig, WindowConfig, parse_config, with_overrides
from nandoc.errors import ConfigError, DataError
from nandoc.loading.dataset import Dataset, build_dataset
from nandoc.loading.table import open_table, scan_table

# NANDOC_FUZZ_EXAMPLES=2000 hunts longer; no example database is written into the repository.
FAST = settings(max_examples=int(os.environ.get("NANDOC_FUZZ_EXAMPLES", "80")), deadline=None,
                database=None, suppress_health_check=[HealthCheck.too_slow])
ORIGIN = Path("cfg") / "nandoc.toml"

# --- the config parser -----------------------------------------------------------------------

KNOWN = {
    "model": ["path", "custom_objects"],
    "data": ["path", "target", "features", "validation_split", "validation_path"],
    "window": ["length", "stride", "label"],
    "train": ["batch_size", "epochs", "shuffle", "seed", "optimizer", "learning_rate",
              "clipnorm"],
}
scalars = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.booleans(),
    st.sampled_from(["model.keras", "data.csv", "label", "", "\x00", "../x", "last", "adam"]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=5), inner, max_size=2), max_leaves=6)


def _key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)  # JSON string escapes are TOML basic-string escapes
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return "{" + ", ".join(f"{_key(k)} = {_toml(x)}" for k, x in v.items()) + "}"


@st.composite
def toml_documents(draw) -> str:
    lines = []
    for section in draw(st.lists(st.sampled_from(["model", "data", "train", "data.window",
                                                  "trian", "x.y"]), max_size=4, unique=True)):
        lines.append(f"[{section}]")
        known = KNOWN.get(section.split(".")[-1], [])
        keys = draw(st.lists(st.sampled_from(known) | st.text(min_size=1, max_size=6)
                             if known else st.text(min_size=1, max_size=6),
                             max_size=4, unique=True))
        for k in keys:
            lines.append(f"{_key(k)} = {_toml(draw(values))}")
    return "\n".join(lines) + "\n"


@FAST
@given(st.text(max_size=300))
def test_any_text_gives_a_config_or_a_config_error(text):
    try:
        assert isinstance(parse_config(text, ORIGIN), Config)
    except ConfigError as exc:
        assert str(exc) and "\n\n" not in str(exc)


@FAST
@given(toml_documents())
def test_any_toml_document_gives_a_config_or_a_config_error(text):
    try:
        cfg = parse_config(text, ORIGIN)
    except ConfigError as exc:
        assert str(exc).strip()
        return
    # what parses is valid: positive sizes, split in [0, 1), finite learning rate...
    assert 1 <= cfg.train.batch_size and 0 <= cfg.validation_split < 1
    assert cfg.train.learning_rate is None or math.isfinite(cfg.train.learning_rate)


@FAST
@given(target=st.one_of(st.none(), st.text(max_size=8)),
       seed=st.one_of(st.none(), st.integers(min_value=-(2**40), max_value=2**40)))
def test_command_line_overrides_give_a_config_or_a_config_error(target, seed):
    try:
        with_overrides(Config(), target=target, seed=seed)
    except ConfigError:
        pass


# --- the data loader -------------------------------------------------------------------------

NUMBERS = st.one_of(st.integers(min_value=-9, max_value=9).map(str),
                    st.floats(min_value=-1e3, max_value=1e3).map(lambda f: f"{f:.3g}"))
CELLS = st.one_of(
    NUMBERS, NUMBERS, NUMBERS,  # mostly numbers, as real data files hold
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["", "nan", "NaN", "inf", "-Infinity", "NA", "n/a", "null", "?", "1e400",
                     "-1e-400", " 3 ", "0x1F", "1_000", "1,5", '"2"', '"a,b"', '"', "é", "∞",
                     "yes", "\x00", "1e39", "3.4e38"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6),
)


@st.composite
def csv_files(draw) -> tuple[bytes, str, list[str]]:
    sep = draw(st.sampled_from([",", ";", "\t", "|"]))
    n_cols = draw(st.integers(min_value=1, max_value=5))
    names = st.one_of(st.sampled_from(["a", "b", "c", "y", ""]), st.text(max_size=4))
    header = draw(st.lists(names, min_size=n_cols - 1, max_size=n_cols - 1))
    header.insert(draw(st.integers(min_value=0, max_value=n_cols - 1)),
                  draw(st.sampled_from(["label", "label", "label", "y", ""])))
    lines = [sep.join(header)]
    for _ in range(draw(st.integers(min_value=0, max_value=12))):
        width = draw(st.sampled_from([n_cols] * 8 + [max(1, n_cols - 1), n_cols + 1, 0]))
        lines.append(sep.join(draw(CELLS) for _ in range(width)))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(lines) + draw(st.sampled_from(["", newline, newline * 3]))
    raw = text.encode("utf-8", errors="surrogatepass")
    if draw(st.booleans()):
        raw = draw(st.sampled_from([b"\xef\xbb\xbf", b""])) + raw
    target = draw(st.sampled_from(["label"] * 4 + [*header, "zz"]))
    return raw, target, header


def _load(raw: bytes, target: str, suffix: str = ".csv", **cfg) -> Dataset | None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"data{suffix}"
        path.write_bytes(raw)
        try:
            table = open_table(path)
            scan = scan_table(table)
            return build_dataset(table, scan, Config(data_path=path, target=(target,), **cfg),
                                 None)
        except (DataError, ConfigError) as exc:
            message = str(exc)
            assert message.strip() and "Traceback" not in message
            return None


@FAST
@given(csv_files())
def test_any_csv_gives_a_dataset_or_a_data_error(file):
    raw, target, _ = file
    ds = _load(raw, target)
    if ds is not None:
        assert ds.train.n == ds.train.total and ds.train.x.dtype.name == "float32"
        assert list(ds.train.rows) == sorted(ds.train.rows)


@FAST
@given(csv_files(), st.integers(min_value=1, max_value=5), st.integers(min_value=1, max_value=3),
       st.sampled_from([0.0, 0.3]))
def test_any_csv_with_windows_and_a_split_gives_a_dataset_or_a_data_error(file, length,
                                                                          stride, split):
    raw, target, _ = file
    _load(raw, target, window=WindowConfig(length=length, stride=stride),
          validation_split=split, train=TrainConfig(batch_size=2))


@FAST
@given(st.binary(max_size=200), st.sampled_from([".csv", ".tsv", ".npz", ".parquet"]))
def test_any_bytes_give_a_dataset_or_a_data_error(raw, suffix):
    _load(raw, "label", suffix)


@FAST
@given(st.integers(min_value=1, max_value=300), st.integers(min_value=1, max_value=3),
       st.integers(min_value=1, max_value=6), st.integers(min_value=1, max_value=3),
       st.sampled_from([0.0, 0.25]), st.integers(min_value=1, max_value=4),
       st.integers(min_value=0, max_value=3))
def test_a_sampled_dataset_holds_exactly_the_samples_of_the_full_one(
        n, n_features, length, stride, split, per_group, seed):
    """Forced onto the sampled path, every sample (a window of rows and its label) is the
    very sample the whole file gives for that label row, and the totals agree."""
    import numpy as np

    from nandoc.loading.dataset import scan_plan

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, n_features)).round(3)
    x[rng.random(x.shape) < 0.02] = np.nan
    y = rng.integers(0, 3, size=n)
    lines = [",".join([*(f"f{i}" for i in range(n_features)), "label"])]
    lines += [",".join([*(f"{v}" for v in row), str(t)]) for row, t in zip(x, y, strict=True)]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "data.csv"
        path.write_text("\n".join(lines) + "\n")
        cfg = Config(data_path=path, target=("label",), validation_split=split,
                     window=WindowConfig(length=length, stride=stride) if length > 1 else None,
                     train=TrainConfig(batch_size=per_group, seed=seed))
        table = open_table(path)
        plan = scan_plan(cfg, table)
        try:
            full = build_dataset(table, scan_table(table, plan), cfg, None)
        except DataError:
            return  # a window longer than the data: refused on both paths alike
        from dataclasses import replace

        part = build_dataset(table, scan_table(table, replace(plan, keep_all_rows=0)), cfg,
                             None)
    assert part.sampled and not full.sampled
    for a, b in ((full.train, part.train), (full.val, part.val)):
        if a is None:
            assert b is None
            continue
        assert (a.total, a.n_source_rows) == (b.total, b.n_source_rows) and b.n <= a.n
        index = {int(r): i for i, r in enumerate(a.rows)}
        for xs, ys, r in zip(b.x, b.y, b.rows, strict=True):
            i = index[int(r)]
            np.testing.assert_array_equal(xs, a.x[i])
            np.testing.assert_array_equal(ys, a.y[i])
        if a.n:  # the sample always holds the first training and the last validation sample
            assert b.n > 0 and (b.rows[0] == a.rows[0] if a.name == "train"
                                else b.rows[-1] == a.rows[-1])
    # labels out of [0, 1]: over every row of the column on the sampled path, over the label
    # rows of the windows on the full one (the first rows of a segment end no window)
    got, want = part.label_hits("label", above=1), full.label_hits("label", above=1)
    if length == 1:
        assert got == want
    else:
        assert got.count >= want.count and set(want.rows) <= set(got.rows) | set(
            range(got.rows[-1] + 1 if got.rows else 0, n + 1))
