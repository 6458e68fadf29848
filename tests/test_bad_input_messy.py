"""Messy real-world data files through the real CLI: the ones nandoc cannot read safely exit 2
with one paragraph naming the file, what is wrong and the command that fixes it; the ones it can
read (UTF-16, Windows-1252, gzip, decimal commas, spaced headers, comment lines, upper-case
suffixes) are checked like any clean file, through a temporary copy that is gone afterwards.

Every process runs concurrently in one module fixture (see tests/test_bad_input.py)."""

from __future__ import annotations

import bz2
import gzip
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from nandoc.loading import encoding
from tests.conftest import healthy_rows
from tests.test_bad_input import ENV, Case, _check, _csv

ROWS = healthy_rows(40)


def _text(header: str = "a,b,c,label", sep: str = ",", comma: bool = False,
          city: bool = False) -> str:
    lines = [header]
    for i, r in enumerate(ROWS):
        cells = [str(v).replace(".", ",") if comma else str(v) for v in r[:3]]
        if city:
            cells.insert(2, "M\u00fcnchen" if i % 2 else "K\u00f6ln")
        lines.append(sep.join([*cells, str(r[3])]))
    return "\n".join(lines) + "\n"


REFUSED = [
    Case("csv-bzip2", lambda d, m: _check(m["binary"], _csv(d, bz2.compress(_text().encode()),
                                                            "data.csv.bz2")),
         ("data.csv.bz2 is bzip2-compressed", "`bunzip2 -k data.csv.bz2`")),
    Case("csv-is-a-zip", lambda d, m: _check(m["binary"], _csv(d, b"PK\x03\x04" + b"\0" * 40)),
         ("data.csv is a zip archive", "`unzip data.csv`")),
    Case("csv-gzip-damaged",
         lambda d, m: _check(m["binary"], _csv(d, gzip.compress(_text().encode())[:60],
                                               "data.csv.gz")),
         ("data.csv.gz is a damaged gzip file", "`gunzip -k data.csv.gz`")),
    Case("csv-ambiguous-commas",
         lambda d, m: _check(m["binary"], _csv(d, "a;b;c;label\n1,500;2;3;0\n2,250;1;1;1\n")),
         ("Column 'a' of", "'1,500'", "decimal mark (1.500)", "thousands (1500)",
          "decimal=','")),
    Case("csv-duplicate-names-after-strip",
         lambda d, m: _check(m["binary"], _csv(d, _text("a,b, a,label"))),
         ("two columns named 'a' (columns 1 and 3", "own name")),
    Case("csv-text-column-dropped-vs-model",
         lambda d, m: _check(m["binary"], _csv(d, "a,b,city,label\n" + "".join(
             f"{r[0]},{r[1]},London,{r[3]}\n" for r in ROWS))),
         ("model expects 3 features per row but the data gives 2: 'a', 'b'",
          "Left out of the features: column 'city' holds text ('London', ...)", "[data] features")),
]
if not encoding.zstd_available():
    REFUSED.append(Case(
        "csv-zstd-without-module",
        lambda d, m: _check(m["binary"], _csv(d, b"\x28\xb5\x2f\xfd" + b"\0" * 40,
                                              "data.csv.zst")),
        ("data.csv.zst is zstd-compressed", "`zstd -d data.csv.zst`")))

# Read and checked: exit 0 (healthy), or 1 with the finding; (setup, exit code)
READ = {
    # UTF-16 with a BOM, semicolons, decimal commas, spaced header names, comment lines, .CSV
    "utf16-decimal-comma-spaced-header-comments": (lambda d, m: _check(m["binary"], _csv(
        d, ("# exported by Excel\n" + _text("a; b; c; label", ";", comma=True)).encode("utf-16"),
        "data.CSV"), "--format", "json"), 0),
    # gzip of a Windows-1252 file with a text column the features leave out, as .Csv.Gz
    "gzip-cp1252-text-column": (lambda d, m: _check(m["binary"], _csv(d, gzip.compress(
        _text("a,b,city,c,label", city=True).encode("cp1252")), "data.Csv.Gz"),
        "--format", "json"), 0),
    # an empty feature column: a data-nonfinite error, not a dropped column
    "empty-feature-column": (lambda d, m: _check(m["mse"], _csv(d, "a,b,empty,label\n" + "".join(
        f"{r[0]},{r[1]},,{r[3]}\n" for r in ROWS)), "--format", "json", "--steps", "0"), 1),
}


def _run(args: list[str], cwd: Path, tmp: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nandoc", *args], cwd=cwd,
                          env={**ENV, "TMPDIR": str(tmp)}, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def results(models, tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    jobs = {}
    setups = {c.id: c.setup for c in REFUSED} | {k: s for k, (s, _) in READ.items()}
    for cid, setup in setups.items():
        d = tmp_path_factory.mktemp(cid)
        tmp = d / "tmp"
        tmp.mkdir()
        jobs[cid] = (setup(d, models), d, tmp)
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {cid: pool.submit(_run, args, d, tmp) for cid, (args, d, tmp) in jobs.items()}
        return {cid: (f.result(), jobs[cid][2]) for cid, f in futures.items()}


@pytest.mark.parametrize("case", REFUSED, ids=[c.id for c in REFUSED])
def test_messy_file_refused_with_one_clear_paragraph(case: Case, results):
    res, tmp = results[case.id]
    err = res.stderr
    assert res.returncode == 2, (res.returncode, err, res.stdout[-2000:])
    assert err.startswith("nandoc: error: ") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and "\x00" not in err
    for phrase in case.phrases:
        assert phrase in err, f"{phrase!r} not in: {err}"
    assert list(tmp.iterdir()) == []  # no temporary copy left behind


@pytest.mark.parametrize("cid", list(READ))
def test_messy_file_read_and_checked(cid, results):
    res, tmp = results[cid]
    assert res.returncode == READ[cid][1], (res.returncode, res.stderr[-3000:])
    report = json.loads(res.stdout)
    assert list(tmp.iterdir()) == []  # the temporary copy is deleted at the end of the run
    inputs = report["inputs"]
    if cid == "empty-feature-column":
        assert inputs["features"] == ["a", "b", "empty"]
        [f] = [f for f in report["findings"] if f["cause"] == "data-nonfinite"]
        assert f["severity"] == "error" and f["location"]["column"] == "empty"
        assert "empty in every row" in f["title"]
        return
    assert [f for f in report["findings"] if f["severity"] == "error"] == []
    assert inputs["targets"] == ["label"] and inputs["train_samples"] + (
        inputs["validation_samples"] or 0) == len(ROWS)
    if cid.startswith("gzip"):
        assert inputs["features"] == ["a", "b", "c"] and inputs["ignored_columns"] == ["city"]
        [unused] = inputs["unused_columns"]  # the target is used; the text column is not
        assert unused["column"] == "city" and "holds text" in unused["why"]
        assert any("gzip" in note for note in inputs["data_notes"])
    else:
        assert inputs["features"] == ["a", "b", "c"]
