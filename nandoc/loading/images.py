"""An image folder in the layout `keras.utils.image_dataset_from_directory` reads: one
subfolder per class under the root (class names sorted, label = index, hidden folders skipped),
image files anywhere inside each class folder (nested folders walked, symlinked folders not
followed). Listing decodes nothing; `read_images` decodes only the files asked for, the way
Keras does (`tf.io.decode_image`, then a plain bilinear `tf.image.resize`), so the pixels are
float32 in 0..255 exactly as the model would see them. Every problem is a DataError paragraph.

TensorFlow is imported inside the functions that decode, so listing works without it.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nandoc.errors import DataError

EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # Keras' ALLOWLIST_FORMATS
MAX_FILES = 2_000_000
MAX_IMAGE_BYTES = 256 * 2**20  # one encoded image file
PROBE_ENTRIES = 100_000  # names is_image_folder looks at before it gives up
CHANNELS = {1: "grayscale", 3: "rgb", 4: "rgba"}
_SHOWN = 5  # names listed in a message


@dataclass(frozen=True)
class ImageFolder:
    root: Path
    classes: tuple[str, ...]
    files: tuple[Path, ...]  # every image file, in order: class by class, files sorted
    labels: np.ndarray  # int64 (n,) class index per file

    def __len__(self) -> int:
        return len(self.files)


def _is_image(name: str) -> bool:
    return name.lower().endswith(EXTENSIONS)


def _extensions() -> str:
    return ", ".join(EXTENSIONS)


def _some(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def _class_dirs(root: Path) -> list[str]:
    """The class subfolders, as Keras picks them: sorted names, folders only, not hidden."""
    try:
        names = sorted(os.listdir(root))
    except OSError as exc:
        raise DataError(f"The image folder {root} could not be read ({exc.strerror or exc}). "
                        f"Check its permissions.") from None
    return [n for n in names if not n.startswith(".") and (root / n).is_dir()]


def _walk_images(class_dir: Path) -> Iterator[Path]:
    """Image files under one class folder in Keras' order: folders sorted by their path
    (symlinked folders not followed), files sorted by name inside each."""
    walk = sorted(os.walk(str(class_dir)), key=lambda entry: entry[0])
    for folder, _, names in walk:
        for name in sorted(names):
            if _is_image(name):
                yield Path(folder) / name


def _root_images(root: Path) -> list[str]:
    try:
        return sorted(n for n in os.listdir(root) if _is_image(n) and (root / n).is_file())
    except OSError:
        return []


def list_image_folder(root: Path) -> ImageFolder:
    """List the classes and image files of `root` without decoding any; raises DataError."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"The image folder {root} does not exist. Check [data] path in "
                        f"nandoc.toml or the DATA argument.")
    if not root.is_dir():
        raise DataError(f"The image path {root} is a file, not a folder. Point it at a folder "
                        f"that holds one subfolder per class with the images inside, as "
                        f"keras.utils.image_dataset_from_directory reads them.")
    classes = _class_dirs(root)
    if not classes:
        loose = _root_images(root)
        if loose:
            raise DataError(
                f"The image folder {root} holds images ({_some(loose)}) but no class "
                f"subfolders. Keras' image_dataset_from_directory takes the label of each "
                f"image from the subfolder it is in: put the images in one subfolder per class "
                f"(for example {root / 'cats'} and {root / 'dogs'}).")
        raise DataError(
            f"The image folder {root} holds no class subfolders. Put the images in one "
            f"subfolder per class (for example {root / 'cats'} and {root / 'dogs'}), as "
            f"keras.utils.image_dataset_from_directory reads them.")
    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        for path in _walk_images(root / name):
            files.append(path)
            labels.append(label)
            if len(files) > MAX_FILES:
                raise DataError(
                    f"The image folder {root} holds more than {MAX_FILES:,} images, more "
                    f"than nandoc lists. Point nandoc at a smaller copy of the folder (a few "
                    f"thousand images per class are enough to find why the loss turns NaN).")
    if not files:
        loose = _root_images(root)
        also = (f" The images directly in {root} ({_some(loose)}) are not read: move them into "
                f"the subfolder of their class." if loose else "")
        which = ("subfolders", "hold") if len(classes) > 1 else ("subfolder", "holds")
        raise DataError(
            f"The class {which[0]} of {root} ({_some(classes)}) {which[1]} no images: nandoc "
            f"reads, as Keras does, files ending in {_extensions()} (in any letter case) "
            f"inside each class subfolder.{also} Put the images in the subfolders or point "
            f"nandoc at the folder that has them.")
    return ImageFolder(root=root, classes=tuple(classes), files=tuple(files),
                       labels=np.asarray(labels, dtype=np.int64))


