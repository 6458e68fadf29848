"""data-nonfinite: NaN, ±Inf, empty or unparsable cells in the columns the model reads."""

from __future__ import annotations

from nandoc.analysis import remedies
from nandoc.core.evidence import plural, rows_phrase
from nandoc.core.finding import Finding, Location, Severity
from nandoc.core.fixes import Candidate
from nandoc.core.registry import check
from nandoc.loading.dataset import Dataset
from nandoc.loading.table import ColumnScan, ScannedFile


def _kinds(c: ColumnScan) -> str:
    parts = []
    if c.n_missing:
        parts.append(f"{plural(c.n_missing, 'missing cell')} (empty or NA)")
    if c.n_text:
        examples = ", ".join(repr(t) for t in c.text_examples)
        parts.append(f"{plural(c.n_text, 'text cell')} that do not parse as numbers ({examples})")
    if c.n_nan:
        parts.append(f"{c.n_nan} NaN")
    if c.n_posinf or c.n_neginf:
        parts.append(f"{c.n_posinf + c.n_neginf} ±inf")
    if c.n_overflow32:
        parts.append(f"{plural(c.n_overflow32, 'value')} beyond float32's range (inf once cast)")
    return ", ".join(parts)


def _fix(c: ColumnScan, role: str) -> str:
    if c.n_rows and c.n_missing == c.n_rows and role == "feature":
        return (f"Column '{c.name}' has no values at all: fill it at the source, or leave it "
                f"out of the features by listing the others in [data] features.")
    if c.n_text and not (c.n_missing or c.n_nan or c.n_posinf or c.n_neginf):
        return (f"Clean the text cells in '{c.name}' at the source, or parse with "
                f"pd.to_numeric(df['{c.name}'], errors='coerce') and drop or impute the rows.")
    if role == "target":
        return (f"Drop the rows whose target '{c.name}' is missing: "
                f"df = df.dropna(subset=['{c.name}']).")
    return (f"Drop or impute the rows before training, e.g. df['{c.name}'] = "
            f"df['{c.name}'].replace([np.inf, -np.inf], np.nan).fillna(df['{c.name}'].median()).")


ARRAY_FIX = ("Drop or repair those samples before training (np.isfinite(x).all(axis=...) "
             "selects the good ones), or find where the pipeline produces them.")


def _array_finding(name: str, role: str, c: ColumnScan, scanned: ScannedFile,
                   data: Dataset) -> Finding:
    """Arrays of any rank (images, sequences, a source's elements): counted per sample."""
    rows = list(c.bad_rows)
    unit = {"images": "image", "source": "element"}.get(data.kind, "sample")
    known = data.row_names_of(data.val if scanned.role == "validation" else data.train)
    names = [known[r - 1] for r in rows if known and 0 < r <= len(known)]
    where = f" ({', '.join(names[:3])})" if names else ""
    what = "target" if role == "target" else "input"
    return Finding(
        cause="data-nonfinite", severity=Severity.ERROR, confidence=0.97,
        title=f"{plural(c.n_bad, unit)} of {what} '{name}' in {scanned.table.path.name} "
              f"{'holds' if c.n_bad == 1 else 'hold'} NaN or inf",
        evidence=(f"{_kinds(c).replace(' ±inf', ' with ±inf').replace(' NaN', ' with NaN')} "
                  f"among {c.n_rows} {unit}s; first at {unit} "
                  f"{', '.join(str(r) for r in rows[:5])}{where} (counted from 1). Each becomes "
                  f"NaN in its batch; NaN spreads through every layer it touches, then into the "
                  f"loss and, after one update, into the weights."),
        location=Location(kind="data", column=name, rows=tuple(rows), file=scanned.table.file),
        fix=ARRAY_FIX,
        measured={"samples": c.n_bad, "nan": c.n_nan, "inf": c.n_posinf + c.n_neginf,
                  "overflow32": c.n_overflow32, "rows_total": c.n_rows, "files": names[:10]})


def _located(scanned: ScannedFile, name: str, rows: list[int], n_bad: int
             ) -> tuple[Location, str, dict]:
    """(the location, the rows as the evidence names them, measured extras). A shard set's
    rows are named within their shard: `file` is the first bad row's shard, `rows` those of
    that shard; the evidence (and measured 'shards') names every shard the rows fall in."""
    shards = scanned.scan.shards
    table = scanned.table
    if shards is None:
        return (Location(kind="data", column=name, rows=tuple(rows), lines=table.lines_of(rows),
                         file=table.file), rows_phrase(rows, n_bad), {})
    file, local, phrase = shards.where(rows)
    part = next((t for t in table.shards if t.path.name == file), None)
    more = n_bad - len(rows)
    shown = phrase + (f" ({more} more not listed)" if more > 0 else "")
    return (Location(kind="data", column=name, rows=local, file=file,
                     lines=part.lines_of(list(local)) if part is not None else None), shown,
            {"shards": [{"file": f, "rows": r[:10]} for f, r in shards.locate(rows)][:10],
             "shard_count": len(shards)})


def fixes(finding: Finding) -> list[Candidate]:
    return [Candidate(finding.cause, "drop the rows with non-finite values",
                      remedies.drop_nonfinite_rows)]


@check(id="data-nonfinite", needs=("scan", "data"), causes=("data-nonfinite",), fixes=fixes)
def nonfinite(scan: list[ScannedFile], data: Dataset):
    """NaN, ±Inf, empty or unparsable cells in features or targets."""
    for scanned in scan:
        for name in (*data.targets, *data.features):
            c = scanned.scan.columns.get(name)
            if c is None or c.n_bad == 0:
                continue
            role = "target" if name in data.targets else "feature"
            if data.kind != "table":
                yield _array_finding(name, role, c, scanned, data)
                continue
            rows = list(c.bad_rows)
            share = c.n_bad / max(c.n_rows, 1)
            empty = c.n_rows > 0 and c.n_missing == c.n_rows
            title = (f"{role.capitalize()} column '{name}' of {scanned.table.path.name} is "
                     f"empty in every row" if empty else
                     f"{plural(c.n_bad, 'non-finite cell')} in {role} column '{name}' of "
                     f"{scanned.table.path.name}")
            where, shown, measured = _located(scanned, name, rows, c.n_bad)
            yield Finding(
                cause="data-nonfinite",
                severity=Severity.ERROR,
                confidence=0.97,
                title=title,
                evidence=(f"{_kinds(c)} in {c.n_bad} of {c.n_rows} rows ({share:.1%}); first at "
                          f"{shown}. Each becomes NaN in the input batch; "
                          f"NaN spreads through every layer it touches, then into the loss "
                          f"and, after one update, into the weights."),
                location=where,
                fix=_fix(c, role),
                measured={"cells": c.n_bad, "missing": c.n_missing, "text": c.n_text,
                          "nan": c.n_nan, "inf": c.n_posinf + c.n_neginf,
                          "overflow32": c.n_overflow32, "rows_total": c.n_rows, **measured},
            )
