"""The streaming scan's fast paths (issue 15, part 2) against an independent reference.

The scan takes a fast path on batch columns without a bad cell (sums, no masks), skips row-sample
and label work a batch cannot change, and reads large files one batch ahead in a second thread.
These tests build tables whose batches exercise both paths (all-finite batches next to batches
with NaN, inf, missing and text cells, values beyond float32, constant columns, a mean that
dwarfs the spread), scan them as parquet shards and as CSV, and compare every statistic with
numpy computing it over the whole column in memory.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from nandoc.loading import table as table_mod
from nandoc.loading.stats import FIRST_ROWS, ColumnStats, Consecutive
from nandoc.loading.table import ScanPlan, open_table, scan_table
from nandoc.loading.targets import MAX_DISTINCT

N_SHARD = 20_000
N = 3 * N_SHARD
FEATURES = ("a", "b", "c", "d", "e", "m")
TARGETS = ("y01", "ymc", "yc", "yh")
F32 = float(np.finfo(np.float32).max)
PER_GROUP = 8


def _data() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(values with NaN where a cell is missing or text, missing masks, text masks)."""
    rng = np.random.default_rng(11)
    a = rng.normal(size=N) * 2 + 0.5  # finite everywhere: every batch clean
    b = rng.normal(size=N)
    b[[4, 16, 40_000]] = np.nan  # shards 1 and 3 dirty, shard 2 clean
    b[100], b[45_000] = np.inf, -np.inf
    c = rng.normal(size=N) * 1e3
    c[30_000] = 1e39  # finite, beyond float32
    d = np.full(N, 5.0)  # constant
    e = 1e6 + rng.normal(size=N)  # the mean dwarfs the spread: M2 in two passes
    m = rng.uniform(-1, 1, N)
    ymc = rng.integers(0, 4, N).astype(np.float64)
    ymc[[12_345, 50_000]] = 4.0  # a rare class
    values = {"a": a, "b": b, "c": c, "d": d, "e": e, "m": m,
              "y01": (a > 0.5).astype(np.float64), "ymc": ymc,
              "yc": np.round(rng.normal(size=N) * 3, 6),  # continuous: > MAX_DISTINCT values
              "yh": rng.choice([0.0, 0.5, 1.0], N)}  # classes, one not an integer
    missing = {k: np.zeros(N, bool) for k in values}
    text = {k: np.zeros(N, bool) for k in values}
    missing["m"][[6, 25_000, 59_999]] = True
    values["m"][missing["m"]] = np.nan
    return values, missing, text


@pytest.fixture(scope="module")
def data():
    return _data()


def _write_shards(folder, values, missing, row_group: int) -> str:
    folder.mkdir()
    for i in range(3):
        part = slice(i * N_SHARD, (i + 1) * N_SHARD)
        frame = pl.DataFrame({k: v[part] for k, v in values.items()})
        frame = frame.with_columns(pl.when(pl.Series(missing["m"][part])).then(None)
                                   .otherwise(pl.col("m")).alias("m"))
        frame.write_parquet(folder / f"part-{i + 1}.parquet", row_group_size=row_group)
    return folder / "part-*.parquet"


@pytest.fixture(scope="module")
def shards(tmp_path_factory, data):
    values, missing, _ = data
    base = tmp_path_factory.mktemp("scan-fast")
    return (_write_shards(base / "rg4096", values, missing, 4096),
            _write_shards(base / "rg7000", values, missing, 7000))


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory, data):
    """The same table as one CSV, with text cells in column m (far below its first rows, so
    the scan finds them mid-file and reads the column again as text)."""
    values, missing, text = (dict(x) for x in data)
    text = {k: v.copy() for k, v in text.items()}
    text["m"][[33_333, 58_000]] = True
    m = values["m"].copy()
    m[text["m"]] = np.nan
    values["m"] = m
    cells = pl.Series("m", m).cast(pl.String)
    cells = pl.select(pl.when(pl.Series(text["m"])).then(pl.lit("oops"))
                      .when(pl.Series(missing["m"])).then(None)
                      .otherwise(cells)).to_series().alias("m")
    frame = pl.DataFrame({k: v for k, v in values.items() if k != "m"}).with_columns(cells)
    frame = frame.select(list(values))
    path = tmp_path_factory.mktemp("scan-fast-csv") / "data.csv"
    frame.write_csv(path)
    return path, (values, missing, text)


@pytest.fixture(autouse=True)
def _read_ahead_always(monkeypatch):
    monkeypatch.setattr(table_mod, "READ_AHEAD_BYTES", 0)  # these small files too


# --- the reference: numpy over whole columns -----------------------------------------------------

