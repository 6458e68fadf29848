"""Large files: the data checks read the streaming scan of every row, the model passes read a
bounded sample, and the same inputs and seed give the same report.

The file here is small enough to be fast (100k rows, about 3 MB); the "keep every row" limit is
lowered so that it takes the sampled path a file of millions of rows takes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from nandoc.config import Config, TrainConfig, WindowConfig
from nandoc.drivers.check import check
from nandoc.drivers.files import load_inputs
from nandoc.errors import DataError
from nandoc.loading import sample as sampling
from nandoc.loading.dataset import build_dataset, scan_plan
from nandoc.loading.table import open_table, scan_table

N = 100_000
NAN_ROW = N - 6  # near the end of the file
LABEL_ROW = 61_234  # a label outside [0, 1] for binary_crossentropy
EXTREME_ROW = 43_210  # the largest |value| of the file


def _write(path: Path, soft: bool, n: int = N) -> Path:
    """Soft labels (0.00 to 1.00: too many values to be classes, so no row is sampled for its
    label) with 1.5 at LABEL_ROW; or 0/1 classes with one 2 at LABEL_ROW (a rare label)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 3)).round(4)
    y = rng.uniform(size=n).round(2) if soft else (x[:, 0] > 0).astype(np.float64)
    y[LABEL_ROW - 1] = 1.5 if soft else 2
    x[EXTREME_ROW - 1, 2] = 9_000.0
    df = pl.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "label": y})
    df = df.with_columns(pl.when(pl.int_range(pl.len()) == NAN_ROW - 1).then(None)
                         .otherwise(pl.col("b")).alias("b"))
    df.write_csv(path, null_value="nan")
    return path


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory) -> Path:
    return _write(tmp_path_factory.mktemp("big") / "big.csv", soft=True)


@pytest.fixture(scope="module")
def classes_csv(tmp_path_factory) -> Path:
    return _write(tmp_path_factory.mktemp("big") / "classes.csv", soft=False)


@pytest.fixture()
def low_limit(monkeypatch):
    """Files above 20k rows take the sampled path."""
    monkeypatch.setattr(sampling, "KEEP_ALL_ROWS", 20_000)


def _report(model: Path, data: Path, **cfg) -> dict:
    from nandoc.render import Format, render

    report = check(Config(model_path=model, data_path=data, target=("label",), **cfg))
    doc = json.loads(render(report, Format.JSON))
    doc.pop("timings", None)
    return doc


def test_sampled_check_names_the_nan_row_near_the_end_and_the_unsampled_label(
        big_csv, models, low_limit):
    cfg = Config(model_path=models["binary"], data_path=big_csv, target=("label",))
    inputs = load_inputs(cfg)
    data = inputs.data
    assert data.sampled and data.train.total == N and data.train.n < 1_000
    assert LABEL_ROW not in set(data.train.rows.tolist())  # only the scan saw it
    assert len(data.label_stats()[0].distinct) == 102  # 0.00..1.00 and 1.5, from the scan
    report = check(cfg)
    by_cause = {f.cause: f for f in report.findings}
    nan = by_cause["data-nonfinite"]
    assert nan.location.column == "b" and nan.location.rows == (NAN_ROW,)
    assert nan.location.lines == (NAN_ROW + 1,)
    label = by_cause["label-out-of-range"]
    assert label.location.rows == (LABEL_ROW,) and label.measured["count"] == 1
    assert label.title.startswith("1 label outside [0, 1]")
    ran = {r.check: r.outcome.value for r in report.checks}
    assert ran["step-data-unscaled"] == "ran" and ran["step-float16-overflow"] == "ran"
    assert report.inputs["train_samples"] == N
    assert report.inputs["sampled_samples"]["train"] == data.train.n


