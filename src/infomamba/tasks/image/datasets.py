"""Image readers: MNIST-family idx files, ImageFolder trees and class folders, HF hub datasets, loose files.

Every reader yields `(image, label)` with `image` a uint8 `tv_tensors.Image` (C, H, W) already in
the requested channel count (grayscale replicated to RGB, RGB reduced to luminance), so the
transforms downstream never care where a sample came from. Decoded images are put upright as their EXIF
orientation says (phone photos), composited on white where they have transparency (alpha, or a palette's
transparent colour) and, at 16 bits a sample, scaled to 8 (`load_pil`). `open_source` finds a source's class names,
channels and official splits from names, headers and label files only (class folders without split folders are
also walked to their first image file, to tell them from other folders); each split's images are read when
`ImageSource.read` asks for that split, so a stage reads only the splits it uses. The readers that decode
images (files, hub rows; not the in-memory idx arrays) name their samples (`name(index)`: the file path, or
the row) for messages about images that cannot be read; `UNREADABLE` lists what reading a broken image file
raises. Image files are recognised by their extension (`IMAGE_EXTENSIONS`), the same list for ImageFolder
trees and predict inputs; other files, and hidden ones (a name or a folder under the root starting with ".": macOS's
`._x.png` and `.DS_Store`, `.ipynb_checkpoints`), are left out and listed with the reason
(`FixedClassImageFolder.left_out`, `ImageFileScan.left_out`) for the data module to report.
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import ImageOps
from PIL import Image as PILImage
from torch.utils.data import Dataset

from ..optional_deps import require_torchvision
from ..paths import is_hidden, missing

require_torchvision()
from torchvision import tv_tensors  # noqa: E402
from torchvision.datasets import ImageFolder  # noqa: E402
from torchvision.transforms.v2 import functional as TF  # noqa: E402

# idx type codes (third header byte) -> big-endian numpy dtype (LeCun's MNIST page).
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
IDX_PATTERN = re.compile(r"^(train|t10k)-(images|labels)[-.]idx([13])-ubyte(\.gz)?$")
PIL_MODES = {1: "L", 3: "RGB"}
# What PIL raises for a file that is not a readable image: empty or unidentified (UnidentifiedImageError
# is an OSError), truncated (OSError), malformed chunks (SyntaxError, ValueError, EOFError), too large.
UNREADABLE = (OSError, SyntaxError, ValueError, EOFError, PILImage.DecompressionBombError)
SIXTEEN_BIT_PIL_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
GRAY_PIL_MODES = ("1", "L", "LA", "La", "I", "F") + SIXTEEN_BIT_PIL_MODES
ALPHA_PIL_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
# White, what a viewer shows behind a transparent image, not the arbitrary colours its transparent pixels hold.
TRANSPARENT_BACKGROUND = (255, 255, 255, 255)
EXIF_ORIENTATION = 0x0112
# Extensions of the image files read from folders and predict paths (lower case): torchvision's ImageFolder
# list plus GIF, which PIL reads too (its first frame).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")
# Split folders of an ImageFolder tree; class folders directly under root are a pool only when none exists.
SPLIT_FOLDERS = ("train", "val", "validation", "test")
# Names of the classes of idx files, one per line, beside them.
CLASSES_FILE = "classes.txt"
# Fashion-MNIST's classes, label order (torchvision's FashionMNIST.classes).
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot")


def _open_idx(path: Path):
    return (gzip.open if path.suffix == ".gz" else open)(path, "rb")


def _idx_header(path: Path, data: bytes) -> tuple[np.dtype, tuple[int, ...], int]:
    """(dtype, shape, header length) an idx file declares in its first bytes `data`.

    Header: two zero bytes, a type code, the number of dims, then one big-endian uint32 per dim.
    Raises ValueError naming the file if the magic number or type code is wrong or the header is cut.
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(
            f"{path} is not an idx file: magic number {data[:4].hex() or '(empty)'} "
            "should start with 0000"
        )
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        raise ValueError(f"{path}: unknown idx type code 0x{code:02x} (known: 08 09 0b 0c 0d 0e)")
    if ndim == 0 or len(data) < 4 + 4 * ndim:
        raise ValueError(f"{path}: idx header declares {ndim} dims but is truncated or empty")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    return IDX_DTYPES[code], shape, 4 + 4 * ndim


