"""empty-validation: a validation split, or the windows cut from it, that hold no samples."""

from __future__ import annotations

from nandoc.config import Config
from nandoc.core.evidence import plural
from nandoc.core.finding import Finding, Location, Severity
from nandoc.core.registry import check
from nandoc.loading.dataset import Dataset


@check(id="empty-validation", needs=("data", "config"), causes=("empty-validation",))
def empty_validation(data: Dataset, config: Config):
    """The validation split or its windows hold zero samples."""
    val = data.val
    if val is None or val.total > 0:
        return
    if data.window and val.n_source_rows > 0:
        why = (f"the validation segment holds {plural(val.n_source_rows, 'row')}, fewer than "
               f"one window of {data.window} rows, so it yields 0 windows")
        fix = (f"Give validation at least {data.window} rows (validation_split >= "
               f"{data.window / max(data.train.n_source_rows + val.n_source_rows, 1):.3f}), "
               f"or shorten the window.")
    elif config.validation_path is not None:
        why = f"the validation file {val.path.name} has no data rows"
        fix = "Point validation_path at a file with rows, or use validation_split."
    else:
        why = (f"validation_split = {config.validation_split} of "
               f"{plural(data.train.n_source_rows, 'row')} rounds to 0 rows")
        fix = "Raise validation_split, or use more data."
    yield Finding(
        cause="empty-validation",
        severity=Severity.ERROR,
        confidence=0.95,
        title="the validation data holds no samples",
        evidence=(f"{why}. A mean over zero samples is NaN: Keras 2 logged val_loss = nan; "
                  f"Keras 3 drops val_loss altogether and warns 'Your input ran out of data', "
                  f"so EarlyStopping and ModelCheckpoint on val_loss watch nothing."),
        location=Location(kind="config", name="validation_split" if config.validation_split
                          else "validation_path", file=val.file),
        fix=fix,
        measured={"validation_rows": val.n_source_rows, "window": data.window,
                  "validation_samples": 0},
    )