def test_the_sample_is_bounded_and_holds_the_first_random_extreme_and_rare_rows(
        classes_csv, low_limit):
    from nandoc.instrument.batches import select_batches

    table = open_table(classes_csv)
    cfg = Config(data_path=classes_csv, target=("label",), train=TrainConfig(batch_size=16))
    scan = scan_table(table, scan_plan(cfg, table))
    assert not scan.sample.complete
    rows = scan.sample.rows
    assert rows.size <= 16 * (2 + 2 + sampling.RARE_LABELS)  # first, last, random, extreme, rare
    assert np.all(np.diff(rows) > 0) and scan.sample.values.shape == (rows.size, 4)
    assert list(rows[:16]) == list(range(1, 17)) and rows[-1] == N
    assert EXTREME_ROW in set(rows.tolist())
    rare = scan.targets["label"].distinct[2.0]
    assert rare == (1, (LABEL_ROW,)) and LABEL_ROW in set(rows.tolist())
    data = build_dataset(table, scan, cfg, None)
    batches = {b.name: b for b in select_batches(data.train, 16)}
    assert EXTREME_ROW in set(batches["extreme-values"].rows.tolist())
    assert set(batches["rare-label"].rows.tolist()) == {LABEL_ROW}
    # the sampled values are the file's values, row for row
    full = pl.read_csv(classes_csv).to_numpy()
    np.testing.assert_allclose(scan.sample.values, full[rows - 1].astype(np.float32),
                               equal_nan=True)


def test_sampled_windows_are_contiguous_runs_of_file_rows(big_csv, low_limit):
    from nandoc.loading.dataset import ModelInput

    cfg = Config(data_path=big_csv, target=("label",), validation_split=0.2,
                 window=WindowConfig(length=8, stride=3), train=TrainConfig(batch_size=8))
    table = open_table(big_csv)
    data = build_dataset(table, scan_table(table, scan_plan(cfg, table)), cfg,
                         ModelInput(3, 8, 3))
    full = pl.read_csv(big_csv).to_numpy().astype(np.float32)
    split_at = int(N * 0.8)
    assert data.sampled and data.train.total == (split_at - 8) // 3 + 1
    assert data.val.total == (N - split_at - 8) // 3 + 1 and data.val.n > 0
    for split, first in ((data.train, 1), (data.val, split_at + 1)):
        assert split.n > 0
        for window, last in zip(split.x, split.rows, strict=True):
            assert (last - first - 7) % 3 == 0  # on the segment's stride grid
            np.testing.assert_array_equal(window, full[last - 8: last, :3])


def test_a_window_longer_than_the_scans_hint_is_sampled_again(big_csv, low_limit):
    from nandoc.loading.dataset import ModelInput

    cfg = Config(data_path=big_csv, target=("label",), train=TrainConfig(batch_size=4))
    table = open_table(big_csv)
    scan = scan_table(table, scan_plan(cfg, table))  # no window known while scanning
    assert scan.sample.run == 1
    data = build_dataset(table, scan, cfg, ModelInput(3, 12, 3))
    assert data.window == 12 and data.train.n >= 4 and data.train.x.shape[1:] == (12, 3)


def test_same_inputs_and_seed_give_the_same_report(big_csv, models, low_limit):
    first = _report(models["binary"], big_csv, train=TrainConfig(seed=7))
    again = _report(models["binary"], big_csv, train=TrainConfig(seed=7))
    assert first == again


def test_the_seed_picks_the_random_rows(big_csv, low_limit):
    table = open_table(big_csv)

    def rows(seed: int) -> list[int]:
        cfg = Config(data_path=big_csv, target=("label",), train=TrainConfig(seed=seed))
        return scan_table(table, scan_plan(cfg, table)).sample.rows.tolist()

    assert rows(3) == rows(3) and rows(3) != rows(4)


def test_a_small_file_is_kept_whole_and_gives_the_same_report_twice(healthy_csv, models):
    assert _report(models["binary"], healthy_csv) == _report(models["binary"], healthy_csv)
    inputs = load_inputs(Config(model_path=models["binary"], data_path=healthy_csv,
                                target=("label",)))
    assert not inputs.data.sampled and inputs.data.train.n == 120


def test_scan_statistics_match_a_full_read(big_csv):
    scan = scan_table(open_table(big_csv))
    full = pl.read_csv(big_csv).to_numpy()
    for j, name in enumerate(("a", "b", "c", "label")):
        col = full[:, j].astype(np.float64)
        finite = col[np.isfinite(col)]
        c = scan.columns[name]
        assert c.n_finite == finite.size and c.n_rows == N
        assert c.min == finite.min() and c.max == finite.max()
        assert c.mean == pytest.approx(finite.mean(), rel=1e-9, abs=1e-12)
        assert c.std == pytest.approx(finite.std(ddof=1), rel=1e-9)
    assert scan.columns["b"].n_nan == 1 and scan.columns["b"].bad_rows == (NAN_ROW,)