def read_idx_header(path: str | Path) -> tuple[np.dtype, tuple[int, ...]]:
    """The (dtype, shape) an idx file (raw or .gz) declares, from its header alone: nothing else is read
    or decompressed. Raises ValueError naming the file as `read_idx` does."""
    path = Path(path)
    try:
        with _open_idx(path) as f:
            head = f.read(4)
            if len(head) == 4:
                head += f.read(4 * head[3])
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"cannot read idx file {path}: {err}") from err
    dtype, shape, _ = _idx_header(path, head)
    return dtype, shape


def read_idx(path: str | Path) -> np.ndarray:
    """Read an idx file (raw or .gz) into a numpy array of its declared dtype and shape.

    Raises ValueError naming the file if the magic number, type code or payload size is wrong.
    """
    path = Path(path)
    try:
        with _open_idx(path) as f:
            data = f.read()
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"cannot read idx file {path}: {err}") from err
    dtype, shape, offset = _idx_header(path, data)
    expected = int(np.prod(shape)) * dtype.itemsize
    payload = len(data) - offset
    if payload != expected:
        raise ValueError(
            f"{path}: header declares shape {shape} of {dtype.name} ({expected} bytes) "
            f"but the file holds {payload} bytes of data"
        )
    array = np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def find_idx_files(root: str | Path) -> dict[str, tuple[Path, Path]]:
    """Map "train"/"test" to (images, labels) idx paths under `root` (raw or .gz, `-` or `.idx`).

    Returns {} when `root` holds no idx files; raises ValueError when a split has images but no
    labels (or the reverse) or the same file exists both raw and gzipped.
    """
    found: dict[tuple[str, str], Path] = {}
    for path in sorted(Path(root).iterdir()):
        match = IDX_PATTERN.match(path.name)
        if match is None:
            continue
        key = ("train" if match[1] == "train" else "test", match[2])
        if key in found:
            raise ValueError(f"two idx files for {key[0]} {key[1]}: {found[key]} and {path}")
        found[key] = path
    splits = {}
    for split in ("train", "test"):
        images, labels = found.get((split, "images")), found.get((split, "labels"))
        if (images is None) != (labels is None):
            missing = "labels" if labels is None else "images"
            raise ValueError(f"{images or labels} has no matching {split} {missing} idx file")
        if images is not None:
            splits[split] = (images, labels)
    return splits


def _is_class_dir(path: Path) -> bool:
    """A class folder of an ImageFolder tree: a directory whose name is not hidden (.cache...)."""
    return path.is_dir() and not path.name.startswith(".")