def _reference_column(v, missing, text):
    finite = np.isfinite(v)
    nan = np.isnan(v) & ~missing & ~text
    over = finite & (np.abs(v) > F32)
    bad = missing | text | nan | np.isinf(v) | over
    fv = v[finite]
    return dict(n_rows=v.size, n_missing=int(missing.sum()), n_text=int(text.sum()),
                n_nan=int(nan.sum()), n_posinf=int((v == np.inf).sum()),
                n_neginf=int((v == -np.inf).sum()), n_overflow32=int(over.sum()),
                bad_rows=tuple((np.flatnonzero(bad)[:FIRST_ROWS] + 1).tolist()),
                n_finite=int(fv.size), min=float(fv.min()), max=float(fv.max()),
                mean=float(fv.mean()), std=float(fv.std(ddof=1)))


def _check_columns(scan, values, missing, text):
    assert scan.n_rows == N
    for name, v in values.items():
        got, want = scan.columns[name], _reference_column(v, missing[name], text[name])
        for key in ("mean", "std"):
            assert math.isclose(getattr(got, key), want.pop(key), rel_tol=1e-12,
                                abs_tol=1e-12), (name, key)
        assert {k: getattr(got, k) for k in want} == want, name
        assert got.absmax == max(abs(want["min"]), abs(want["max"]))


def _top10(v, rows):
    order = np.lexsort((rows, -v))[:FIRST_ROWS]
    return tuple(zip(v[order].tolist(), rows[order].tolist(), strict=True))


def _check_target(stats, v):
    rows = np.arange(1, v.size + 1)
    ok = np.isfinite(v)
    v, rows = v[ok], rows[ok]
    assert stats.n_finite == v.size and (stats.min, stats.max) == (v.min(), v.max())
    uniq = np.unique(v)
    if uniq.size <= MAX_DISTINCT:
        assert stats.distinct == {u: (int((v == u).sum()), tuple(rows[v == u][:FIRST_ROWS]))
                                  for u in uniq.tolist()}
    else:
        assert stats.distinct is None
    for hits, mask in ((stats.negative, v < 0), (stats.above_one, v > 1),
                       (stats.non_integer, np.floor(v) != v)):
        assert hits.count == int(mask.sum())
        assert hits.rows == tuple(rows[mask][:FIRST_ROWS].tolist())
        bad = np.unique(v[mask])
        if bad.size < 20:
            assert hits.values == tuple(bad.tolist())
        else:  # a few of them
            assert len(hits.values) == 20 and set(hits.values) <= set(bad.tolist())
    assert stats.largest == _top10(v, rows)


# --- the tests -----------------------------------------------------------------------------------

def test_parquet_shards_scan_matches_numpy_over_whole_columns(shards, data):
    values, missing, text = data
    scan = scan_table(open_table(shards[0]),
                      ScanPlan(targets=TARGETS, per_group=PER_GROUP, keep_all_rows=1000))
    _check_columns(scan, values, missing, text)
    for name in TARGETS:
        _check_target(scan.targets[name], values[name])
    assert scan.shards.n_rows == (N_SHARD,) * 3


def test_csv_scan_with_text_cells_found_mid_file_matches_numpy(csv_file):
    path, (values, missing, text) = csv_file
    scan = scan_table(open_table(path), ScanPlan(targets=TARGETS, keep_all_rows=1000))
    _check_columns(scan, values, missing, text)
    assert scan.columns["m"].text_examples == ("oops",)
    for name in TARGETS:
        _check_target(scan.targets[name], values[name])


def _reference_sample_rows(values, missing, features, label, k):
    """Rows the sample must hold: the first and last k, the k with the largest |value| over
    the features (NaN ignored, the earliest row on ties), the first k of each label."""
    score = np.zeros(N)
    for f in features:
        v = np.where(missing[f], np.nan, values[f])
        score = np.fmax(score, np.abs(v))
    rows = np.arange(1, N + 1)
    extreme = rows[np.lexsort((rows, -score))[:k]]
    y = values[label]
    rare = {u: rows[y == u][:k] for u in np.unique(y).tolist()}
    return set(range(1, k + 1)) | set(range(N - k + 1, N + 1)), set(extreme.tolist()), rare