def test_label_statistics_of_a_wide_continuous_target_stay_exact_where_they_can():
    from nandoc.loading.targets import MAX_DISTINCT, TargetAccumulator

    rng = np.random.default_rng(0)
    acc = TargetAccumulator("y")
    values = rng.uniform(0.01, 0.99, size=30_000)
    values[[500, 20_000]] = [-0.5, 1.5]
    values[7] = np.nan
    for start in range(0, values.size, 4096):  # batch by batch, as the scan feeds it
        acc.add(values[start:start + 4096], np.arange(start + 1, min(start + 4097, 30_001)))
    stats = acc.result()
    assert stats.distinct is None and values.size > MAX_DISTINCT
    both = stats.hits(below=0, above=1)
    assert (both.count, both.rows, both.values, both.exact) == (2, (501, 20_001),
                                                                (-0.5, 1.5), True)
    assert stats.hits(below=0).rows == (501,) and stats.n_finite == 29_999
    ids = stats.hits(below=0, at_or_above=1, integer=True)  # class ids of a 1-unit output
    assert ids.count >= 2 and not ids.exact  # non-integers: every value here


def test_a_text_cell_after_the_sniffed_rows_is_counted_not_fatal(tmp_path):
    """Columns whose first rows are numbers are parsed as numbers by the reader; a text cell
    or an unseen NA spelling further down sends that column down the text path instead."""
    rows = [[f"{i / 7:.4f}", f"{i % 13}", str(i % 2)] for i in range(3_000)]
    rows[2_499][1] = "oops"  # row 2500
    rows[2_799][0] = "N/A"  # row 2800: an NA spelling the first rows never showed
    path = tmp_path / "late.csv"
    path.write_text("a,b,label\n" + "\n".join(",".join(r) for r in rows) + "\n")
    table = open_table(path)
    assert not table.string_columns  # the first 1,000 rows are all numbers
    scan = scan_table(table)
    a, b = scan.columns["a"], scan.columns["b"]
    assert (b.n_text, b.bad_rows, b.text_examples) == (1, (2_500,), ("oops",))
    assert (a.n_missing, a.n_text, a.bad_rows) == (1, 0, (2_800,))
    assert scan.n_rows == 3_000 and a.n_finite == 2_999 and b.max == 12


