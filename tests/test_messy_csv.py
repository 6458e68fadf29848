"""Messy real-world data files, read in-process by the loader: other encodings, compressed files,
decimal commas and thousands separators, spaces around header names, comment lines, upper-case
suffixes; and no column is ever dropped without saying why."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from nandoc.config import Config
from nandoc.errors import DataError
from nandoc.loading import encoding
from nandoc.loading.dataset import build_dataset, check_fit, select_columns
from nandoc.loading.model_input import ModelInput
from nandoc.loading.table import ScannedFile, open_table, scan_table
from tests.conftest import healthy_rows

ROWS = healthy_rows(30)
TEXT = "a,b,c,label\n" + "".join(",".join(map(str, r)) + "\n" for r in ROWS)
EXPECTED = np.array([r[:3] for r in ROWS], dtype=np.float32)


def _write(d: Path, name: str, data: bytes) -> Path:
    p = d / name
    p.write_bytes(data)
    return p


def _read(p: Path, **cfg):
    """(table, scan, dataset) as check builds them."""
    cfg.setdefault("target", ("label",))
    table = open_table(p)
    scan = scan_table(table)
    return table, scan, build_dataset(table, scan, Config(data_path=p, **cfg), None)


def _temp_copies() -> set[Path]:
    return set(encoding._TEMPS)


# --- 1. encodings -----------------------------------------------------------------------------

@pytest.mark.parametrize("codec, prefix, shown", [
    ("utf-16", b"", "UTF-16 LE"),  # Python writes the BOM (little-endian here)
    ("utf-16-be", b"\xfe\xff", "UTF-16 BE"),
    ("utf-16-le", b"", "UTF-16 LE (no byte order mark)"),
    ("utf-16-be", b"", "UTF-16 BE (no byte order mark)"),
], ids=["utf16-bom", "utf16be-bom", "utf16le-no-bom", "utf16be-no-bom"])
def test_utf16_is_read_through_a_utf8_copy_in_the_temp_folder(tmp_path, codec, prefix, shown):
    p = _write(tmp_path, "data.csv", prefix + TEXT.encode(codec))
    table, scan, ds = _read(p)
    assert table.path == p and table.source is not None
    assert table.source.parent == Path(tempfile.gettempdir())  # never next to the user's file
    assert sorted(os.listdir(tmp_path)) == ["data.csv"]
    assert any(shown in n for n in table.notes) and ds.notes == table.notes
    assert table.columns == ("a", "b", "c", "label") and scan.n_rows == len(ROWS)
    np.testing.assert_allclose(ds.train.x[:3], EXPECTED[:3])
    encoding.release(table.source)
    assert not table.source.exists()


def test_utf8_with_bom_is_read_in_place(tmp_path):
    p = _write(tmp_path, "data.csv", b"\xef\xbb\xbf" + TEXT.encode())
    table, scan, _ = _read(p)
    assert table.source is None and table.notes == () and table.columns[0] == "a"


def test_windows_1252_text_is_transcoded_and_its_rows_keep_their_numbers(tmp_path):
    rows = "city,a,b,c,label\n" + "".join(f"M\u00fcnchen \u20ac,{r[0]},{r[1]},{r[2]},{r[3]}\n"
                                           for r in ROWS)
    rows = rows.replace("M\u00fcnchen \u20ac,0", "M\u00fcnchen \u20ac,x\u00e9", 1)
    p = _write(tmp_path, "data.csv", rows.encode("cp1252"))
    with pytest.raises(UnicodeDecodeError):
        p.read_bytes().decode("utf-8")
    table, scan, ds = _read(p)
    assert any("Windows-1252" in n for n in table.notes)
    assert ds.unused_columns[0][0] == "city" and "'München €'" in ds.unused_columns[0][1]
    a = scan.columns["a"]
    assert a.n_text == 1 and a.text_examples[0].startswith("x\u00e9")


def test_a_utf16_file_with_a_bad_feature_names_the_original_file_and_row(tmp_path):
    bad = TEXT.replace(f"\n{ROWS[4][0]},", "\n#VALUE!,", 1)
    p = _write(tmp_path, "data.csv", bad.encode("utf-16"))
    table, scan, ds = _read(p)
    assert scan.columns["a"].bad_rows == (5,) and table.lines_of([5]) == (6,)
    from nandoc.checks.data.nonfinite import nonfinite

    [f] = nonfinite(scan=[ScannedFile(table, scan, "data")], data=ds)
    assert f.location.file == "data.csv" and f.location.rows == (5,)
    assert "\x00" not in f.title + f.evidence


# --- 2. compressed files ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["data.csv.gz", "data.CSV.GZ", "data.csv"],
                         ids=["csv.gz", "upper-case", "gzip-magic-plain-suffix"])
def test_gzip_csv_is_decompressed_to_a_temp_file(tmp_path, name):
    p = _write(tmp_path, name, gzip.compress(TEXT.encode()))
    table, scan, ds = _read(p)
    assert table.kind == "csv" and scan.n_rows == len(ROWS)
    assert table.read_path.parent == Path(tempfile.gettempdir())
    assert any("gzip" in n for n in table.notes)
    np.testing.assert_allclose(ds.train.x[:3], EXPECTED[:3])


def test_gzip_of_utf16_is_decompressed_then_transcoded(tmp_path):
    before = _temp_copies()
    p = _write(tmp_path, "data.csv.gz", gzip.compress(TEXT.encode("utf-16")))
    table, scan, _ = _read(p)
    assert scan.n_rows == len(ROWS) and len(table.notes) == 2
    assert _temp_copies() - before == {table.source}  # the decompressed copy is gone


def test_damaged_gzip_is_refused_and_leaves_no_temp_file(tmp_path):
    before = _temp_copies()
    p = _write(tmp_path, "data.csv.gz", gzip.compress(TEXT.encode() * 50)[:200])
    with pytest.raises(DataError, match=r"damaged gzip file .*gunzip -k data.csv.gz"):
        open_table(p)
    assert _temp_copies() == before


def test_decompressed_size_is_capped(tmp_path, monkeypatch):
    monkeypatch.setattr(encoding, "MAX_EXPANDED", 1000)
    p = _write(tmp_path, "data.csv.gz", gzip.compress(TEXT.encode() * 10))
    with pytest.raises(DataError, match=r"more than 0.0 GiB.*gunzip -k data.csv.gz.*TMPDIR"):
        open_table(p)


@pytest.mark.parametrize("name, pack, phrases", [
    ("data.csv.bz2", bz2.compress, ("bzip2-compressed", "`bunzip2 -k data.csv.bz2`")),
    ("data.csv.xz", lzma.compress, ("xz-compressed", "`xz -dk data.csv.xz`")),
    ("data.csv", bz2.compress, ("bzip2-compressed", "`bunzip2 -k data.csv`")),
    ("data.csv.zst", lambda b: b"\x28\xb5\x2f\xfd" + b"\x00" * 20,
     ("zstd-compressed", "`zstd -d data.csv.zst`")),
], ids=["bz2", "xz", "bz2-magic", "zstd"])
def test_other_compressions_are_refused_with_the_command(tmp_path, name, pack, phrases):
    if name.endswith(".zst") and encoding.zstd_available():
        pytest.skip("zstandard is installed: zstd files are read")
    p = _write(tmp_path, name, pack(TEXT.encode()))
    with pytest.raises(DataError) as err:
        open_table(p)
    for phrase in phrases:
        assert phrase in str(err.value)


def test_a_zip_archive_named_csv_is_refused(tmp_path):
    p = tmp_path / "data.csv"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("data.csv", TEXT)
    with pytest.raises(DataError, match=r"zip archive.*`unzip data.csv`"):
        open_table(p)


# --- 3. decimal commas and thousands separators ---------------------------------------------

def test_decimal_commas_in_a_semicolon_file_are_numbers(tmp_path):
    text = "a;b;label\n1,5;2;0\n-3,25;1.234,5;1\n0,125;7;0\n"
    table, scan, ds = _read(_write(tmp_path, "data.csv", text.encode()))
    assert scan.columns["a"].n_text == 0 and scan.columns["b"].n_text == 0
    np.testing.assert_allclose(ds.train.x[:, 0], [1.5, -3.25, 0.125][: ds.train.n])
    assert scan.columns["b"].max == 1234.5
    assert any("column 'a' read with ',' as the decimal mark" in n for n in table.notes)


def test_quoted_thousands_commas_and_spaces(tmp_path):
    text = 'a,b,label\n"1,234.5",1 000,0\n"12,000",2 500,1\n7,3,0\n'
    _, scan, _ = _read(_write(tmp_path, "data.csv", text.encode()))
    assert (scan.columns["a"].min, scan.columns["a"].max) == (7.0, 12000.0)
    assert (scan.columns["b"].min, scan.columns["b"].max) == (3.0, 2500.0)


def test_a_cell_that_breaks_the_columns_spelling_is_unparsable_not_a_wrong_number(tmp_path):
    rows = "".join(f"{i},{i % 10}5;{i % 2}\n" for i in range(2000))  # 0,05 1,15 ...
    text = "a;label\n" + rows + "1.234;0\n"
    _, scan, _ = _read(_write(tmp_path, "data.csv", text.encode()))
    a = scan.columns["a"]
    assert a.n_text == 1 and a.text_examples == ("1.234",) and a.bad_rows == (2001,)


def test_ambiguous_commas_are_refused_naming_the_column(tmp_path):
    p = _write(tmp_path, "data.csv", b"a;price;label\n1;1,500;0\n2;3,250;1\n")
    with pytest.raises(DataError) as err:
        open_table(p)
    msg = str(err.value)
    assert "Column 'price'" in msg and "'1,500'" in msg and "1.500" in msg and "1500" in msg
    assert "decimal=','" in msg and "thousands=','" in msg


# --- 4. header whitespace -----------------------------------------------------------------------

def test_spaces_around_header_names_are_stripped(tmp_path):
    p = _write(tmp_path, "data.csv", TEXT.replace("a,b,c,label", "a, b , c,  label").encode())
    table, scan, ds = _read(p)
    assert table.columns == ("a", "b", "c", "label") and ds.features == ("a", "b", "c")
    with pytest.raises(DataError, match="Did you mean 'label'\\?"):
        select_columns(scan, Config(data_path=p, target=("labl",)), p)


@pytest.mark.parametrize("header", ["a,a ,label", "a,a,label"])
def test_duplicate_names_are_refused(tmp_path, header):
    p = _write(tmp_path, "data.csv", f"{header}\n1,2,0\n".encode())
    with pytest.raises(DataError, match="two columns named 'a' \\(columns 1 and 2"):
        open_table(p)


def test_suggestions_are_typeable(tmp_path):
    p = _write(tmp_path, "data.csv", b"a,lab\x01el,label2\n1,0,1\n")
    _, scan, _ = _read(p, target=("label2",))
    with pytest.raises(DataError) as err:
        select_columns(scan, Config(data_path=p, target=("label",)), p)
    assert "Did you mean 'label2'?" in str(err.value) and "\x01" not in str(err.value)


# --- 5. comment lines ---------------------------------------------------------------------------

def test_comment_lines_before_the_header_are_skipped(tmp_path):
    text = "# exported 2024-01-01\n# units: m, s, kg\n\n" + TEXT.replace(
        f"\n{ROWS[2][0]},", "\nnan,", 1)
    table, scan, _ = _read(_write(tmp_path, "data.csv", text.encode()))
    assert table.columns == ("a", "b", "c", "label") and scan.n_rows == len(ROWS)
    assert table.comment_lines == 2 and any("2 comment line" in n for n in table.notes)
    assert scan.columns["a"].bad_rows == (3,) and table.lines_of([3]) == (7,)


def test_a_numpy_savetxt_header_in_a_comment_names_the_columns(tmp_path):
    p = tmp_path / "data.csv"
    np.savetxt(p, np.array(ROWS, dtype=float), delimiter=",", header="a,b,c,label")
    table, scan, ds = _read(p)
    assert table.columns == ("a", "b", "c", "label") and scan.n_rows == len(ROWS)
    assert table.lines_of([1]) == (2,)
    np.testing.assert_allclose(ds.train.x[:3], EXPECTED[:3], rtol=1e-6)


# --- 6. suffixes in any case --------------------------------------------------------------------

@pytest.mark.parametrize("name", ["data.CSV", "data.Csv", "data.TSV", "data.PARQUET"])
def test_suffixes_in_any_case(tmp_path, name):
    p = tmp_path / name
    frame = pl.DataFrame({k: [r[i] for r in ROWS] for i, k in enumerate("abc")} |
                         {"label": [r[3] for r in ROWS]})
    if name.lower().endswith("parquet"):
        frame.write_parquet(p)
    else:
        frame.write_csv(p, separator="\t" if name.lower().endswith("tsv") else ",")
    table, scan, ds = _read(p)
    assert scan.n_rows == len(ROWS) and ds.features == ("a", "b", "c")


# --- 7. no silent drops -------------------------------------------------------------------------

def test_a_text_column_is_listed_with_why_and_named_on_a_feature_count_mismatch(tmp_path):
    text = "a,b,city,label\n" + "".join(
        f"{r[0]},{r[1]},{'London' if i % 2 else 'Paris'},{r[3]}\n" for i, r in enumerate(ROWS))
    p = _write(tmp_path, "data.csv", text.encode())
    table, scan, ds = _read(p)
    assert ds.features == ("a", "b")
    why = dict(ds.unused_columns)
    assert set(why) == {"city"}  # the target is used: not listed
    assert "holds text ('Paris', 'London'" in why["city"] and "[data] features" in why["city"]
    with pytest.raises(DataError) as err:
        check_fit(table, scan, Config(data_path=p, target=("label",)),
                  ModelInput(2, None, 3))
    msg = str(err.value)
    assert "model expects 3 features per row but the data gives 2: 'a', 'b'" in msg
    assert "Left out of the features: column 'city' holds text ('Paris', 'London'" in msg


def test_an_empty_column_is_a_feature_and_a_data_nonfinite_finding(tmp_path):
    text = "a,b,empty,label\n" + "".join(f"{r[0]},{r[1]},,{r[3]}\n" for r in ROWS)
    p = _write(tmp_path, "data.csv", text.encode())
    table, scan, ds = _read(p)
    assert ds.features == ("a", "b", "empty")
    from nandoc.checks.data.nonfinite import nonfinite

    [f] = nonfinite(scan=[ScannedFile(table, scan, "data")], data=ds)
    assert f.cause == "data-nonfinite" and f.location.column == "empty"
    assert "empty in every row" in f.title and f.measured["missing"] == len(ROWS)


def test_a_nested_parquet_column_is_listed_with_its_type(tmp_path):
    p = tmp_path / "data.parquet"
    pl.DataFrame({"a": [1.0, 2.0, 3.0], "tags": [[1, 2], [3], []], "label": [0, 1, 0]}
                 ).write_parquet(p)
    _, _, ds = _read(p)
    why = dict(ds.unused_columns)
    assert ds.features == ("a",) and "nested values (List(Int64))" in why["tags"]


def test_columns_left_out_of_listed_features_say_so(tmp_path):
    p = _write(tmp_path, "data.csv", TEXT.encode())
    _, _, ds = _read(p, features=("a", "b"))
    assert dict(ds.unused_columns)["c"] == "column 'c' is not listed in [data] features"


def test_a_binary_file_named_csv_is_refused(tmp_path):
    p = _write(tmp_path, "data.csv", bytes(range(256)) * 20)
    with pytest.raises(DataError, match="data.csv does not look like a text file") as err:
        open_table(p)
    assert "\x00" not in str(err.value)


def test_a_gzip_tsv_in_upper_case(tmp_path):
    p = _write(tmp_path, "data.TSV.GZ", gzip.compress(TEXT.replace(",", "\t").encode()))
    table, scan, ds = _read(p)
    assert table.separator == "\t" and ds.features == ("a", "b", "c")


def test_trailing_delimiters_leave_unnamed_empty_columns_out_and_say_so(tmp_path):
    text = TEXT.replace("\n", ",,\n")
    table, _, ds = _read(_write(tmp_path, "data.csv", text.encode()))
    assert len(table.columns) == 6 and ds.features == ("a", "b", "c")
    why = [w for c, w in ds.unused_columns if c != "label"]
    assert len(why) == 2 and all("unnamed column is empty in every row" in w for w in why)