def has_image_extension(path: str | Path) -> bool:
    """Whether `path` ends in one of `IMAGE_EXTENSIONS` (any case)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def left_out_reason(path: str | Path, root: str | Path) -> str | None:
    """Why an image tree or predict folder leaves out the file `path`: "hidden" or "unsupported extension";
    None for an image file to read."""
    if is_hidden(path, root):
        return "hidden"
    return None if has_image_extension(path) else "unsupported extension"


def holds_image(folder: Path) -> bool:
    """Whether `folder` or a folder under it holds an image file that is not hidden; walked as ImageFolder walks it
    (links followed), stopping at the first such file."""
    return any(left_out_reason(os.path.join(at, name), folder) is None
               for at, _, names in os.walk(folder, followlinks=True) for name in names)


def load_pil(image: PILImage.Image, channels: int) -> tv_tensors.Image:
    """PIL image of any mode -> uint8 `tv_tensors.Image` with `channels` (1 or 3) channels, as a viewer shows it:
    turned upright by its EXIF orientation tag, composited on white (`TRANSPARENT_BACKGROUND`) where it has
    transparency, and 16-bit grayscale scaled to 8 bits (PIL's own conversion clips every value above 255)."""
    if image.getexif().get(EXIF_ORIENTATION, 1) != 1:
        image = ImageOps.exif_transpose(image)
    if image.mode in SIXTEEN_BIT_PIL_MODES:
        image = PILImage.fromarray(np.round(np.asarray(image) / 257.0).astype(np.uint8))
    if image.mode in ALPHA_PIL_MODES or "transparency" in image.info:
        image = PILImage.alpha_composite(PILImage.new("RGBA", image.size, TRANSPARENT_BACKGROUND),
                                         image.convert("RGBA"))
    return tv_tensors.Image(TF.pil_to_tensor(image.convert(PIL_MODES[channels])))


def load_image_file(path: str, channels: int) -> tv_tensors.Image:
    """Open an image file as a uint8 `tv_tensors.Image` with `channels` (1 or 3) channels."""
    with PILImage.open(path) as image:
        return load_pil(image, channels)


class IdxDataset(Dataset):
    """Images from an MNIST-family idx images file with their labels (N,), already read and checked
    against the file's header by `open_idx`; grayscale is replicated when channels is 3.

    The images are read when the dataset is built and held in memory (Fashion-MNIST train is 47 MB).
    Samples are (uint8 image (channels, H, W), label).
    """

    def __init__(self, images_path: Path, labels: np.ndarray, channels: int = 1) -> None:
        self.images = read_idx(images_path)
        self.labels = labels
        self.channels = channels

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def targets(self) -> np.ndarray:
        """Every sample's label, under the name torchvision's ImageFolder gives them."""
        return self.labels

    def __getitem__(self, index: int) -> tuple[tv_tensors.Image, int]:
        image = torch.from_numpy(self.images[index]).unsqueeze(0).repeat(self.channels, 1, 1)
        return tv_tensors.Image(image), int(self.labels[index])


def refuse_folders_read_twice(root: Path, folders: set[str]) -> None:
    """ImageFolder follows links: a link to a folder already read (a loop such as `cat/self -> ../cat`, or one
    folder linked into two classes) makes its images count again, or under two labels. A ValueError names both."""
    seen: dict[str, str] = {}
    for folder in sorted(folders, key=lambda f: (f.count(os.sep), f)):
        real = os.path.realpath(folder)
        if real in seen:
            raise ValueError(f"{root}: {folder} is {seen[real]} again, reached through a link (a loop, or one folder "
                             "in two places): its images would be read twice; remove the link")
        seen[real] = folder


class FixedClassImageFolder(ImageFolder):
    """torchvision ImageFolder whose class list is given (the train split's), not re-discovered.

    Keeps label indices identical across train/val/test folders; a split may lack some classes
    (`allow_empty`). Hidden files and files whose extension is not one of `IMAGE_EXTENSIONS` are left out and
    listed in `left_out` (path, reason), for the data module to report. Samples are (uint8 image (channels, H, W),
    label).
    """

    def __init__(self, root: Path, classes: list[str], channels: int, allow_empty: bool) -> None:
        self.fixed_classes, self.root_path = classes, root
        self.left_out: list[tuple[str, str]] = []
        super().__init__(str(root), loader=partial(load_image_file, channels=channels),
                         is_valid_file=self._accepts, allow_empty=allow_empty)
        refuse_folders_read_twice(root, {os.path.dirname(path) for path, _ in self.samples})

    def _accepts(self, path: str) -> bool:
        reason = left_out_reason(path, self.root_path)
        if reason is not None:
            self.left_out.append((path, reason))
        return reason is None

    def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
        return self.fixed_classes, {name: i for i, name in enumerate(self.fixed_classes)}

    def name(self, index: int) -> str:
        return self.samples[index][0]


class HubImageDataset(Dataset):
    """One split of a HF `datasets.Dataset` with an image column and an integer label column.

    Samples are (uint8 image (channels, H, W), label).
    """

    def __init__(self, split, image_column: str, label_column: str, channels: int) -> None:
        for column in (image_column, label_column):
            if column not in split.column_names:
                raise ValueError(
                    f"hub split has no column {column!r}; columns: {split.column_names} "
                    "(set image_column / label_column)"
                )
        self.split, self.image_column, self.label_column = split, image_column, label_column
        self.channels = channels

    def __len__(self) -> int:
        return len(self.split)

    def name(self, index: int) -> str:
        return f"hub row {index}"

    @property
    def targets(self) -> list[int]:
        """Every sample's label (the label column alone is read), as torchvision's ImageFolder names them."""
        return list(self.split[self.label_column])

    def __getitem__(self, index: int) -> tuple[tv_tensors.Image, int]:
        row = self.split[index]
        return load_pil(row[self.image_column], self.channels), int(row[self.label_column])


def check_image_file(path: str | Path) -> Path:
    """`path`, after checking that it is an image file: an accepted extension (`IMAGE_EXTENSIONS`) and a
    header PIL identifies (nothing is decoded). Raises FileNotFoundError or ValueError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(missing("image file", path))
    if not has_image_extension(path):
        raise ValueError(f"{path} is not an image file: its extension is not one of {', '.join(IMAGE_EXTENSIONS)}")
    reason = unreadable_header(path)
    if reason is not None:
        raise ValueError(f"{path} is not a readable image: {reason}")
    return path


@dataclass
class ImageFileScan:
    """The files of a predict path: `paths` to predict, each of which gets a row, and as (path, reason) the
    `unreadable` among them (a header PIL does not identify: their rows hold the error) and those `left_out`
    (hidden, or an extension not one of `IMAGE_EXTENSIONS`)."""

    paths: list[Path]
    unreadable: list[tuple[str, str]]
    left_out: list[tuple[str, str]]


def scan_image_files(path: str | Path) -> ImageFileScan:
    """A single image file, or every image under a folder (recursive, sorted), for prediction.

    Each file's header is read (no decoding): in a folder, hidden files and files of other extensions are left out
    and listed, unreadable image files are kept in `paths` (their load fails again and their rows hold the error, as
    an unreadable audio input's do) and listed; a single file must be a readable image. Raises FileNotFoundError for
    a missing path and ValueError for a single file that is not a readable image or a folder without one.
    """
    path = Path(path)
    if path.is_file():
        return ImageFileScan([check_image_file(path)], [], [])
    if not path.is_dir():
        raise FileNotFoundError(missing("data.predict_path", path))
    files = sorted(p for p in path.rglob("*") if p.is_file())
    reasons = {p: left_out_reason(p, path) for p in files}
    scan = ImageFileScan([], [], [(str(p), reason) for p, reason in reasons.items() if reason])
    for candidate in (p for p, reason in reasons.items() if reason is None):
        scan.paths.append(candidate)
        reason = unreadable_header(candidate)
        if reason is not None:
            scan.unreadable.append((str(candidate), reason))
    if len(scan.unreadable) == len(scan.paths):
        left_out = scan.unreadable + scan.left_out
        raise ValueError(f"no readable image ({', '.join(IMAGE_EXTENSIONS)}) under predict_path {path}"
                         + (f"; left out {describe_files(left_out)}" if left_out else ""))
    return scan


class ImageFiles(Dataset):
    """Image files (listed by `scan_image_files` or checked by `check_image_file`), for prediction.
    Samples are (uint8 image (channels, H, W), path); a file that cannot be read raises one of `UNREADABLE`."""

    def __init__(self, paths: list[Path], channels: int) -> None:
        self.paths, self.channels = paths, channels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[tv_tensors.Image, str]:
        return load_image_file(str(self.paths[index]), self.channels), str(self.paths[index])

    def name(self, index: int) -> str:
        return str(self.paths[index])


def unreadable_header(path: Path) -> str | None:
    """Why ``path`` is not an image file PIL can identify (from its header; nothing is decoded), or None."""
    try:
        with PILImage.open(path):
            return None
    except UNREADABLE as err:
        return describe_error(err)


def describe_error(err: BaseException) -> str:
    """``Type: message`` of an error, cut to one short line."""
    text = f"{type(err).__name__}: {err}".splitlines()[0]
    return text if len(text) <= 120 else text[:117] + "..."


def describe_files(entries: list[tuple[str, str]], shown: int = 5) -> str:
    """``N file(s): path (reason), ...`` naming the first ``shown``."""
    named = ", ".join(f"{name} ({reason})" for name, reason in entries[:shown])
    more = f", and {len(entries) - shown} more" if len(entries) > shown else ""
    return f"{len(entries)} file(s): {named}{more}"


@dataclass
class ImageSource:
    """One source, already converted to `channels`: its class names, and a reader per official split.

    `readers` maps "train", and "val" / "test" where the source has them, to a function that reads that
    split (`read`); without "val" the data module carves validation from train. `pool`: "train" is the
    source's one labelled pool (class folders without split folders), from which the data module carves
    validation and test too. `train_statistics`: the source is normalised with its training images' pixel
    statistics (idx files) rather than ImageNet's.
    """

    description: str
    channels: int
    class_names: list[str]
    readers: dict[str, Callable[[], Dataset]]
    train_statistics: bool = False
    pool: bool = False

    def read(self, split: str) -> Dataset:
        """The images of official split `split` ("train", "val" or "test")."""
        return self.readers[split]()


def open_source(
    root: str | None,
    hub_id: str | None,
    in_chans: int | None,
    image_column: str = "image",
    label_column: str = "label",
) -> ImageSource:
    """Open exactly one of `root` (idx folder, ImageFolder tree or class folders) or `hub_id` (HF datasets).

    `in_chans` None keeps the source's own channels: 1 for idx files and grayscale hub datasets,
    3 otherwise.
    """
    if (root is None) == (hub_id is None):
        raise ValueError("give exactly one of root (a local folder) or hub_id (a HF dataset id)")
    if hub_id is not None:
        return open_hub(load_hub(hub_id), image_column, label_column, in_chans, f"hub dataset {hub_id}")
    if not Path(root).is_dir():
        raise FileNotFoundError(missing("data.root", root, "is not a folder"))
    if find_idx_files(root):
        return open_idx(root, in_chans or 1)
    return open_folder(root, in_chans or 3)


def load_hub(hub_id: str):
    """`datasets.load_dataset(hub_id)` (a `DatasetDict`); clear error when `datasets` is missing."""
    try:
        import datasets
    except ImportError as err:
        raise ImportError(
            f"hub_id={hub_id!r} needs the HF `datasets` package: pip install 'infomamba[hub]' "
            "(or point root at local data)"
        ) from err
    return datasets.load_dataset(hub_id)


def _idx_labels(images_path: Path, labels_path: Path) -> np.ndarray:
    """The labels of an idx pair, checked against the images file's header (which alone is read)."""
    labels = read_idx(labels_path)
    if labels.ndim != 1:
        raise ValueError(f"{labels_path}: expected labels (N,), got shape {labels.shape}")
    dtype, shape = read_idx_header(images_path)
    if len(shape) != 3 or dtype != np.uint8:
        raise ValueError(f"{images_path}: expected uint8 images of shape (N, H, W), got {dtype.name} {shape}")
    if shape[0] != len(labels):
        raise ValueError(f"{images_path} holds {shape[0]} images but {labels_path} holds {len(labels)} labels")
    return labels.astype(np.int64)


def is_fashion_mnist(root: str | Path) -> bool:
    """Whether idx folder `root` is Fashion-MNIST, told by its name (the files are MNIST's in format and size):
    "fashion-mnist" in any case, with "-", "_" or nothing between the words ("FashionMNIST", "fashion_mnist"),
    or a folder "raw" inside such a folder (torchvision's FashionMNIST/raw). Symbolic links are not followed,
    so a link named so counts."""
    folder = Path(os.path.abspath(root))
    if folder.name == "raw":
        folder = folder.parent
    return re.fullmatch(r"fashion[-_]?mnist", folder.name, re.IGNORECASE) is not None


def idx_class_names(root: str | Path, count: int) -> list[str]:
    """Names of the `count` classes (label i is the i-th name) of the idx files in `root`.

    `root/classes.txt` (one name per line, blank lines skipped) when present; else Fashion-MNIST's names when
    `root` is Fashion-MNIST (`is_fashion_mnist`) and its labels lie in 0-9; else the digits "0", "1", ...
    Raises ValueError naming classes.txt when it is not UTF-8, repeats a name or does not hold `count` names.
    """
    path = Path(root) / CLASSES_FILE
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"{path} is not UTF-8 text: {err}") from err
        names = [line.strip() for line in text.splitlines() if line.strip()]
        if len(names) != count:
            raise ValueError(f"{path} has {len(names)} class names (one per line) but the idx labels under {root} "
                             f"number {count} classes (0-{count - 1})")
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"{path} names {repeated} more than once; class names must differ")
        return names
    if count <= len(FASHION_MNIST_CLASSES) and is_fashion_mnist(root):
        return list(FASHION_MNIST_CLASSES[:count])
    return [str(i) for i in range(count)]