def test_blank_lines_at_the_end_are_not_rows_but_a_blank_line_inside_is(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,label\n1,0\n2,1\n\n3,0\n\n\n  \n")
    scan = scan_table(open_table(path))
    assert scan.n_rows == 4  # rows 1, 2, the blank row 3, and 4; the blank tail is dropped
    assert scan.columns["a"].n_missing == 1 and scan.columns["a"].bad_rows == (3,)
    assert scan.sample.rows.tolist() == [1, 2, 3, 4]


@pytest.fixture
def child_scans(monkeypatch):
    """Data of more than a byte is scanned in a child process, as 256 MiB and more are."""
    from nandoc.drivers import files

    monkeypatch.setattr(files, "CHILD_SCAN_BYTES", 1)
    return files


def _same_scan(a, b) -> None:
    assert (a.n_rows, a.columns, a.targets, a.shards) == (b.n_rows, b.columns, b.targets,
                                                         b.shards)
    np.testing.assert_array_equal(a.sample.rows, b.sample.rows)
    np.testing.assert_array_equal(a.sample.values, b.sample.values)
    assert (a.sample.complete, a.sample.run) == (b.sample.complete, b.sample.run)


def test_big_data_is_scanned_in_a_child_process_with_the_same_result(
        big_csv, models, low_limit, child_scans):
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    cfg = Config(model_path=models["binary"], data_path=big_csv, target=("label",))
    table = open_table(big_csv)
    plans = child_scans._plans(cfg, (table, None), None, True)
    pool, scanning = child_scans._start_scan((table, None), plans, None, child_process=True)
    try:
        assert isinstance(pool, ProcessPoolExecutor)
        in_child = scanning.result().data.scan
    finally:
        pool.shutdown()
    assert not in_child.sample.complete  # sampled: a bounded sample came back, not the file
    _same_scan(in_child, scan_table(table, plans[0]))
    inputs = load_inputs(cfg, child_process=True)  # the whole load, its scan in a child
    _same_scan(inputs.scan[0].scan, in_child)
    assert inputs.data.sampled and inputs.data.train.total == N
    pool, scanning = child_scans._start_scan((table, None), plans, None, child_process=False)
    pool.shutdown()  # a library caller's own process: never a child (its main module reruns)
    assert isinstance(pool, ThreadPoolExecutor)


def test_a_scan_whose_child_process_dies_runs_again_in_this_one(big_csv, low_limit, child_scans):
    from concurrent.futures import BrokenExecutor
    from functools import partial

    cfg = Config(data_path=big_csv, target=("label",))
    table = open_table(big_csv)
    plans = child_scans._plans(cfg, (table, None), None, True)
    pool, scanning = child_scans._start_scan((table, None), plans, None, child_process=True)
    child_scans._end_child(pool)  # as a failed model load or Ctrl-C ends it; or out of memory
    pool.shutdown()
    assert isinstance(scanning.exception(), BrokenExecutor)
    again = partial(child_scans._scan_files, (table, None), plans, None)
    _same_scan(child_scans._scan_result(scanning, again).data.scan,
               scan_table(table, plans[0]))


def test_a_plan_that_keeps_every_row_is_scanned_in_a_thread_even_when_big(
        big_csv, low_limit, child_scans):
    from concurrent.futures import ThreadPoolExecutor

    cfg = Config(data_path=big_csv, target=("label",))
    table = open_table(big_csv)
    whole = child_scans._plans(cfg, (table, None), None, False)  # replay reads every row
    pool, scanning = child_scans._start_scan((table, None), whole, None, child_process=True)
    pool.shutdown()
    assert isinstance(pool, ThreadPoolExecutor) and scanning.result().data.scan.sample.complete


def _environ(name: str) -> str | None:
    import os

    return os.environ.get(name)


def test_the_child_gets_the_allocator_setting_after_polars_own_and_this_process_keeps_its_own():
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    from nandoc.drivers import files

    name, ours = next(iter(files.CHILD_ALLOCATOR.items()))
    before = os.environ.get(name)  # polars' import wrote its defaults here
    assert before and "dirty_decay_ms" in before
    with files._environment(files.CHILD_ALLOCATOR):
        pool = ProcessPoolExecutor(max_workers=1,
                                   mp_context=multiprocessing.get_context("spawn"))
        seen = pool.submit(_environ, name)
    try:
        # jemalloc takes the last setting of a key: ours come last, after polars' in the child
        assert seen.result().endswith("," + ours)
    finally:
        pool.shutdown()
    assert os.environ.get(name) == before


def test_a_data_error_in_the_child_comes_back_as_the_same_paragraph(tmp_path, child_scans):
    lines = ["a,b,label"] + [f"{i},{i % 7},{i % 2}" for i in range(30_000)]
    lines[20_000] = "1,2,3,4"  # a ragged row deep in the file
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join(lines) + "\n")
    table = open_table(path)
    plans = child_scans._plans(Config(data_path=path, target=("label",)), (table, None), None,
                               True)
    with pytest.raises(DataError) as in_thread:
        scan_table(table, plans[0])
    pool, scanning = child_scans._start_scan((table, None), plans, None, child_process=True)
    try:
        with pytest.raises(DataError) as in_child:
            scanning.result()
    finally:
        pool.shutdown()
    assert str(in_child.value) == str(in_thread.value)
    assert "line 20001 has 4 fields" in str(in_child.value)


def test_the_scanning_child_writes_nothing_to_standard_output(capfd):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from nandoc.drivers import files

    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=files._child_setup)
    try:
        pool.submit(print, "a line from the child", flush=True).result()
    finally:
        pool.shutdown()
    out, err = capfd.readouterr()
    assert "a line from the child" not in out and "a line from the child" in err
