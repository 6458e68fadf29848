"""A model file's saved config, read with bounded memory before Keras sees the file.

A `.keras` file is a zip archive; a hostile one can hold a `config.json` that inflates to
gigabytes from a megabyte (a zip bomb), a weights member that declares far more than it stores,
or JSON nested thousands deep (which makes Python's and Keras' parsers raise RecursionError).
Keras' own loader would inflate or recurse through these, so they are refused here, from the
archive's directory and a bounded, chunked read of the config; an .h5 model's datasets are
weighed the same way. `lower_suffix` hands Keras a model.KERAS under the name it routes on.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nandoc.errors import ModelLoadError

MAX_CONFIG_JSON = 64 * 2**20  # a large Keras model's config.json is a few MiB
MAX_JSON_DEPTH = 100  # a Keras model's config nests a few dozen levels at most
BOMB_FLOOR = 64 * 2**20  # members smaller than this are never called bombs
BOMB_RATIO = 100  # Keras stores archive members uncompressed; deflate tops out near 1032:1
_CHUNK = 2**20
_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
NOT_A_MODEL = "the file is not a model nandoc can read"
RESAVE = "Save it again from the code that built it with model.save('model.keras')."


def size_text(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} TiB"


def physical_memory() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def keras_archive_config(path: Path) -> dict[str, Any]:
    """The parsed config.json of a .keras archive; every problem is a ModelLoadError."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            names = [i.filename for i in infos]
            if "config.json" not in names:
                shown = ", ".join(names[:5]) or "nothing"
                raise ModelLoadError(
                    f"The model file {path} is a zip archive but not a Keras model: it has no "
                    f"config.json (it holds {shown}). {RESAVE}")
            _refuse_bombs(path, infos)
            raw = _bounded_read(path, archive, archive.getinfo("config.json"))
    except ModelLoadError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
            NotImplementedError) as exc:
        raise ModelLoadError(f"The model file {path} is not a valid .keras archive (it may be "
                             f"truncated, corrupt, or not a model: {exc}). {RESAVE}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelLoadError(f"The model file {path} has a config.json that is not UTF-8 "
                             f"text; {NOT_A_MODEL}. {RESAVE}") from None
    config = parse_model_json(text, path, "config.json")
    if not isinstance(config, dict) or "class_name" not in config:
        raise ModelLoadError(f"The model file {path} holds no Keras model config. {RESAVE}")
    return config


def _refuse_bombs(path: Path, infos: list[zipfile.ZipInfo]) -> None:
    for info in infos:
        if info.file_size > BOMB_FLOOR and info.file_size > BOMB_RATIO * max(
                info.compress_size, 1):
            raise ModelLoadError(
                f"The model file {path} is not a model nandoc can read: its member "
                f"'{info.filename[:100]}' declares {size_text(info.file_size)} once "
                f"decompressed but stores only {size_text(info.compress_size)} (Keras stores "
                f"its archive members uncompressed). Inflating it would fill the memory: the "
                f"archive is damaged or built to do that (a zip bomb). {RESAVE}")
    total = sum(i.file_size for i in infos)
    memory = physical_memory()
    if memory is not None and total > memory:
        raise ModelLoadError(
            f"The model file {path} declares {size_text(total)} of content once "
            f"decompressed, more than this machine's {size_text(memory)} of memory; Keras reads "
            f"the weights into memory, so the model cannot be loaded here (or the archive is "
            f"damaged). Check the file on a larger machine, or {RESAVE[0].lower()}{RESAVE[1:]}")


def _too_large(path: Path, size: int) -> None:
    raise ModelLoadError(
        f"The model file {path} has a config.json of {size_text(size)} or more once "
        f"decompressed; a Keras model's is at most a few MiB (nandoc reads up to "
        f"{size_text(MAX_CONFIG_JSON)}), so {NOT_A_MODEL} (it may be damaged or built to fill "
        f"the memory). {RESAVE}")


def _bounded_read(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """config.json, read in chunks and counted: the declared size is not trusted."""
    if info.file_size > MAX_CONFIG_JSON:
        _too_large(path, info.file_size)
    chunks: list[bytes] = []
    got = 0
    with archive.open(info) as fh:
        while chunk := fh.read(_CHUNK):
            got += len(chunk)
            if got > MAX_CONFIG_JSON:
                _too_large(path, got)
            chunks.append(chunk)
    return b"".join(chunks)


def nesting_depth(text: str) -> int:
    """How deep JSON text nests arrays and objects, measured without recursion: strings are
    blanked, then the brackets counted."""
    brackets = _STRINGS.sub("", text)
    depth = deepest = 0
    for ch in re.findall(r"[\[\]{}]", brackets):
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def parse_model_json(text: str, path: Path, what: str) -> Any:
    """json.loads of a model file's config `what`, refusing one nested too deep to be a model
    (json and Keras both recurse per level)."""
    depth = nesting_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise ModelLoadError(
            f"The model file {path} has a {what} nested {depth:,} levels deep; a Keras "
            f"model's is under {MAX_JSON_DEPTH}, so {NOT_A_MODEL} (it may be damaged or built "
            f"to crash the reader). {RESAVE}")
    try:
        return json.loads(text)
    except RecursionError:
        raise ModelLoadError(f"The model file {path} has a {what} nested too deeply to read; "
                             f"{NOT_A_MODEL}. {RESAVE}") from None
    except ValueError as exc:
        raise ModelLoadError(f"The model file {path} has a damaged {what} ({exc}); "
                             f"{NOT_A_MODEL}. {RESAVE}") from None


def h5_dataset_sizes(h5file: Any) -> list[tuple[str, int, int]]:
    """(name, bytes once read, bytes stored) of every dataset in an open h5py File."""
    import h5py

    out: list[tuple[str, int, int]] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            out.append((name, int(obj.size) * obj.dtype.itemsize,
                        int(obj.id.get_storage_size())))

    h5file.visititems(visit)
    return out


def refuse_h5_bombs(path: Path, sizes: list[tuple[str, int, int]]) -> None:
    """An .h5 whose datasets declare far more than they store (compressed or never written):
    Keras reads the weights whole."""
    for name, size, stored in sizes:
        if size > BOMB_FLOOR and size > BOMB_RATIO * max(stored, 1):
            raise ModelLoadError(
                f"The model file {path} is not a model nandoc can read: its dataset "
                f"'{name[:100]}' declares {size_text(size)} once read but stores only "
                f"{size_text(stored)}. Reading it would fill the memory: the file is damaged "
                f"or built to do that. {RESAVE}")
    total = sum(size for _, size, _ in sizes)
    memory = physical_memory()
    if memory is not None and total > memory:
        raise ModelLoadError(
            f"The model file {path} declares {size_text(total)} of weights, more than this "
            f"machine's {size_text(memory)} of memory, so the model cannot be loaded here (or "
            f"the file is damaged). Check it on a larger machine.")


@contextlib.contextmanager
def lower_suffix(path: Path) -> Iterator[Path]:
    """Keras routes on the suffix in lower case only: a model.KERAS is given to it through a
    link named model.keras in a temporary folder (the user's file is not touched)."""
    suffix = path.suffix
    if suffix == suffix.lower():
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="nandoc-model-") as folder:
        link = Path(folder) / f"model{suffix.lower()}"
        try:
            link.symlink_to(path.resolve())
        except OSError:  # no symbolic links here (Windows without the right): a copy
            shutil.copyfile(path, link)
        yield link
