"""Datasets of arrays: an .npz of arrays of any rank, an image folder, a source function.

Each becomes the same `Dataset` a table gives (so every check runs unchanged), with one
statistics column per array in its scan. The validation split is the last fraction of samples,
as Keras' validation_split takes it; rows are sample indices from 1.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from nandoc.config import Config
from nandoc.errors import DataError
from nandoc.loading.dataset import Dataset, Split
from nandoc.loading.images import ImageFolder, is_image_folder, list_image_folder, read_images
from nandoc.loading.stats import ColumnScan
from nandoc.loading.structured import (
    Arrays,
    Signature,
    feed_form,
    label_stats,
    pick_arrays,
    require_mapping,
    scan_arrays,
    split_at,
)
from nandoc.loading.table import DataScan, ScannedFile, Table
from nandoc.loading.targets import TargetStats

IMAGE_SAMPLE_BYTES = 256 * 2**20  # decoded pixels kept for the passes (float32)
MAX_IMAGE_SAMPLES = 4096
NPZ_BUDGET = 512 * 2**20  # bytes of arrays read from one .npz


def npz_arrays(path: Path) -> dict[str, np.ndarray]:
    from nandoc.loading.frames import first_line

    try:
        with np.load(path, allow_pickle=False) as archive:
            return {k: archive[k] for k in archive.files}
    except Exception as exc:
        raise DataError(f"The data file {path} is not a readable .npz archive: "
                        f"{first_line(exc)}. Save it with np.savez.") from None


def npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Each array's shape and dtype, read from the .npy headers alone (no data read); {} when
    the archive cannot be read that way (the full read then says what is wrong)."""
    import zipfile

    headers: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                with archive.open(member) as fh:
                    major, _ = np.lib.format.read_magic(fh)
                    read = (np.lib.format.read_array_header_1_0 if major == 1 else
                            np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read(fh)
                    headers[member.removesuffix(".npy")] = (tuple(shape), np.dtype(dtype))
    except Exception:  # not a zip, a version 3 header: no shortcut
        return {}
    return headers


def npz_ranks(path: Path) -> dict[str, int]:
    """Each array's number of dimensions, from the headers alone (see npz_headers)."""
    return {k: len(shape) for k, (shape, _) in npz_headers(path).items()}


def npz_budget() -> int:
    """How many bytes of arrays nandoc reads from one .npz: npz members are read whole."""
    from nandoc.loading.archive import physical_memory

    memory = physical_memory()
    return min(NPZ_BUDGET, memory // 4) if memory else NPZ_BUDGET


def check_npz(path: Path, key: str) -> None:
    """Refuse, from the .npy headers alone, an .npz whose arrays hold Python objects (reading
    them would unpickle, which runs code) or would take more memory than nandoc reads: a few
    hundred KB of zeros compress from gigabytes. `key` is the config key that names `path`."""
    from nandoc.loading.archive import size_text

    headers = npz_headers(path)
    for name, (shape, dtype) in headers.items():
        if dtype.hasobject:
            raise DataError(
                f"In {path} ({key}), array '{name}' holds Python objects (dtype {dtype}, shape "
                f"{shape}): reading it would unpickle it, which can run code, so nandoc does "
                f"not (np.load refuses it too unless allow_pickle=True). Save numbers: "
                f"np.savez(path, {name}=np.asarray({name}, dtype='float32')).")
    sizes = {name: int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
             for name, (shape, dtype) in headers.items()}
    budget = npz_budget()
    if sum(sizes.values()) <= budget:
        return
    name = max(sizes, key=lambda k: sizes[k])
    shape, dtype = headers[name]
    also = (f" ({size_text(sum(sizes.values()))} for all {len(sizes)} arrays)"
            if len(sizes) > 1 else "")
    raise DataError(
        f"In {path} ({key}), array '{name}' has shape {shape} and dtype {dtype}: it would take "
        f"{size_text(sizes[name])} of memory once read{also}, more than the "
        f"{size_text(budget)} nandoc reads from an .npz (its arrays are read whole; the file "
        f"may be small because zeros compress well). Save fewer samples (a few thousand are "
        f"enough to find why the loss turns NaN), or give a [data] source = "
        f"\"data.py:make_dataset\" function that streams the data as a tf.data.Dataset.")


def array_dataset(picked: Arrays, rows: np.ndarray, cfg: Config, path: Path, kind: str, *,
                  n_total: int | None = None, stats: dict[str, ColumnScan] | None = None,
                  labels: tuple[TargetStats, ...] | None = None,
                  row_names: tuple[str, ...] | None = None,
                  val_row_names: tuple[str, ...] | None = None,
                  classes: tuple[str, ...] | None = None,
                  validation: tuple[Arrays, np.ndarray, Path] | None = None
                  ) -> tuple[Dataset, list[ScannedFile]]:
    """The Dataset and the scans of arrays (`stats`/`labels` when they were streamed over more
    samples than are held here: a source function's elements)."""
    several_in = bool(cfg.inputs)
    several_out = bool(cfg.outputs)
    x = feed_form(picked.x, several_in)
    y = feed_form(picked.y, several_out) if picked.y else np.zeros((len(rows), 0), np.float32)
    n = len(rows)
    if n == 0:
        raise DataError(f"The data in {path.name} holds no samples; give at least one batch.")
    features, targets = tuple(picked.x), tuple(picked.y)
    scans = [_scanned(path, kind, picked, rows, stats, n_total, "data")]

    def split(name: str, xs: Any, ys: Any, r: np.ndarray, p: Path, total: int | None) -> Split:
        return Split(name, xs, ys, r, p, len(r), total, in_memory=kind == "arrays")

    if validation is not None:
        vpicked, vrows, vpath = validation
        train = split("train", x, y, rows, path, n_total)
        val = split("validation", feed_form(vpicked.x, several_in),
                    feed_form(vpicked.y, several_out), vrows, vpath, None)
        scans.append(_scanned(vpath, kind, vpicked, vrows, None, None, "validation"))
        label_rows = [(picked.y, rows, "train"), (vpicked.y, vrows, "validation")]
    else:
        cut = split_at(n if n_total is None else n_total, cfg)
        # every sample held: the cut is a position; a sample of them: a sorted sample index
        held = cut if n_total is None else int(np.searchsorted(rows, cut + 1))
        train = split("train", x[:held], y[:held], rows[:held], path,
                      None if n_total is None else cut)
        val = (split("validation", x[held:], y[held:], rows[held:], path,
                     None if n_total is None else n_total - cut)
               if cfg.validation_split > 0 else None)
        label_rows = [(picked.y, rows, "train")]
    if labels is None:
        labels = tuple(replace(s, split=split) for ys, r, split in label_rows
                       for s in label_stats(ys, r))
    inputs = tuple((name, (name,)) for name in picked.x) if several_in else ()
    outputs = tuple((name, (name,)) for name in picked.y) if several_out else ()
    dataset = Dataset(features, targets, train, val, None, 1, (), n_total is not None, labels,
                      inputs=inputs, outputs=outputs, row_names=row_names,
                      val_row_names=val_row_names, classes=classes, kind=kind)
    return dataset, scans


def _scanned(path: Path, kind: str, picked: Arrays, rows: np.ndarray,
             stats: dict[str, ColumnScan] | None, n_total: int | None, role: str
             ) -> ScannedFile:
    columns = stats if stats is not None else scan_arrays(picked.x, picked.y, rows)
    size = sum(int(a.nbytes) for a in (*picked.x.values(), *picked.y.values()))
    table = Table(path, kind, None, tuple(columns), frozenset(),
                  0, ",", size)
    counted = n_total if n_total is not None and stats is not None else len(rows)
    scan = DataScan(path, counted, columns)
    return ScannedFile(table, scan, role)


def npz_dataset(cfg: Config, sig: Signature | None) -> tuple[Dataset, list[ScannedFile]]:
    assert cfg.data_path is not None
    arrays = npz_arrays(cfg.data_path)
    picked = _picked(arrays, cfg, sig, cfg.data_path)
    n = len(next(iter(picked.x.values())))
    validation = None
    if cfg.validation_path is not None:
        varrays = npz_arrays(cfg.validation_path)
        vpicked = _picked(varrays, cfg, sig, cfg.validation_path)
        validation = (vpicked, np.arange(1, len(next(iter(vpicked.x.values()))) + 1),
                      cfg.validation_path)
    return array_dataset(picked, np.arange(1, n + 1), cfg, cfg.data_path, "npz",
                         validation=validation)


def _picked(arrays: dict[str, np.ndarray], cfg: Config, sig: Signature | None,
            path: Path) -> Arrays:
    if sig is not None:
        require_mapping(len(sig.inputs), sig.input_names, cfg, "input")
        require_mapping(len(sig.outputs), sig.output_names, cfg, "output")
    return pick_arrays(arrays, cfg, sig, path.name)


def image_dataset(cfg: Config, sig: Signature | None) -> tuple[Dataset, list[ScannedFile]]:
    """An image folder (one subfolder per class): the images decoded at the model's input
    size, a bounded sample of them (evenly spread, every class kept) for large folders; the
    same of the validation folder when [data] validation_path names one."""
    assert cfg.data_path is not None
    folder = list_image_folder(cfg.data_path)
    if sig is None or len(sig.inputs) != 1 or len(sig.inputs[0].shape) != 3:
        shown = "no model" if sig is None else ", ".join(
            f"{p.name} {(None, *p.shape)}" for p in sig.inputs)
        raise DataError(f"{cfg.data_path} is an image folder, but the model does not take one "
                        f"batch of images (None, height, width, channels): it takes {shown}. "
                        f"Point [data] path at the model's own data.")
    height, width, channels = sig.inputs[0].shape
    if not height or not width or channels not in (1, 3, 4):
        raise DataError(f"The model input {(None, height, width, channels)} does not fix the "
                        f"image size and channels (1, 3 or 4); build it with keras.Input("
                        f"(height, width, channels)) so nandoc knows the size to read.")
    key, target = sig.inputs[0].name or "images", (cfg.target[0] if cfg.target else "label")
    per = 4 * height * width * channels

    def sampled(f: ImageFolder, labels: np.ndarray) -> tuple[Arrays, np.ndarray, int | None]:
        n = len(f.files)
        keep = max(1, min(n, MAX_IMAGE_SAMPLES, IMAGE_SAMPLE_BYTES // per))
        idx = np.unique(np.linspace(0, n - 1, keep).round().astype(np.int64))
        images = read_images(f, idx, (height, width), channels)
        arrays = Arrays({key: images}, {target: labels[idx].astype(np.float32)[:, None]},
                        (key,), (target,))
        return arrays, idx + 1, (n if keep < n else None)

    picked, rows, n_total = sampled(folder, folder.labels)
    names = tuple(str(p.relative_to(folder.root)) for p in folder.files)
    labels = label_stats({target: folder.labels.astype(np.float32)[:, None]},
                         np.arange(1, len(folder.files) + 1))
    validation = vnames = None
    classes = folder.classes
    if cfg.validation_path is not None:
        vfolder, vlabels, classes = _validation_images(cfg.validation_path, folder)
        vpicked, vrows, _ = sampled(vfolder, vlabels)
        validation = (vpicked, vrows, cfg.validation_path)
        vnames = tuple(str(p.relative_to(vfolder.root)) for p in vfolder.files)
        labels += tuple(replace(s, split="validation") for s in label_stats(
            {target: vlabels.astype(np.float32)[:, None]}, np.arange(1, len(vfolder.files) + 1)))
    return array_dataset(picked, rows, cfg, cfg.data_path, "images", n_total=n_total,
                         labels=labels, row_names=names, val_row_names=vnames,
                         classes=classes, validation=validation)


def _validation_images(path: Path, train: ImageFolder
                       ) -> tuple[ImageFolder, np.ndarray, tuple[str, ...]]:
    """The validation image folder, its labels numbered by class name as in the training
    folder, and every class by number: a class the training folder lacks gets the next numbers
    (past the model's classes when the training folder holds them all, which the label checks
    then show)."""
    if not is_image_folder(path):
        raise DataError(f"[data] path {train.root} is an image folder, so [data] "
                        f"validation_path must be one too (one subfolder per class, as "
                        f"keras.utils.image_dataset_from_directory reads them); {path} is not. "
                        f"Point validation_path at the validation images' folder, or remove it "
                        f"and set validation_split.")
    folder = list_image_folder(path)
    extra = sorted(c for c in folder.classes if c not in train.classes)
    classes = (*train.classes, *extra)
    number = {c: i for i, c in enumerate(classes)}
    remap = np.array([number[c] for c in folder.classes], dtype=np.int64)
    return folder, remap[folder.labels], classes