def open_idx(root: str | Path, channels: int) -> ImageSource:
    """idx source: train-* is train, t10k-* the official test split; no validation split. The label
    files and the images files' headers are read here, each images file when its split is read; class names
    as `idx_class_names` gives them."""
    files = find_idx_files(root)
    if "train" not in files:
        raise ValueError(f"{root} has t10k idx files but no train-images/train-labels")
    labels = {split: _idx_labels(*pair) for split, pair in files.items()}
    if len(labels["train"]) == 0:
        raise ValueError(f"{files['train'][0]} holds no images")
    every = np.concatenate(list(labels.values()))
    if every.min() < 0:
        raise ValueError(f"idx labels under {root} must be >= 0, found {every.min()}")
    class_names = idx_class_names(root, int(every.max()) + 1)
    readers = {split: partial(IdxDataset, files[split][0], labels[split], channels) for split in files}
    return ImageSource(f"idx files {root}", channels, class_names, readers, train_statistics=True)


def open_folder(root: str | Path, channels: int) -> ImageSource:
    """ImageFolder tree root/train/<class>/*, plus root/val (or root/validation, as the hub names it) and/or
    root/test; or class folders root/<class>/* without those split folders (`open_class_folders`).

    The official test split is root/test if present, else root/val (ImageNet ships train + val);
    root/val is the validation split only when root/test also exists. Only the folder names are read
    here (a class folder of val/ or test/ unknown to train/ is an error); each split's files are listed
    when it is read.
    """
    root = Path(root)
    if not (root / "train").is_dir():
        return open_class_folders(root, channels)
    classes = sorted(p.name for p in (root / "train").iterdir() if _is_class_dir(p))
    if not classes:
        raise ValueError(f"{root / 'train'} has no class folders")
    named_val = [root / name for name in ("val", "validation") if (root / name).is_dir()]
    if len(named_val) > 1:
        raise ValueError(f"{root} has both val/ and validation/: keep the one that is the validation split")
    folders = {"train": root / "train"}
    if (root / "test").is_dir():
        folders["test"] = root / "test"
        if named_val:
            folders["val"] = named_val[0]
    elif named_val:
        folders["test"] = named_val[0]
    for folder in folders.values():
        unknown = sorted({p.name for p in folder.iterdir() if _is_class_dir(p)} - set(classes))
        if unknown:
            raise ValueError(f"{folder} has class folders absent from the training split: {unknown}")
    readers = {split: partial(FixedClassImageFolder, folder, classes, channels, split != "train")
               for split, folder in folders.items()}
    return ImageSource(f"ImageFolder tree {root}", channels, classes, readers)