def is_image_folder(path: Path) -> bool:
    """Whether `path` is a directory whose (non-hidden) subfolders hold image files."""
    path = Path(path)
    try:
        if not path.is_dir():
            return False
        seen = 0
        for name in _class_dirs(path):
            for _, _, names in os.walk(str(path / name)):
                if any(_is_image(n) for n in names):
                    return True
                seen += len(names) + 1
                if seen > PROBE_ENTRIES:
                    return False
    except (OSError, DataError):
        return False
    return False


def _require_image_file(path: Path) -> None:
    """A regular file of a sane size: a named pipe among the images would block the read."""
    from nandoc.paths import require_file

    fix = "Remove it from the image folder, or replace it with the image file itself."
    try:
        st = os.stat(path)
    except OSError:  # gone since the listing: the read says so
        return
    if not stat.S_ISREG(st.st_mode):
        require_file(path, "image", DataError, fix=fix)
    size = st.st_size
    if size > MAX_IMAGE_BYTES:
        raise DataError(f"The image {path} is {size / 2**20:,.0f} MiB, more than the "
                        f"{MAX_IMAGE_BYTES // 2**20} MiB nandoc decodes for one image. {fix}")


_TF_NOISE = re.compile(r"\{\{[^}]*\}\}|\[\[[^\]]*\]\]|\[Op:[^\]]*\]( name:.*)?")


def _reason(exc: BaseException) -> str:
    """TensorFlow's error message in one line, without its node and op decorations."""
    text = getattr(exc, "message", None) or str(exc)
    lines = [ln.strip() for ln in _TF_NOISE.sub("", text).splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(("Graph execution error",
                                                            "Detected at node", "File "))]
    one = " ".join(" ".join(lines).split()).rstrip(" .")
    return one[:300] or type(exc).__name__


def read_images(folder: ImageFolder, idx: np.ndarray, size: tuple[int, int],
                channels: int) -> np.ndarray:
    """Decode `folder.files[idx]` into a float32 array (len(idx), H, W, channels), pixels in
    0..255 as image_dataset_from_directory yields them for image_size=size (bilinear resize,
    no crop or pad). channels: 1 grayscale, 3 rgb, 4 rgba. Raises DataError."""
    if channels not in CHANNELS:
        modes = ", ".join(f"{k} ({v})" for k, v in CHANNELS.items())
        raise DataError(f"Images can be read with {modes} channels, not {channels}. Set the "
                        f"channels to match the color_mode the model was trained with.")
    height, width = (int(s) for s in size)
    if height < 1 or width < 1:
        raise DataError(f"The image size {height}x{width} is empty; give a height and width of "
                        f"at least 1, the image_size the model was trained with.")
    idx = np.asarray(idx, dtype=np.int64).reshape(-1)
    out = np.empty((len(idx), height, width, channels), dtype=np.float32)
    if not len(idx):
        return out
    import tensorflow as tf

    with tf.device("/CPU:0"):
        for k, i in enumerate(idx):
            path = folder.files[int(i)]
            _require_image_file(path)
            try:
                data = tf.io.read_file(str(path))
                img = tf.io.decode_image(data, channels=channels, expand_animations=False)
                out[k] = tf.image.resize(img, (height, width), method="bilinear").numpy()
            except (tf.errors.OpError, ValueError) as exc:
                why = _reason(exc)
                fix = ("convert it to PNG, or read the images with 3 channels (rgb)"
                       if "channels" in why else f"replace it with a valid "
                       f"{'/'.join(e[1:] for e in EXTENSIONS)} image")
                raise DataError(
                    f"The image {path} could not be decoded with {channels} channels "
                    f"({CHANNELS[channels]}): {why}. Remove the file or {fix}; Keras' "
                    f"image_dataset_from_directory would stop on it too.") from None
    return out
