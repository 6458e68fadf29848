"""Sharded data: a glob or folder of CSV/parquet shards read as one table, one shard at a time,
findings naming the shard and the row within it; one CLI run on a quoted glob."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from nandoc.config import Config
from nandoc.errors import DataError
from nandoc.loading.dataset import build_dataset, scan_plan
from nandoc.loading.shards import natural_key, shard_location
from nandoc.loading.table import ScanPlan, open_table, scan_table
from tests.conftest import healthy_rows, write_csv

HEADER = ["a", "b", "c", "label"]
ENV = {**os.environ, "NO_COLOR": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}


def _parquet_shards(d: Path, n: int = 12, rows: int = 25, nan_at: tuple[int, int] | None = None
                    ) -> list[Path]:
    """Shards part-1..part-n (written out of order); a NaN in column b of shard i, row r."""
    d.mkdir(parents=True, exist_ok=True)
    data = np.array(healthy_rows(n * rows), dtype=np.float64)
    out = []
    for i in reversed(range(1, n + 1)):
        part = data[(i - 1) * rows:i * rows].copy()
        if nan_at is not None and nan_at[0] == i:
            part[nan_at[1] - 1, 1] = np.nan
        p = d / f"part-{i}.parquet"
        pl.DataFrame({h: part[:, j] for j, h in enumerate(HEADER)}).write_parquet(p)
        out.append(p)
    return sorted(out, key=natural_key)


def _csv_shards(d: Path, n: int = 4, rows: int = 30) -> list[Path]:
    d.mkdir(parents=True, exist_ok=True)
    data = healthy_rows(n * rows)
    return [write_csv(d / f"s{i}.csv", HEADER, data[(i - 1) * rows:i * rows])
            for i in range(1, n + 1)]


def _cfg(path: Path, **kw) -> Config:
    return Config(data_path=path, target=("label",), **kw)


def test_natural_order_glob_and_folder(tmp_path):
    _parquet_shards(tmp_path / "pq")
    for given in (tmp_path / "pq" / "part-*.parquet", tmp_path / "pq"):
        table = open_table(given)
        names = [t.path.name for t in table.shards]
        assert names == [f"part-{i}.parquet" for i in range(1, 13)]  # part-2 before part-10
        scan = scan_table(table, ScanPlan(targets=("label",)))
        assert scan.n_rows == 300
        assert scan.shards is not None and scan.shards.starts[9] == 226
    # the values come in shard order: row 226 is the first row of part-10
    scan = scan_table(open_table(tmp_path / "pq"), ScanPlan(targets=("label",)))
    first10 = pl.read_parquet(tmp_path / "pq" / "part-10.parquet").row(0)
    assert scan.sample is not None
    np.testing.assert_allclose(scan.sample.values[225], np.array(first10, np.float32))


def test_csv_shards_read_as_one_table(tmp_path):
    _csv_shards(tmp_path / "csv")
    table = open_table(tmp_path / "csv" / "s*.csv")
    scan = scan_table(table)
    assert table.kind == "csv" and scan.n_rows == 120 and len(scan.shards) == 4
    assert any("4 csv shard(s)" in n for n in table.notes)


def test_nan_in_shard_named_by_shard_and_row(tmp_path):
    from nandoc.checks.data.nonfinite import nonfinite
    from nandoc.loading.table import ScannedFile

    _parquet_shards(tmp_path / "pq", nan_at=(3, 7))
    table = open_table(tmp_path / "pq" / "part-*.parquet")
    cfg = _cfg(table.path)
    scan = scan_table(table, scan_plan(cfg, table))
    assert list(scan.columns["b"].bad_rows) == [57]  # 50 rows in part-1 and part-2
    data = build_dataset(table, scan, cfg, None)
    (finding,) = list(nonfinite([ScannedFile(table, scan, "data")], data))
    assert finding.location.file == "part-3.parquet"
    assert finding.location.rows == (7,)
    assert "row 7 of part-3.parquet" in finding.evidence


def test_rows_spanning_shards_are_said(tmp_path):
    _parquet_shards(tmp_path / "pq", n=10)
    scan = scan_table(open_table(tmp_path / "pq"))
    file, rows, said = shard_location(scan.shards, [62, 65, 232], "x")
    assert (file, rows) == ("part-3.parquet", (12, 15))
    assert "12, 15 of part-3.parquet and 7 of part-10.parquet" in said


def test_mismatched_columns_name_the_shard(tmp_path):
    _parquet_shards(tmp_path / "pq", n=3)
    pl.DataFrame({"a": [1.0], "b": [2.0], "d": [3.0], "label": [0.0]}).write_parquet(
        tmp_path / "pq" / "part-4.parquet")
    with pytest.raises(DataError) as e:
        open_table(tmp_path / "pq" / "part-*.parquet")
    msg = str(e.value)
    assert "part-4.parquet" in msg and "lacks 'c'" in msg and "has extra 'd'" in msg


def test_mixed_kinds_and_no_shard_refused(tmp_path):
    _parquet_shards(tmp_path / "mix", n=2)
    _csv_shards(tmp_path / "mix", n=1)
    with pytest.raises(DataError, match="two kinds"):
        open_table(tmp_path / "mix")
    with pytest.raises(DataError, match="matches no CSV or parquet file"):
        open_table(tmp_path / "none-*.parquet")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="is a folder"):
        open_table(tmp_path / "empty")


def test_validation_split_is_the_tail_in_shard_order(tmp_path):
    _parquet_shards(tmp_path / "pq", n=10, rows=20)
    table = open_table(tmp_path / "pq")
    cfg = _cfg(table.path, validation_split=0.1)
    data = build_dataset(table, scan_table(table, scan_plan(cfg, table)), cfg, None)
    assert data.train.total == 180 and data.val.total == 20
    last = pl.read_parquet(tmp_path / "pq" / "part-10.parquet")
    np.testing.assert_allclose(data.val.y[:, 0], last["label"].to_numpy())
    assert data.shard_map(data.val).names[-1] == "part-10.parquet"


def test_validation_glob(tmp_path):
    _parquet_shards(tmp_path / "train", n=3)
    _parquet_shards(tmp_path / "val", n=2, nan_at=(2, 4))
    table = open_table(tmp_path / "train" / "*.parquet")
    val = open_table(tmp_path / "val" / "*.parquet")
    cfg = _cfg(table.path, validation_path=val.path)
    data = build_dataset(table, scan_table(table, scan_plan(cfg, table)), cfg, None, val)
    assert data.val.total == 50 and data.val_shards is not None
    assert data.shard_map(data.val) is data.val_shards
    assert np.isnan(data.val.x[28, 1])  # row 4 of the second validation shard


def test_sample_spans_shards_tail_included(tmp_path):
    _parquet_shards(tmp_path / "pq", n=12, rows=25)
    table = open_table(tmp_path / "pq")
    scan = scan_table(table, ScanPlan(targets=("label",), keep_all_rows=100, per_group=8))
    sample = scan.sample
    assert sample is not None and not sample.complete
    hit = {n for n, _ in scan.shards.locate(sample.rows)}
    assert len(hit) >= 3 and "part-1.parquet" in hit and "part-12.parquet" in hit
    assert sample.rows[-1] == 300


def test_tfrecord_shards_through_a_source_function(tmp_path):
    tf = pytest.importorskip("tensorflow")
    from nandoc.loading.source_fn import load_source

    rng = np.random.default_rng(0)
    for i in range(2):
        with tf.io.TFRecordWriter(str(tmp_path / f"part-{i}.tfrecord")) as w:
            for _ in range(16):
                x = rng.normal(size=3).astype(np.float32)
                ex = tf.train.Example(features=tf.train.Features(feature={
                    "x": tf.train.Feature(float_list=tf.train.FloatList(value=x)),
                    "y": tf.train.Feature(float_list=tf.train.FloatList(value=[1.0]))}))
                w.write(ex.SerializeToString())
    (tmp_path / "src.py").write_text(
        "import tensorflow as tf\n"
        "SPEC = {'x': tf.io.FixedLenFeature([3], tf.float32),\n"
        "        'y': tf.io.FixedLenFeature([1], tf.float32)}\n"
        "def data():\n"
        f"    files = sorted(tf.io.gfile.glob({str(tmp_path / 'part-*.tfrecord')!r}))\n"
        "    ds = tf.data.TFRecordDataset(files).map(\n"
        "        lambda r: tf.io.parse_single_example(r, SPEC))\n"
        "    return ds.map(lambda e: (e['x'], e['y'])).batch(8)\n")
    src = load_source("src.py:data", tmp_path)
    assert src.n_total == 32 and src.complete
    assert src.x["x"].shape == (32, 3)
    # the second file's rows come after the first's: the files are read in order
    first = next(iter(tf.data.TFRecordDataset([str(tmp_path / "part-1.tfrecord")])))
    x1 = tf.io.parse_single_example(first, {"x": tf.io.FixedLenFeature([3], tf.float32)})["x"]
    np.testing.assert_allclose(src.x["x"][16], x1.numpy())


def test_cli_on_a_quoted_glob(tmp_path, models):
    _parquet_shards(tmp_path / "pq", n=12, nan_at=(9, 4))
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "nandoc", "check", str(models["binary"]),
                           "pq/part-*.parquet", "--target", "label", "--format", "json",
                           "--output", str(out)],
                          cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads(out.read_text())
    assert report["inputs"]["data"].endswith("part-*.parquet")
    assert report["inputs"]["train_samples"] == 300
    named = [f for f in report["findings"] if f["cause"] == "data-nonfinite"
             and f["location"].get("file") == "part-9.parquet"]
    assert named and named[0]["location"]["rows"] == [4]
    assert report["inputs"]["shards"] == 12
    # every data finding, the training-localised one included, names a shard, never the glob
    data_findings = [f for f in report["findings"] if f["location"]["kind"] == "data"
                     and f["location"].get("file")]
    assert data_findings and all(f["location"]["file"].startswith("part-")
                                 for f in data_findings), data_findings