def open_class_folders(root: Path, channels: int) -> ImageSource:
    """Class folders root/<class>/* (torchvision ImageFolder's own layout) as one labelled pool, from which the
    data module carves validation and test. Classes are the sorted names of root's folders; each is walked to
    its first image file (`holds_image`), so that a folder of other folders is not taken for a pool.

    Raises the one-line "not a recognised root" error when root has a split folder (val/, validation/, test/)
    but no train/, or no folder holding an image; ValueError naming the class folders that hold none, or the
    only one (a single class is most often the folder above the class folders).
    """
    classes = sorted(p.name for p in root.iterdir() if _is_class_dir(p))
    split_named = any((root / name).is_dir() for name in SPLIT_FOLDERS)
    holding = [] if split_named else [name for name in classes if holds_image(root / name)]
    if not holding:
        raise ValueError(
            f"{root} is neither an ImageFolder tree (root/train/<class>/*.png|jpg, plus val/ or test/), class "
            "folders (root/<class>/*.png|jpg, no split folders) nor a folder of idx files "
            "(train-images-idx3-ubyte[.gz], ...)"
        )
    if len(holding) < len(classes):
        empty = sorted(set(classes) - set(holding))
        raise ValueError(f"class folders {empty} of {root} hold no image file ({', '.join(IMAGE_EXTENSIONS)}): "
                         "add images or move them out of root")
    if len(classes) == 1:
        raise ValueError(f"{root} has one class folder, {classes[0]}/: class folders need two or more classes "
                         "(is root the folder above them?)")
    reader = partial(FixedClassImageFolder, root, classes, channels, False)
    return ImageSource(f"class folders {root}", channels, classes, {"train": reader}, pool=True)


