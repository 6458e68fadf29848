"""The image-folder loader against Keras' own image_dataset_from_directory: same files, same
order, same labels, same pixels; and one clear DataError paragraph for every bad folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nandoc.errors import DataError
from nandoc.loading import images
from nandoc.loading.images import ImageFolder, is_image_folder, list_image_folder, read_images

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")


def _png(path: Path, shape: tuple[int, int, int], seed: int) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.io.encode_png(pixels).numpy())
    return path


def _jpeg(path: Path, shape: tuple[int, int, int], seed: int) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.io.encode_jpeg(pixels).numpy())
    return path


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("images")
    good = base / "good"
    # Classes listed out of order on purpose; "b_dogs" has a nested folder and odd cases.
    _png(good / "b_dogs" / "d2.png", (5, 7, 3), 1)
    _png(good / "b_dogs" / "D1.PNG", (6, 4, 4), 2)  # RGBA, upper-case extension
    _png(good / "b_dogs" / "nested" / "deep" / "n1.png", (3, 3, 1), 3)  # grayscale
    _jpeg(good / "b_dogs" / "nested" / "j1.JPeG", (9, 5, 3), 4)
    (good / "b_dogs" / "notes.txt").write_text("not an image")
    _png(good / "a_cats" / "c1.png", (4, 4, 3), 5)
    _png(good / "a_cats" / "c0.png", (8, 6, 1), 6)
    _png(good / ".hidden" / "h.png", (4, 4, 3), 7)  # hidden folders are not classes
    _png(good / "loose.png", (4, 4, 3), 8)  # ignored next to class folders, as in Keras

    pngs = base / "pngs"  # no JPEG: Keras cannot read a JPEG as rgba
    _png(pngs / "one" / "p1.png", (5, 7, 3), 14)
    _png(pngs / "one" / "p2.png", (6, 4, 4), 15)
    _png(pngs / "two" / "sub" / "p3.png", (3, 3, 1), 16)
    _png(pngs / "two" / "p4.png", (2, 9, 2), 17)  # grayscale + alpha

    (good / "b_dogs" / "linked").symlink_to(pngs / "one", target_is_directory=True)  # not read

    loose = base / "loose"
    _png(loose / "x1.png", (4, 4, 3), 9)
    _png(loose / "x2.png", (4, 4, 3), 10)

    empty_classes = base / "empty_classes"
    (empty_classes / "cats").mkdir(parents=True)
    (empty_classes / "dogs").mkdir()
    (empty_classes / "dogs" / "readme.txt").write_text("no images here")

    bare = base / "bare"
    bare.mkdir()
    (bare / "notes.txt").write_text("nothing")

    broken = base / "broken"
    _png(broken / "a" / "ok.png", (4, 4, 3), 11)
    (broken / "a" / "zz_garbage.png").write_bytes(b"this is not an image at all")
    good_png = _png(base / "tmp_trunc.png", (16, 16, 3), 12).read_bytes()
    (broken / "b").mkdir()
    (broken / "b" / "truncated.png").write_bytes(good_png[:60])
    _png(broken / "b" / "zz_ok.png", (4, 4, 3), 13)

    return {"good": good, "pngs": pngs, "loose": loose, "empty_classes": empty_classes,
            "bare": bare, "broken": broken, "missing": base / "nowhere",
            "file": base / "tmp_trunc.png"}


def _keras(root: Path, size: tuple[int, int], color_mode: str):
    ds = keras.utils.image_dataset_from_directory(
        str(root), shuffle=False, image_size=size, color_mode=color_mode, batch_size=None,
        verbose=False)
    xs, ys = zip(*((x.numpy(), int(y.numpy())) for x, y in ds), strict=True)
    return ds, np.stack(xs), np.asarray(ys)


def test_layout_matches_keras(folders):
    folder = list_image_folder(folders["good"])
    ds, _, ys = _keras(folders["good"], (4, 4), "rgb")
    assert folder.classes == ("a_cats", "b_dogs") == tuple(ds.class_names)
    assert [str(p) for p in folder.files] == [str(Path(p)) for p in ds.file_paths]
    assert folder.labels.dtype == np.int64
    np.testing.assert_array_equal(folder.labels, ys)
    assert len(folder) == 6
    names = [p.name for p in folder.files]
    assert names == ["c0.png", "c1.png", "D1.PNG", "d2.png", "j1.JPeG", "n1.png"]
    for skipped in ("notes.txt", "h.png", "loose.png", "p1.png", "p2.png"):
        assert skipped not in names


@pytest.mark.parametrize(("channels", "mode"), [(3, "rgb"), (1, "grayscale"), (4, "rgba")])
@pytest.mark.parametrize("size", [(4, 4), (7, 3)])
def test_pixels_match_keras(folders, channels, mode, size):
    root = folders["pngs" if channels == 4 else "good"]
    folder = list_image_folder(root)
    _, xs, _ = _keras(root, size, mode)
    got = read_images(folder, np.arange(len(folder)), size, channels)
    assert got.dtype == np.float32
    assert got.shape == (len(folder), *size, channels)
    np.testing.assert_allclose(got, xs, atol=1e-3)
    some = np.array([3, 1])
    np.testing.assert_allclose(read_images(folder, some, size, channels), xs[some], atol=1e-3)


def test_empty_index_reads_nothing(folders):
    folder = list_image_folder(folders["good"])
    got = read_images(folder, np.array([], dtype=np.int64), (5, 6), 3)
    assert got.shape == (0, 5, 6, 3) and got.dtype == np.float32


def _error(fn, *args) -> str:
    with pytest.raises(DataError) as info:
        fn(*args)
    msg = str(info.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


def test_missing_folder(folders):
    msg = _error(list_image_folder, folders["missing"])
    assert str(folders["missing"]) in msg and "does not exist" in msg


def test_file_not_folder(folders):
    msg = _error(list_image_folder, folders["file"])
    assert str(folders["file"]) in msg and "not a folder" in msg


def test_images_in_root_without_class_folders(folders):
    msg = _error(list_image_folder, folders["loose"])
    assert str(folders["loose"]) in msg
    assert "x1.png" in msg and "one subfolder per class" in msg


def test_no_class_folders(folders):
    msg = _error(list_image_folder, folders["bare"])
    assert str(folders["bare"]) in msg and "no class subfolders" in msg


def test_class_folders_without_images(folders):
    msg = _error(list_image_folder, folders["empty_classes"])
    assert str(folders["empty_classes"]) in msg and "cats, dogs" in msg
    for ext in images.EXTENSIONS:
        assert ext in msg


@pytest.mark.parametrize(("name", "why"), [("zz_garbage.png", "Unknown image file format"),
                                            ("truncated.png", "Invalid PNG data")])
def test_undecodable_file(folders, name, why):
    folder = list_image_folder(folders["broken"])
    bad = next(i for i, p in enumerate(folder.files) if p.name == name)
    msg = _error(read_images, folder, np.array([bad]), (4, 4), 3)
    assert str(folder.files[bad]) in msg and why in msg
    assert "Remove the file" in msg
    assert "{{" not in msg and "[Op:" not in msg and "node" not in msg


def test_jpeg_as_rgba(folders):
    folder = list_image_folder(folders["good"])
    jpeg = next(i for i, p in enumerate(folder.files) if p.name == "j1.JPeG")
    msg = _error(read_images, folder, np.array([jpeg]), (4, 4), 4)
    assert str(folder.files[jpeg]) in msg and "4 channels" in msg and "3 channels" in msg


def test_reads_only_requested_files(folders):
    folder = list_image_folder(folders["broken"])
    ok = np.array([i for i, p in enumerate(folder.files) if "ok" in p.name])
    assert len(ok) == 2 and len(folder) == 4
    assert read_images(folder, ok, (4, 4), 3).shape == (2, 4, 4, 3)


def test_file_removed_after_listing(folders, tmp_path):
    gone = ImageFolder(root=tmp_path, classes=("a",), files=(tmp_path / "a" / "gone.png",),
                       labels=np.zeros(1, dtype=np.int64))
    msg = _error(read_images, gone, np.array([0]), (4, 4), 3)
    assert "gone.png" in msg and "No such file" in msg


@pytest.mark.parametrize("channels", [0, 2, 5])
def test_bad_channels(folders, channels):
    folder = list_image_folder(folders["good"])
    msg = _error(read_images, folder, np.array([0]), (4, 4), channels)
    assert f"not {channels}" in msg and "1 (grayscale), 3 (rgb), 4 (rgba)" in msg


def test_file_cap(folders, monkeypatch):
    monkeypatch.setattr(images, "MAX_FILES", 3)
    msg = _error(list_image_folder, folders["good"])
    assert str(folders["good"]) in msg and "more than 3 images" in msg


def test_is_image_folder(folders):
    assert is_image_folder(folders["good"])
    assert is_image_folder(folders["broken"])
    for name in ("loose", "empty_classes", "bare", "missing", "file"):
        assert not is_image_folder(folders[name]), name


def test_imports_and_lists_without_tensorflow(folders):
    code = ("import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None\n"
            "from nandoc.loading.images import list_image_folder\n"
            f"print(len(list_image_folder({str(folders['good'])!r}).files))\n"
            "assert 'tensorflow' not in sys.modules or sys.modules['tensorflow'] is None\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "6"


# --- a validation image folder ([data] validation_path) -------------------------------------

@pytest.fixture(scope="module")
def split_folders(tmp_path_factory) -> dict[str, Path]:
    """train/ (cats, dogs), val/ (dogs only: Keras alone would number them 0), val3/ (dogs
    and a fox the 2-unit model has no output for), and the model."""
    base = tmp_path_factory.mktemp("split")
    for k, (folder, names) in enumerate((("train", ("cats", "dogs")), ("val", ("dogs",)),
                                         ("val3", ("dogs", "fox")))):
        for c, name in enumerate(names):
            for i in range(6):
                _png(base / folder / name / f"{i}.png", (8, 8, 3), 100 * k + 10 * c + i)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Rescaling(1 / 255),
                              keras.layers.Flatten(), keras.layers.Dense(2, "softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.save(base / "model.keras")
    (base / "val.csv").write_text("a,label\n1,0\n")
    return {"base": base, "model": base / "model.keras"}


def _images_cfg(folders: dict[str, Path], val: str):
    from nandoc.config import Config

    base = folders["base"]
    return Config(model_path=folders["model"], data_path=base / "train",
                  validation_path=base / val, target=("label",))


def test_a_validation_image_folder_is_the_validation_split_labelled_by_class_name(
        split_folders):
    from nandoc.drivers.files import load_inputs

    data = load_inputs(_images_cfg(split_folders, "val")).data
    assert (data.train.n, data.val.n) == (12, 6)  # no split taken off the training images
    assert sorted(set(data.train.y.ravel().tolist())) == [0.0, 1.0]
    assert set(data.val.y.ravel().tolist()) == {1.0}  # "dogs" is class 1 in train/ too


def test_a_validation_class_the_training_folder_lacks_is_found_out_of_range(split_folders):
    from nandoc.drivers.check import check

    report = check(_images_cfg(split_folders, "val3"), steps=0)
    [found] = [f for f in report.findings if f.cause == "label-out-of-range"]
    # fox is class 2 of a 2-unit softmax: images 7-12 of val3/ (dogs come first), not train/
    assert (found.location.file, found.location.rows) == ("val3", (7, 8, 9, 10, 11, 12))
    assert "These ids are the class folder 'fox'" in found.evidence  # what to act on
    assert "Remove the class folder 'fox'" in found.fix and "Dense(3" in found.fix
    healthy = check(_images_cfg(split_folders, "val"), steps=0)
    assert "label-out-of-range" not in {f.cause for f in healthy.findings}


def test_an_image_folder_refuses_a_validation_path_that_is_not_one(split_folders):
    from nandoc.drivers.files import load_inputs

    with pytest.raises(DataError) as err:
        load_inputs(_images_cfg(split_folders, "val.csv"))
    msg = str(err.value)
    assert "validation_path must be one too" in msg and "val.csv" in msg
