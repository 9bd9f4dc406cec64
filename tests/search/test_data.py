"""Dataset loading: built-ins, image folders, zips and .npz on real files; splits; every error path."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from search.data import DatasetError, DatasetSplits, dataset_names, load_dataset
from search.data.archive import DatasetTooLarge, check_members, declared_members, extracted_zip
from search.data.arrays import load_npz
from search.data.check import check_dataset
from search.data.splits import stratified_split


def _write_folder(
    root: Path,
    classes: dict[str, int],
    *,
    size: tuple[int, int] = (10, 12),
    mode: str = "L",
    seed: int = 0,
) -> Path:
    """`root/<class>/<i>.png` with random pixels, `count` images per class."""
    rng = np.random.default_rng(seed)
    channels = 3 if mode == "RGB" else 1
    for name, count in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            pixels = rng.integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8)
            Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode).save(
                root / name / f"{index}.png"
            )
    return root


def _zip_folder(folder: Path, archive: Path, *, prefix: str = "") -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, prefix + path.relative_to(folder).as_posix())
    return archive


def _error(spec: Path | str, fragment: str, **kwargs: object) -> str:
    with pytest.raises(DatasetError) as caught:
        load_dataset(str(spec), **kwargs)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message
    assert str(spec) in message, message
    assert fragment in message, message
    return message


def _row_hashes(dataset: torch.utils.data.TensorDataset) -> set[bytes]:
    images = dataset.tensors[0].reshape(len(dataset), -1).numpy()
    return {hashlib.sha256(row.tobytes()).digest() for row in images}


# --- built-ins ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist() -> DatasetSplits:
    return load_dataset("mnist5k", seed=0)


def test_builtin_names() -> None:
    assert dataset_names() == ["cluttered-mnist", "digits", "mnist5k"]


def test_mnist5k_shape_classes_and_stratified_splits(mnist: DatasetSplits) -> None:
    assert mnist.name == "mnist5k"
    assert mnist.source.endswith("mnist_5k.csv.gz")
    assert (mnist.num_classes, mnist.input_shape) == (10, (1, 28, 28))
    assert mnist.class_names == tuple("0123456789")
    assert (len(mnist.train), len(mnist.val), len(mnist.test)) == (3000, 1000, 1000)
    for split, per_class in ((mnist.train, 300), (mnist.val, 100), (mnist.test, 100)):
        images, labels = split.tensors
        assert images.dtype == torch.float32 and labels.dtype == torch.int64
        assert torch.bincount(labels, minlength=10).tolist() == [per_class] * 10
    # Normalised with train statistics: train is zero-mean unit-std, the raw pixels were in [0, 1].
    train_images = mnist.train.tensors[0]
    assert abs(train_images.mean().item()) < 1e-4
    assert abs(train_images.std().item() - 1.0) < 1e-3
    assert 0.10 < mnist.mean[0] < 0.16 and 0.28 < mnist.std[0] < 0.34
    assert train_images.min().item() == pytest.approx(-mnist.mean[0] / mnist.std[0], rel=1e-5)


def test_mnist5k_splits_are_disjoint(mnist: DatasetSplits) -> None:
    train, val, test = (_row_hashes(split) for split in (mnist.train, mnist.val, mnist.test))
    assert not (train & val) and not (train & test) and not (val & test)
    assert len(train | val | test) >= 4990  # MNIST has (almost) no exact duplicate images


def test_splits_are_seeded(mnist: DatasetSplits) -> None:
    again = load_dataset("mnist5k", seed=0)
    other = load_dataset("mnist5k", seed=1)
    for name in ("train", "val", "test"):
        assert torch.equal(getattr(mnist, name).tensors[0], getattr(again, name).tensors[0])
        assert torch.equal(getattr(mnist, name).tensors[1], getattr(again, name).tensors[1])
        assert not torch.equal(getattr(mnist, name).tensors[1], getattr(other, name).tensors[1])
    assert mnist.content_hash == again.content_hash == other.content_hash
    assert len(mnist.content_hash) == 16


def test_stratified_split_indices_partition_every_class() -> None:
    labels = np.repeat(np.arange(4), [3, 10, 2, 1])
    train, val, test = stratified_split(
        labels, num_classes=4, val_fraction=0.2, test_fraction=0.2, seed=3
    )
    together = np.concatenate([train, val, test])
    assert sorted(together.tolist()) == list(range(len(labels)))
    assert np.bincount(labels[train], minlength=4).tolist() == [1, 6, 1, 1]
    assert np.bincount(labels[val], minlength=4).tolist() == [1, 2, 1, 0]
    assert np.bincount(labels[test], minlength=4).tolist() == [1, 2, 0, 0]


def test_digits_and_resolution() -> None:
    digits = load_dataset("digits")
    assert digits.input_shape == (1, 8, 8) and digits.num_classes == 10
    assert len(digits.train) + len(digits.val) + len(digits.test) == 1797
    upsampled = load_dataset("digits", resolution=28)
    assert upsampled.input_shape == (1, 28, 28)
    assert upsampled.train.tensors[0].shape[1:] == (1, 28, 28)
    assert upsampled.content_hash != digits.content_hash
    assert load_dataset("digits", resolution=8).content_hash == digits.content_hash
    assert upsampled.record()["sizes"] == digits.record()["sizes"]


# --- image folders and zips --------------------------------------------------------------------


def test_image_folder_loads_with_sorted_class_names(tmp_path: Path) -> None:
    root = _write_folder(tmp_path / "shapes", {"square": 5, "circle": 5, "tri": 6})
    data = load_dataset(str(root), seed=1)
    assert data.name == "shapes" and data.source == str(root)
    assert data.class_names == ("circle", "square", "tri")
    assert data.input_shape == (1, 12, 10)
    assert len(data.train) + len(data.val) + len(data.test) == 16
    assert min(len(data.train), len(data.val), len(data.test)) >= 3
    resized = load_dataset(str(root), resolution=6)
    assert resized.input_shape == (1, 6, 6)


def test_image_folder_colour_and_16_bit(tmp_path: Path) -> None:
    root = _write_folder(tmp_path / "mixed", {"a": 3, "b": 3})
    _write_folder(tmp_path / "mixed", {"c": 3}, mode="RGB")
    assert load_dataset(str(root)).input_shape == (3, 12, 10)
    deep = tmp_path / "deep"
    for name in ("x", "y"):
        (deep / name).mkdir(parents=True)
        for index in range(3):
            pixels = np.full((4, 4), 1000 * (index + 1), dtype=np.uint16)
            Image.fromarray(pixels).save(deep / name / f"{index}.png")
    data = load_dataset(str(deep))
    assert data.input_shape == (1, 4, 4)
    assert 0.0 < data.mean[0] < 0.1  # scaled by 65535, not clipped to 255


@pytest.mark.parametrize("prefix", ["", "shapes/"])
def test_zip_of_image_folder(tmp_path: Path, prefix: str) -> None:
    root = _write_folder(tmp_path / "shapes", {"circle": 4, "square": 4})
    archive = _zip_folder(root, tmp_path / "shapes.zip", prefix=prefix)
    with zipfile.ZipFile(archive, "a") as zf:  # litter that macOS archives carry
        zf.writestr("__MACOSX/._junk", b"junk")
        zf.writestr(prefix + "circle/.DS_Store", b"junk")
    from_zip = load_dataset(str(archive))
    from_dir = load_dataset(str(root))
    assert from_zip.name == "shapes" and from_zip.source == str(archive)
    assert from_zip.class_names == ("circle", "square")
    assert from_zip.content_hash == from_dir.content_hash
    assert torch.equal(from_zip.train.tensors[0], from_dir.train.tensors[0])


def test_zip_slip_and_absolute_members_are_refused(tmp_path: Path) -> None:
    for bad in ("../evil.png", "circle/../../evil.png", "/tmp/evil.png"):
        archive = tmp_path / "slip.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("circle/0.png", b"x")
            zf.writestr(bad, b"x")
        message = _error(archive, "unsafe member")
        assert bad in message
    assert not (tmp_path.parent / "evil.png").exists() and not (tmp_path / "evil.png").exists()


def test_zip_bomb_limits(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a/zeros.png", b"\0" * 100_000)
    assert archive.stat().st_size < 2_000
    with (
        pytest.raises(DatasetError, match="exceeds the 10000-byte limit"),
        extracted_zip(archive, max_bytes=10_000),
    ):
        pass
    # A member that declares 100 bytes but inflates to 100,000 is caught while extracting.
    data = bytearray(archive.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = data.index(signature) + offset
        data[start : start + 4] = (100).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    with (
        pytest.raises(DatasetError, match="cannot extract"),
        extracted_zip(archive, max_bytes=10_000),
    ):
        pass


# --- npz ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((30, 9, 7), (1, 9, 7)),
        ((30, 9, 7, 3), (3, 9, 7)),
        ((30, 3, 9, 7), (3, 9, 7)),
        ((30, 1, 9, 7), (1, 9, 7)),
    ],
)
def test_npz_layouts(tmp_path: Path, shape: tuple[int, ...], expected: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "arrays.npz"
    np.savez(path, x=rng.integers(0, 256, size=shape, dtype=np.uint8), y=np.arange(30) % 3)
    data = load_dataset(str(path))
    assert data.input_shape == expected and data.name == "arrays"
    assert data.class_names == ("0", "1", "2")


def test_npz_float_pixels_class_names_and_train_statistics(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.random((40, 5, 5), dtype=np.float32)
    y = np.arange(40) % 2
    path = tmp_path / "floats.npz"
    np.savez(path, x=x, y=y.astype(np.float64), class_names=np.array(["cat", "dog"]))
    data = load_dataset(str(path), seed=7)
    assert data.class_names == ("cat", "dog")
    train, _, _ = stratified_split(y, num_classes=2, val_fraction=0.2, test_fraction=0.2, seed=7)
    assert data.mean[0] == pytest.approx(float(x[train].mean()), rel=1e-5)
    assert data.std[0] == pytest.approx(float(x[train].std()), rel=1e-4)


# --- errors ------------------------------------------------------------------------------------


def test_folder_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _error(tmp_path / "empty", "no class folders")
    root = _write_folder(tmp_path / "noimg", {"a": 3})
    (root / "b").mkdir()
    (root / "b" / "notes.txt").write_text("not an image")
    message = _error(root, "has no images")
    assert str(root / "b") in message
    one = _write_folder(tmp_path / "one", {"only": 5})
    _error(one, "at least 2 classes")


def test_corrupt_and_truncated_images_are_named(tmp_path: Path) -> None:
    root = _write_folder(tmp_path / "bad", {"a": 3, "b": 3}, size=(64, 64))
    (root / "b" / "junk.png").write_bytes(b"this is not a png")
    assert str(root / "b" / "junk.png") in _error(root, "cannot read image")
    (root / "b" / "junk.png").unlink()
    whole = (root / "a" / "1.png").read_bytes()
    (root / "a" / "1.png").write_bytes(whole[: len(whole) // 2])
    assert str(root / "a" / "1.png") in _error(root, "cannot read image")


def test_mixed_sizes_need_a_resolution(tmp_path: Path) -> None:
    root = _write_folder(tmp_path / "sizes", {"a": 3, "b": 3}, size=(8, 8))
    _write_folder(root, {"b": 1}, size=(10, 6), seed=1)  # overwrites b/0.png with another size
    message = _error(root, "differs from 8×8")
    assert str(root / "b" / "0.png") in message and "10×6" in message
    assert load_dataset(str(root), resolution=8).input_shape == (1, 8, 8)


def _npz_cases() -> dict[str, tuple[dict[str, np.ndarray], str]]:
    x = np.zeros((12, 4, 4), dtype=np.uint8)
    return {
        "nox": ({"y": np.arange(12) % 2}, "missing array 'x'"),
        "noy": ({"x": x}, "missing array 'y'"),
        "length": ({"x": x, "y": np.arange(11) % 2}, "length mismatch"),
        "fraction": ({"x": x, "y": np.arange(12) % 2 + 0.5}, "integer class labels"),
        "strings": ({"x": x, "y": np.array(["a", "b"] * 6)}, "integer class labels"),
        "negative": ({"x": x, "y": np.arange(12) % 2 - 1}, "labels must be >= 0"),
        "single": ({"x": x, "y": np.zeros(12, dtype=np.int64)}, "at least 2 classes"),
        "gap": ({"x": x, "y": (np.arange(12) % 2) * 2}, "class '1' has no samples"),
        "huge": ({"x": x, "y": np.arange(12) % 2 * 10**9}, "too large"),
        "few": ({"x": x[:4], "y": np.arange(4) % 2}, "too few to split"),
        "axis": ({"x": np.zeros((12, 5, 6, 7)), "y": np.arange(12) % 2}, "channel axis"),
        "range": ({"x": x.astype(np.int32) - 1, "y": np.arange(12) % 2}, "values 0..255"),
        "nan": ({"x": x.astype(np.float32) * np.nan, "y": np.arange(12) % 2}, "NaN"),
        "zero": ({"x": np.zeros((12, 4, 0)), "y": np.arange(12) % 2}, "image dimension of 0"),
        "empty": ({"x": np.zeros((0, 4, 4)), "y": np.arange(0)}, "holds no images"),
        "pickled": (
            {"x": x, "y": np.array([0, 1, "a", None] * 3, dtype=object)},
            "holds Python objects",  # object arrays are never unpickled
        ),
    }


def _npz_declaring(path: Path, shape: tuple[int, ...]) -> Path:
    """An .npz whose x header declares `shape` over 64 bytes of data."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": shape}
    )
    labels = io.BytesIO()
    np.save(labels, np.arange(3))
    with zipfile.ZipFile(path, "w") as zipped:
        zipped.writestr("x.npy", header.getvalue() + bytes(64))
        zipped.writestr("y.npy", labels.getvalue())
    return path