def _has_labels(split, label_column: str) -> bool:
    """False for hub splits published without labels (-1, e.g. imagenet-1k's test split)."""
    return label_column in split.column_names and min(split.unique(label_column)) >= 0


def open_hub(
    splits, image_column: str, label_column: str, in_chans: int | None, description: str
) -> ImageSource:
    """HF `DatasetDict` source, with the folder rule: test = the labelled "test" split if any, else
    "validation"; "validation" is the validation split only when such a test split exists."""
    if "train" not in splits:
        raise ValueError(f"hub dataset has no 'train' split; splits: {list(splits)}")
    train = splits["train"]
    for column in (image_column, label_column):
        if column not in train.column_names:
            raise ValueError(
                f"hub split has no column {column!r}; columns: {train.column_names} "
                "(set image_column / label_column)"
            )
    channels = in_chans or (1 if train[0][image_column].mode in GRAY_PIL_MODES else 3)
    names = {"train": "train"}
    if "test" in splits and _has_labels(splits["test"], label_column):
        names["test"] = "test"
        if "validation" in splits:
            names["val"] = "validation"
    elif "validation" in splits:
        names["test"] = "validation"
    readers = {split: partial(HubImageDataset, splits[name], image_column, label_column, channels)
               for split, name in names.items()}
    feature = train.features.get(label_column)
    if hasattr(feature, "names"):
        class_names = list(feature.names)
    else:
        class_names = [str(i) for i in range(max(train.unique(label_column)) + 1)]
    return ImageSource(description, channels, class_names, readers)