def test_the_sample_holds_first_last_extreme_and_rare_rows_whatever_the_batches(shards, data):
    values, missing, _ = data
    plan = ScanPlan(targets=("ymc",), features=FEATURES, per_group=PER_GROUP, seed=5,
                    keep_all_rows=1000)
    first = scan_table(open_table(shards[0]), plan)
    other = scan_table(open_table(shards[1]), plan)  # other row groups: other batches
    sample = first.sample
    assert not sample.complete
    edges, extreme, rare = _reference_sample_rows(values, missing, FEATURES, "ymc", PER_GROUP)
    held = set(sample.rows.tolist())
    assert edges <= held and extreme <= held and 30_001 in extreme  # the 1e39 row
    for u, rows in rare.items():
        assert set(rows.tolist()) <= held, u
    assert {12_346, 50_001} <= held  # the rare class, both its rows
    # besides those: PER_GROUP random rows at most
    assert len(held - edges - extreme - set().union(*(set(r.tolist()) for r in rare.values()))
               ) <= PER_GROUP
    # the captured values are the table's, as float32 (NaN where a cell is bad)
    full = np.column_stack([np.where(missing[c], np.nan, values[c]) for c in values])
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(sample.values, full[sample.rows - 1].astype(np.float32))
    # the same seed, other batch boundaries: the same sample
    np.testing.assert_array_equal(other.sample.rows, sample.rows)
    np.testing.assert_array_equal(other.sample.values, sample.values)
    # another seed: other random rows
    again = scan_table(open_table(shards[0]), ScanPlan(
        targets=("ymc",), features=FEATURES, per_group=PER_GROUP, seed=6, keep_all_rows=1000))
    assert again.sample.rows.tolist() != sample.rows.tolist()


def test_random_rows_are_uniform_over_the_file(tmp_path):
    """Keys are drawn only for rows that can win (geometric gaps): still uniform."""
    path = tmp_path / "data.parquet"
    pl.DataFrame({"x": np.zeros(N)}).write_parquet(path, row_group_size=5000)
    table = open_table(path)
    picked = []
    for seed in range(40):
        scan = scan_table(table, ScanPlan(per_group=16, seed=seed, keep_all_rows=10))
        rows = set(scan.sample.rows.tolist()) - set(range(1, 17)) - set(range(N - 15, N + 1))
        # the extreme rows of an all-zero column are the first rows
        picked += sorted(rows)
    picked = np.array(picked)
    assert picked.size >= 40 * 14
    counts = np.histogram(picked, bins=10, range=(1, N + 1))[0]
    expected = picked.size / 10
    assert ((counts - expected) ** 2 / expected).sum() < 27.9  # chi2, 9 dof, p = 0.001


def test_a_batch_summary_says_which_columns_were_clean():
    stats = ColumnStats(("clean", "nan", "big", "missing"))
    v = np.arange(10, dtype=np.float64)
    nan, big, gap = v.copy(), v.copy(), v.copy()
    nan[3], big[4], gap[2] = np.nan, 1e39, np.nan
    summary = stats.add([v, nan, big, gap], [None, None, None, np.isnan(gap)], [None] * 4,
                        Consecutive(1, 10), lambda j, idx: [])
    assert summary.clean.tolist() == [True, False, False, False]
    assert summary.lo.tolist() == [0.0, 0.0, 0.0, 0.0]
    assert summary.hi.tolist() == [9.0, 9.0, 1e39, 9.0]
    result = stats.result()
    assert result["nan"].bad_rows == (4,) and result["big"].n_overflow32 == 1
    assert result["missing"].bad_rows == (3,)


def test_consecutive_rows_index_like_an_array():
    rows, same = Consecutive(7, 5), np.arange(7, 12)
    mask = np.array([True, False, True, False, True])
    assert rows[mask].tolist() == same[mask].tolist()
    assert rows[np.array([4, 0])].tolist() == [11, 7]
    assert rows[1:3].tolist() == [8, 9] and rows[0] == 7 and rows[-1] == 11 and len(rows) == 5


def _reading_threads() -> list:
    import threading

    return [t for t in threading.enumerate() if t.name == "nandoc-read" and t.is_alive()]


def test_read_ahead_keeps_order_passes_errors_and_stops_when_closed():
    from itertools import count

    from nandoc.loading.readahead import read_ahead

    def failing():
        yield 1
        yield 2
        raise ValueError("bad batch")

    got = []
    with pytest.raises(ValueError, match="bad batch"):
        for x in read_ahead(failing()):
            got.append(x)
    assert got == [1, 2]
    endless = read_ahead(iter(count()))
    assert [next(endless) for _ in range(5)] == [0, 1, 2, 3, 4]
    endless.close()  # a consumer that stops early
    assert not _reading_threads()


def test_a_stopped_scan_ends_its_reading_thread(shards):
    from threading import Event

    from nandoc.loading.table import ScanStopped

    stop = Event()
    stop.set()
    with pytest.raises(ScanStopped):
        scan_table(open_table(shards[0]), ScanPlan(), stop)
    assert not _reading_threads()