def test_npz_errors(tmp_path: Path) -> None:
    for name, (arrays, fragment) in _npz_cases().items():
        path = tmp_path / f"{name}.npz"
        np.savez(path, **arrays)  # type: ignore[arg-type]
        _error(path, fragment)
    x = np.zeros((12, 4, 4), dtype=np.uint8)
    not_npz = tmp_path / "broken.npz"
    not_npz.write_bytes(b"garbage")
    _error(not_npz, "cannot read .npz")
    single = tmp_path / "single.npz"
    with single.open("wb") as handle:
        np.save(handle, x)  # a .npy under an .npz name
    _error(single, "holds a single array")
    # a header declaring more than its data holds is refused, never allocated
    enormous = _npz_declaring(tmp_path / "enormous.npz", (10**6, 10**6, 10**6))
    _error(enormous, "declares shape (1000000, 1000000, 1000000) of float32")


def test_check_dataset_refuses_what_load_dataset_refuses(tmp_path: Path) -> None:
    """The upload's check (no dataset held in memory) and the loader agree, message for message."""
    for name, (arrays, fragment) in _npz_cases().items():
        path = tmp_path / f"{name}.npz"
        np.savez(path, **arrays)  # type: ignore[arg-type]
        with pytest.raises(DatasetError) as caught:
            check_dataset(path, "npz", where="mine.npz")
        assert str(caught.value).startswith("mine.npz: ") and fragment in str(caught.value)
        assert str(caught.value) == _error(path, fragment).replace(str(path), "mine.npz")
    enormous = _npz_declaring(tmp_path / "enormous.npz", (10**6, 10**6, 10**6))
    with pytest.raises(DatasetError, match="declares shape"):
        check_dataset(enormous, "npz", where="enormous.npz")


