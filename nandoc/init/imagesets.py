"""Image folders for `nandoc init`: a subfolder with one subfolder per class (the layout
`keras.utils.image_dataset_from_directory` reads), or a subfolder that splits such folders into
`train/` and `val/` (and `test/`, left out). Listed, never decoded; proposed only for a model
that takes images."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from nandoc.errors import DataError
from nandoc.loading.images import is_image_folder, list_image_folder

# Subfolders named like these split a dataset, they are not classes.
SPLIT = re.compile(r"^(train|training|val|valid|validation|dev|test|testing|eval)$", re.I)
VALIDATION = re.compile(r"^(val|valid|validation|dev|eval)$", re.I)
TEST = re.compile(r"^(test|testing)$", re.I)


@dataclass(frozen=True)
class ImageFolders:
    """The training image folder, the validation one if any, and what listing them found."""

    train: Path
    validation: Path | None
    classes: tuple[str, ...]  # the training folder's class subfolders, in Keras' order
    n_images: int  # in the training folder
    val_images: int = 0

    def describe(self) -> str:
        shown = ", ".join(self.classes[:5]) + (" …" if len(self.classes) > 5 else "")
        return (f"an image folder: {len(self.classes)} class subfolders ({shown}), "
                f"{self.n_images} images")


def _subfolders(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def _split_parent(folder: Path) -> bool:
    """Every subfolder is named like a split (train, val, test), and one is an image folder."""
    subs = _subfolders(folder)
    return bool(subs) and all(SPLIT.match(s.name) for s in subs) and any(
        is_image_folder(s) for s in subs)


def _candidates(folder: Path) -> list[Path]:
    """Image folders here and one level down, split parents opened: a folder of classes."""
    found: list[Path] = []
    for sub in _subfolders(folder):
        if _split_parent(sub):
            found += [s for s in _subfolders(sub) if is_image_folder(s)]
        elif is_image_folder(sub):
            found.append(sub)
    return found


def find_image_folders(folder: Path) -> ImageFolders | None:
    """The training image folder (the first not named like a validation or test split) and a
    validation folder next to it, or None when `folder` holds no image folder."""
    found = _candidates(folder)
    train = [p for p in found if not VALIDATION.match(p.name) and not TEST.match(p.name)]
    if not train:
        return None
    chosen = train[0]
    val = next((p for p in found if VALIDATION.match(p.name) and p.parent == chosen.parent),
               None)
    try:
        listed = list_image_folder(chosen)
        val_listed = list_image_folder(val) if val is not None else None
    except DataError:
        return None
    return ImageFolders(chosen, val, listed.classes, len(listed.files),
                        len(val_listed.files) if val_listed is not None else 0)