def test_check_dataset_summarises_as_load_dataset_loads(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, (30, 6, 5, 3)).astype(np.uint8)
    arrays = {
        "grey.npz": {"x": rng.uniform(0, 1, (30, 7, 7)), "y": np.arange(30) % 3},
        # channels last, saved in Fortran order: read in storage order
        "colour.npz": {"x": np.asfortranarray(colour), "y": np.arange(30) % 2},
        "named.npz": {
            "x": colour.transpose(0, 3, 1, 2),
            "y": np.arange(30) % 2,
            "class_names": np.array(["cat", "dog"]),
        },
    }
    for name, content in arrays.items():
        np.savez(tmp_path / name, **content)  # type: ignore[arg-type]
    folder = _write_folder(tmp_path / "shapes", {"circle": 4, "square": 5}, size=(9, 7))
    archive = _zip_folder(folder, tmp_path / "shapes.zip", prefix="shapes/")
    for path, fmt in [*((tmp_path / n, "npz") for n in arrays), (archive, "zip")]:
        summary = check_dataset(path, fmt, where=path.name, work_dir=tmp_path)
        loaded = load_dataset(str(path))
        assert summary.input_shape == loaded.input_shape
        assert summary.class_names == loaded.class_names
        assert summary.samples == len(loaded.train) + len(loaded.val) + len(loaded.test)
    assert not list(tmp_path.glob("hwnas-data-*"))  # the zip's extraction is gone


def test_npz_uncompressed_size_is_capped_before_decompressing(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.npz"
    np.savez_compressed(bomb, x=np.zeros((400, 64, 64), np.uint8), y=np.arange(400) % 2)
    assert bomb.stat().st_size < 10_000
    for check in (
        lambda: check_dataset(bomb, "npz", where="bomb.npz", max_bytes=1_000_000),
        lambda: load_npz(bomb, name="bomb", max_bytes=1_000_000),
    ):
        with pytest.raises(DatasetTooLarge, match="uncompressed size 16418"):
            check()


def test_spec_and_argument_errors(tmp_path: Path) -> None:
    message = _error("no-such-dataset", "unknown dataset")
    assert "mnist5k" in message and "digits" in message
    text = tmp_path / "data.csv"
    text.write_text("1,2,3")
    _error(text, "unsupported dataset file")
    not_zip = tmp_path / "fake.zip"
    not_zip.write_bytes(b"garbage")
    _error(not_zip, "not a readable zip")
    flat = tmp_path / "flat.zip"
    with zipfile.ZipFile(flat, "w") as zf:
        zf.writestr("0.png", b"x")
        zf.writestr("1.png", b"x")
    assert _error(flat, "no class folders").startswith(f"{flat}: ")
    _error("digits", "must each be > 0", val_fraction=0.0)
    _error("digits", "sum to < 1", val_fraction=0.5, test_fraction=0.5)
    _error("digits", "resolution must be", resolution=0)
    _error("digits", "seed must be", seed=-1)


def test_a_zip_declaring_too_many_members_is_refused_before_its_directory_is_read(
    tmp_path: Path,
) -> None:
    """zipfile builds an object per member of the central directory; the count in the end
    record is checked first (1000 for an .npz, MAX_MEMBERS for an image folder)."""
    crowded = tmp_path / "crowded.npz"
    with zipfile.ZipFile(crowded, "w") as zf:
        for index in range(1001):
            zf.writestr(f"a{index}.npy", b"")
    assert declared_members(crowded) == 1001
    _error(crowded, "1001 members, more than 1000")
    with pytest.raises(DatasetError, match="3 members, more than 2"):
        check_members(
            _zip_folder(_write_folder(tmp_path / "f", {"a": 3}), tmp_path / "f.zip"), "f.zip", 2
        )
    assert declared_members(tmp_path / "f.zip") == 3
    not_zip = tmp_path / "plain.txt"
    not_zip.write_text("no end record here")
    assert declared_members(not_zip) is None
    zip64 = tmp_path / "zip64.zip"  # more than 65535 members: counted in the zip64 record
    with zipfile.ZipFile(zip64, "w") as zf:
        for index in range(70_000):
            zf.writestr(str(index), b"")
    assert declared_members(zip64) == 70_000
