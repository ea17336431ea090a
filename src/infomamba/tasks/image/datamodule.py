"""ImageDataModule: image classification batches from idx files, ImageFolder trees, class folders or the HF hub.

Batches are dicts: `images` (B, C, H, W) float32, normalised, and `labels` (B,) int64, or (B, K)
float32 soft labels on training batches when MixUp / CutMix is on (rows sum to 1). Predict batches
carry `images` and `paths` (list of str). Per-sample transforms are torchvision.transforms.v2 on
uint8 tensors (geometry, and RandAugment's photometric ops under "randaugment"); scaling,
normalisation, random erasing and MixUp/CutMix run once per batch in the collate.

Unreadable images (empty, corrupt or truncated files) are found when a sample is loaded, not by a scan
at setup (which would read the header of every file of a large set on every run and still miss
truncated data): the sample is replaced by the next readable one of its split, with that sample's own
label, so no label is ever paired with another file's image, every batch keeps its shape and every DDP
rank its number of batches. The batch carries the unreadable file's name to `on_before_batch_transfer`,
which counts it (each file once) and warns at the first one; the total, naming a few, is reported when
the stage ends (`teardown`). An evaluation metric then counts the replacement twice; the report says how
often. Predict inputs are checked by their headers when the data module is built instead
(`scan_image_files`), so that a missing predict_path, or one without a readable image, is an error before anything
runs. An unreadable predict input, whether its header fails that check or its data fails to decode later (a
truncated file), is not replaced but gets a row of its own with `"label": null` and its `"error"`, as an unreadable
audio input does, so every input has its row and every row belongs to its file. Files whose extension is not an
image's (`IMAGE_EXTENSIONS`, GIF included) are left out of ImageFolder splits and predict folders, counted and
named once per split.

Each stage reads only its splits: ``fit`` train and validation, ``validate`` validation (a carved one reads
train), ``test`` the test split (a carved one reads its pool), ``predict`` only ``predict_path``. The
normalisation and the channel count travel in the checkpoint (`state_dict`, which Lightning stores under
this class's name); a run given a checkpoint takes them from it (`load_state_dict`), so ``test`` and
``predict`` read no training images for the statistics, and a predict data module opens no source unless
asked for its class names (``root`` and ``hub_id`` may then be None, or ``root`` gone). The class names,
image size and channels also travel as the model's hyperparameters; `ImageClassifier.predict_images`
predicts from the checkpoint alone.

Evaluation samples (validation, test) are visited in an order shuffled once with ``seed``: an
ImageFolder lists its files class by class, so partial evaluation (``limit_test_batches``) would
otherwise see one class only. Every sample is still seen exactly once over all ranks.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal, NamedTuple

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only
from torch.utils.data import DataLoader, Dataset

from ...layers.checks import require_within
from ..base import RunRefused
from ..optional_deps import require_torchvision
from ..sampling import (LengthBucketBatchSampler, ResumableDataLoader, SeedsEachBatch, every_rank_evaluates,
                        limit_leaves_every_rank_a_batch)
from .augment import random_erase
from .datasets import (
    IMAGE_EXTENSIONS,
    UNREADABLE,
    ImageFiles,
    ImageSource,
    describe_error,
    describe_files,
    load_hub,
    open_source,
    scan_image_files,
)

require_torchvision()
from torchvision.transforms import v2  # noqa: E402

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# A single channel from an RGB source: the channel-averaged ImageNet statistics.
GRAY_MEAN, GRAY_STD = (0.449,), (0.226,)
# Eval resize: shorter side to image_size / EVAL_CROP_PCT, then a centre crop (images >= 64 px).
EVAL_CROP_PCT = 0.875
SMALL_IMAGE = 64
# v2.RandAugment's magnitude indexes 31 bins.
MAX_RANDAUGMENT_MAGNITUDE = 30
# The splits each stage reads.
STAGE_SPLITS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ()}


def eval_transform(image_size: int) -> v2.Compose:
    """Resize the shorter side (to image_size / 0.875 when image_size >= 64, else to image_size) and
    centre-crop to image_size; uint8 in, uint8 out (the collate scales and normalises)."""
    resize = math.floor(image_size / EVAL_CROP_PCT) if image_size >= SMALL_IMAGE else image_size
    return v2.Compose([v2.Resize(resize, antialias=True), v2.CenterCrop(image_size)])


def train_transform(
    image_size: int,
    augment: str,
    crop_scale: tuple[float, float],
    hflip: float,
    randaugment_ops: int,
    randaugment_magnitude: int,
) -> v2.Compose:
    """"standard": RandomResizedCrop(scale=crop_scale) + horizontal flip with probability hflip;
    "randaugment": the same, then RandAugment(randaugment_ops, randaugment_magnitude) with bilinear
    interpolation (as the crop and torchvision's reference recipes); "none": the deterministic eval
    transform. uint8 (C, H, W) in, uint8 out, for 1 or 3 channels."""
    if augment == "none":
        return eval_transform(image_size)
    steps = [v2.RandomResizedCrop(image_size, scale=tuple(crop_scale), antialias=True)]
    if hflip > 0:
        steps.append(v2.RandomHorizontalFlip(hflip))
    if augment == "randaugment":
        steps.append(v2.RandAugment(randaugment_ops, randaugment_magnitude,
                                    interpolation=v2.InterpolationMode.BILINEAR))
    return v2.Compose(steps)


def stratified_take(
    indices: np.ndarray, labels: np.ndarray, count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(rest, taken): `count` (1 to all) of `indices`, taken evenly across their classes `labels[indices]`:
    shuffled with `rng`, grouped by class, then every (len / count)-th, so each class gives its share of
    `count` to within one sample, chosen at random within the class. Both sorted."""
    order = indices[rng.permutation(len(indices))]
    order = order[np.argsort(labels[order], kind="stable")]
    taken = np.zeros(len(order), dtype=bool)
    taken[((np.arange(count) + 0.5) * len(order) / count).astype(int)] = True
    return np.sort(order[~taken]), np.sort(order[taken])


def carve_pool(labels: np.ndarray, test_fraction: float, val_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Disjoint "train", "val" and "test" indices of a labelled pool of 3 or more samples, drawn with `seed`
    (`stratified_take`): test is `test_fraction` of the pool, validation `val_fraction` of the rest, each
    rounded to at least one sample, and small enough that train keeps at least one."""
    n = len(labels)
    rng = np.random.default_rng(seed)
    rest, test = stratified_take(np.arange(n), labels, min(max(1, round(n * test_fraction)), n - 2), rng)
    train, val = stratified_take(rest, labels, min(max(1, round(len(rest) * val_fraction)), len(rest) - 1), rng)
    return {"train": train, "val": val, "test": test}


class UnreadableSplit(NamedTuple):
    """The target of a sample drawn from a split in which no file can be read: the split's name and its files,
    (name, reason) each. The batch carries it to `on_before_batch_transfer`, which refuses the run in one line
    (raised in a loader worker, the error would reach the command as a worker's traceback)."""
    split: str
    files: list


class TransformedSubset(SeedsEachBatch, Dataset):
    """`indices` of a reader's (image, target) samples of split `split`, with `transform` applied to the image.

    Samples are (image, target, unreadable): a sample whose file cannot be read is replaced by the next
    readable one in `indices` (wrapping), and `unreadable` lists the skipped files as (name, reason); where none
    can be read, the sample is (None, `UnreadableSplit`, []). With `replace` False (predict: every input gets its
    own row) it is (None, its file's name, [(name, reason)]).
    """

    def __init__(self, base: Dataset, indices: np.ndarray | None, transform: v2.Compose,
                 replace: bool = True, split: str = "predict") -> None:
        self.base, self.transform, self.replace, self.split = base, transform, replace, split
        self.indices = np.arange(len(base)) if indices is None else np.asarray(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        unreadable = []
        for step in range(len(self.indices)):
            i = int(self.indices[(index + step) % len(self.indices)])
            try:
                image, target = self.base[i]
            except UNREADABLE as err:
                unreadable.append((self.base.name(i), describe_error(err)))
                if not self.replace:
                    return None, self.base.name(i), unreadable
                continue
            return self.transform(image), target, unreadable
        return None, UnreadableSplit(self.split, unreadable), []


class ImageCollate:
    """Stack (uint8 image, target, unreadable) samples into {"images": (B, C, H, W) float32, target_key:
    ...}, plus "unreadable" (the replaced files, as (name, reason)) when a sample replaced any. Samples without
    an image (a predict file that failed to load) are left out and listed under "failed" as (position in the
    batch, name, reason); a batch of only those has no "images".

    Images are scaled to [0, 1] and normalised with `mean`/`std` once per batch (cheaper than per
    sample, and workers ship uint8). Labels are stacked to (B,) int64; paths stay a list. With
    random_erasing > 0 each normalised image is then erased with that probability (`random_erase`;
    before MixUp/CutMix, as in timm). With mixup_alpha or cutmix_alpha > 0 the batch then goes through
    torchvision v2 MixUp / CutMix (one of the two, chosen per batch, when both are on) and labels
    become soft (B, num_classes) float32 rows summing to 1.
    """

    def __init__(
        self,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        target_key: str = "labels",
        num_classes: int = 0,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        random_erasing: float = 0.0,
    ) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1) * 255.0
        self.inv_std = 1.0 / (torch.tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1) * 255.0)
        self.target_key = target_key
        self.random_erasing = random_erasing
        mixers = []
        if cutmix_alpha > 0:
            mixers.append(v2.CutMix(alpha=cutmix_alpha, num_classes=num_classes))
        if mixup_alpha > 0:
            mixers.append(v2.MixUp(alpha=mixup_alpha, num_classes=num_classes))
        self.mix = v2.RandomChoice(mixers) if len(mixers) == 2 else (mixers or [None])[0]

    def __call__(self, samples: list[tuple[torch.Tensor | None, object, list]]) -> dict[str, object]:
        for _, target, _ in samples:
            if isinstance(target, UnreadableSplit):
                return {"unreadable_split": target}
        failed = [(i, entries[-1][0], entries[-1][1]) for i, (image, _, entries) in enumerate(samples)
                  if image is None]
        samples = [sample for sample in samples if sample[0] is not None]
        if not samples:
            return {"failed": failed}
        batch = self.stack(samples)
        if failed:
            batch["failed"] = failed
        return batch

    def stack(self, samples: list[tuple[torch.Tensor, object, list]]) -> dict[str, object]:
        images = torch.stack([image.as_subclass(torch.Tensor) for image, _, _ in samples])
        images = (images.float() - self.mean) * self.inv_std
        if self.random_erasing > 0:
            images = random_erase(images, self.random_erasing)
        targets = [target for _, target, _ in samples]
        if self.target_key == "labels":
            targets = torch.tensor(targets, dtype=torch.int64)
            if self.mix is not None:
                images, targets = self.mix(images, targets)
        batch: dict[str, object] = {"images": images, self.target_key: targets}
        unreadable = [entry for _, _, entries in samples for entry in entries]
        if unreadable:
            batch["unreadable"] = unreadable
        return batch


class ImageDataModule(L.LightningDataModule):
    """Image classification data: local idx files, ImageFolder trees or class folders, or a HF hub dataset.

    Unreadable images are replaced at load time and reported (see the module docstring); `unreadable`
    maps each such file met so far to the reason.

    Sources (at most one of `root` / `hub_id`):
        - idx folder: `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]` and the
          `t10k-*` pair (MNIST, Fashion-MNIST, KMNIST...). Test = t10k; validation is carved. Class names:
          `classes.txt` beside them (one per line), else Fashion-MNIST's for a folder named fashion-mnist
          (see `datasets.is_fashion_mnist`), else the digits.
        - ImageFolder tree: `root/train/<class>/*.jpg|png|...` plus `root/test/` and/or `root/val/` (or
          `root/validation/`).
          Test = `test/` if present, else `val/` (ImageNet layout); `val/` is the validation split
          only when `test/` also exists, otherwise validation is carved from train.
        - class folders: `root/<class>/*.jpg|png|...` with no train/, val/, validation/ or test/ folder
          (torchvision ImageFolder's layout): one pool, from which test and validation are carved.
        - hub: `datasets.load_dataset(hub_id)` (needs `datasets` and network or a warm cache).
          Same rule with the split names "test" (used only if labelled; imagenet-1k's is not) and
          "validation".
        - neither: predict only, in a run given a checkpoint of this data module's fit (it supplies the
          normalisation and channels; see the module docstring).
        A carved validation split is `val_fraction` of train, drawn with `seed` evenly across the classes
        (`stratified_take`), disjoint from the training indices. From a pool of class folders, test is
        `test_fraction` of it and validation `val_fraction` of the rest, each at least one image, drawn the same
        way (`carve_pool`); every DDP rank lists the same files, so it carves the same splits.

    Batches: `{"images": (B, C, H, W) float32, "labels": (B,) int64}`; training batches with
    MixUp/CutMix carry soft `labels` (B, num_classes) float32 instead (rows sum to 1; the loss must
    accept probabilities). Predict batches: `{"images", "paths"}`.

    `num_classes` and `class_names` open the source on first access (so a CLI can link them to the
    model before `setup`), as `in_chans` does unless it was given or restored from a checkpoint; `mean`
    and `std` are resolved on first use (see `mean`).

    Args:
        root: local data folder (idx files, an ImageFolder tree or class folders), or None with `hub_id`.
        hub_id: HF datasets id, e.g. "food101" or "imagenet-1k"; None with `root`.
        image_size: side of the square images fed to the model (e.g. 224; 28 or 32 for idx digits).
        in_chans: channels fed to the model, 1 or 3; None keeps the checkpoint's in a run given one (where
            another value is an error), else the source's (1 for idx files and grayscale hub datasets, 3
            otherwise). Grayscale is replicated to 3 channels; RGB is reduced to luminance for 1.
        batch_size: samples per batch (per device).
        num_workers: DataLoader worker processes.
        val_fraction: share of train carved out for validation when the source has no validation
            split, in (0, 1); ignored otherwise.
        test_fraction: share of a pool of class folders carved out for test, in (0, 1); ignored for
            other sources.
        seed: seed of the carved splits.
        augment: "standard" (RandomResizedCrop + horizontal flip), "randaugment" (the same, then
            RandAugment) or "none" (the eval transform). Evaluation always uses the eval transform.
        crop_scale: RandomResizedCrop area range (min, max), e.g. (0.08, 1.0) for ImageNet,
            narrower (0.35, 1.0) for small images.
        hflip: horizontal-flip probability under "standard" and "randaugment" (0 disables it, e.g.
            for digits).
        randaugment_ops: RandAugment operations applied in turn to each training image (>= 0; 0
            makes "randaugment" equal to "standard").
        randaugment_magnitude: RandAugment strength, 0 to 30 (the usual 9 of rand-m9).
        random_erasing: probability that a training image has one random rectangle replaced by
            standard-normal noise after normalisation (timm's RandomErasing, "pixel" mode); 0
            disables it. Validation, test and predict batches are never erased.
        mixup_alpha: MixUp Beta(alpha, alpha) parameter for training batches; 0 disables.
        cutmix_alpha: CutMix Beta(alpha, alpha) parameter for training batches; 0 disables. With
            both on, each batch uses one of them, chosen at random.
        mean: per-channel normalisation mean (1 or in_chans values); None: the checkpoint's in a run
            given one, else the official training file's pixel mean for idx sources (Fashion-MNIST:
            0.2860), ImageNet's for RGB, 0.449 for other grayscale sources.
        std: per-channel normalisation std, defaults as for `mean` (Fashion-MNIST: 0.3530, ImageNet,
            0.226).
        predict_path: an image file or a folder of images (recursive) for `predict`; checked when the
            data module is built.
        image_column: hub image column name.
        label_column: hub integer label column name.
    """

    def __init__(
        self,
        root: str | None = None,
        hub_id: str | None = None,
        image_size: int = 224,
        in_chans: int | None = None,
        batch_size: int = 64,
        num_workers: int = 4,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        seed: int = 0,
        augment: Literal["standard", "randaugment", "none"] = "standard",
        crop_scale: tuple[float, float] = (0.08, 1.0),
        hflip: float = 0.5,
        randaugment_ops: int = 2,
        randaugment_magnitude: int = 9,
        random_erasing: float = 0.0,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
        predict_path: str | None = None,
        image_column: str = "image",
        label_column: str = "label",
    ) -> None:
        super().__init__()
        if root is not None and hub_id is not None:
            raise ValueError(f"give exactly one of root (a local folder) or hub_id (a HF dataset id), not both: "
                             f"root={root!r}, hub_id={hub_id!r}; to replace the one a config gives, set it to null "
                             "(e.g. --data.root DIR --data.hub_id=null)")
        if in_chans not in (None, 1, 3):
            raise ValueError(f"data: in_chans must be 1, 3 or None (inferred), got {in_chans}")
        require_within("data", 1, image_size=image_size, batch_size=batch_size)
        require_within("data", 0, num_workers=num_workers, randaugment_ops=randaugment_ops, mixup_alpha=mixup_alpha,
                       cutmix_alpha=cutmix_alpha)
        require_within("data", 0, MAX_RANDAUGMENT_MAGNITUDE, include_high=True,
                       randaugment_magnitude=randaugment_magnitude)
        require_within("data", 0, 1, include_high=True, random_erasing=random_erasing, hflip=hflip)
        for name, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0.0 < fraction < 1.0:
                raise ValueError(f"data: {name} must be in (0, 1), got {fraction}")
        if augment not in ("standard", "randaugment", "none"):
            raise ValueError(f"data: augment must be 'standard', 'randaugment' or 'none', got {augment!r}")
        if not 0.0 < crop_scale[0] <= crop_scale[1] <= 1.0:
            raise ValueError(f"data: crop_scale must satisfy 0 < min <= max <= 1, got {crop_scale}")
        if (mean is None) != (std is None):
            raise ValueError("data: give both mean and std, or neither (per-source defaults)")
        if std is not None and any(s <= 0 for s in std):
            raise ValueError(f"data: std must be positive, got {std}")
        # Not logged beside the model's hyperparameters: this `in_chans` may be None (the source's), the
        # model's is the number it got, and Lightning refuses two values under one key. The run's
        # config.yaml keeps these settings.
        self.save_hyperparameters(logger=False)
        self.root, self.hub_id, self.predict_path = root, hub_id, predict_path
        self.batch_size, self.num_workers = batch_size, num_workers
        self.val_fraction, self.test_fraction, self.seed = val_fraction, test_fraction, seed
        self.augment, self.crop_scale, self.hflip = augment, tuple(crop_scale), hflip
        self.randaugment_ops, self.randaugment_magnitude = randaugment_ops, randaugment_magnitude
        self.random_erasing = random_erasing
        self.mixup_alpha, self.cutmix_alpha = mixup_alpha, cutmix_alpha
        self.image_column, self.label_column = image_column, label_column
        self._image_size, self._in_chans = image_size, in_chans
        self._mean, self._std = mean, std
        self._eval_tf = eval_transform(image_size)
        self._train_tf = train_transform(image_size, augment, self.crop_scale, hflip, randaugment_ops,
                                         randaugment_magnitude)
        self._predict_files = None if predict_path is None else scan_image_files(predict_path)
        self._source: ImageSource | None = None
        self._read: dict[str, Dataset] = {}  # official splits read so far
        self._carved_indices: dict[str, np.ndarray] | None = None
        self._checkpoint: dict[str, Any] | None = None  # normalisation, channels, classes of a checkpoint
        self._normalisation: tuple[tuple[float, ...], tuple[float, ...]] | None = None
        self.train_set = self.val_set = self.test_set = None
        self.unreadable: dict[str, str] = {}

    # ---- metadata -------------------------------------------------------------------------------

    @property
    def source(self) -> ImageSource:
        """The opened source (class names, channels, official splits); opened on first access, in data.in_chans
        channels, else a restored checkpoint's, else its own."""
        if self._source is None:
            if self.root is None and self.hub_id is None:
                raise ValueError("this image data module has no source: give data.root (a local folder) or "
                                 "data.hub_id (a HF dataset id); only predict from a checkpoint does without")
            channels = self._in_chans or (self._checkpoint or {}).get("in_chans")
            self._source = open_source(self.root, self.hub_id, channels, self.image_column, self.label_column)
        return self._source

    @property
    def num_classes(self) -> int:
        return len(self.source.class_names)

    @property
    def class_names(self) -> list[str]:
        return list(self.source.class_names)

    @property
    def in_chans(self) -> int:
        """Channels fed to the model: `in_chans` if given, else the restored checkpoint's, else the source's."""
        if self._in_chans is not None:
            return self._in_chans
        if self._checkpoint is not None:
            return self._checkpoint["in_chans"]
        return self.source.channels

    @property
    def image_size(self) -> int:
        return self._image_size

    @property
    def mean(self) -> tuple[float, ...]:
        """Normalisation mean per channel: data.mean if given, else the restored checkpoint's, else the
        source's default (an idx source's training pixels are read for it)."""
        return self._resolve_normalisation()[0]

    @property
    def std(self) -> tuple[float, ...]:
        """Normalisation std per channel, resolved as `mean`."""
        return self._resolve_normalisation()[1]

    # ---- checkpoint -----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of the data for later runs: the normalisation, the channel count and the
        class names (label id order)."""
        mean, std = self._resolve_normalisation()
        return {"mean": list(mean), "std": list(std), "in_chans": self.in_chans,
                "class_names": list(self.source.class_names)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Take the checkpoint's normalisation and channels (the CLI calls this before an evaluation reads
        anything; Lightning in any run given a checkpoint, after `setup` and before the loaders): they are what
        the weights were trained with, and test and predict then read no training images for them. data.mean/std,
        when given, still win; data.in_chans must be the checkpoint's (`_check_channels`). Labelled splits must have
        the checkpoint's classes (`_check_classes`); checkpoints written before the class names were kept are not
        checked. Splits already read in other channels (a source's own, before the checkpoint came) are read
        again, in the checkpoint's."""
        self._checkpoint = {"mean": tuple(state_dict["mean"]), "std": tuple(state_dict["std"]),
                            "in_chans": int(state_dict["in_chans"]), "class_names": state_dict.get("class_names")}
        self._normalisation = None
        if self._source is not None and self._source.channels != self.in_chans:
            self._source, self._read = None, {}
            self.train_set = self.val_set = self.test_set = None
        if self._source is not None:
            self._check_classes()

    def _check_channels(self) -> None:
        """ValueError when data.in_chans is given and is not the restored checkpoint's: its weights take that many
        channels, and every batch would stop the run."""
        trained = self._checkpoint and self._checkpoint["in_chans"]
        if trained and self._in_chans not in (None, trained):
            raise ValueError(f"data.in_chans={self._in_chans}, but the checkpoint's model takes {trained} channel(s): "
                             "leave data.in_chans unset (the images are converted to the model's channels)")

    def _check_classes(self) -> None:
        """A labelled split's label ids must mean the classes they meant in training: ValueError when the
        source's classes are not the restored checkpoint's, in the same order."""
        trained = self._checkpoint and self._checkpoint["class_names"]
        if trained and list(trained) != list(self.source.class_names):
            raise ValueError(f"{self.source.description} has the classes {self.source.class_names}, the checkpoint "
                             f"was trained on {list(trained)}: its label ids would mean other classes; evaluate "
                             "on data of the same classes (same folder names), or fit on this data")

    # ---- setup ----------------------------------------------------------------------------------

    def prepare_data(self) -> None:
        """Download the hub dataset once (rank 0); local sources need nothing."""
        if self.hub_id is not None:
            load_hub(self.hub_id)

    def setup(self, stage: str) -> None:
        """Build the splits `stage` reads (see the module docstring; idempotent). A predict stage needs
        predict_path; a test stage, a source with a test split. Every loader calls it, so that a checkpoint restored
        after it (as Lightning restores one) is checked too (`_check_channels`)."""
        self._check_channels()
        if stage == "predict":
            if self._predict_files is None:
                raise ValueError("predict needs data.predict_path: an image file or a folder of images")
            return
        built = [name for name in STAGE_SPLITS[stage] if getattr(self, f"{name}_set") is None]
        for name in built:
            self._build(name)
        if built:
            self._log_summary(built)

    def on_before_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        """Count the unreadable files a batch replaced (each file once); warn at the first one. A predict input
        that failed to load is named (its row holds the error). A split of which no file can be read refuses the
        run (`UnreadableSplit`)."""
        if "unreadable_split" in batch:
            split, files = batch["unreadable_split"]
            raise RunRefused(f"Image data: no image of the {split} split can be read, {describe_files(files)}; fix "
                             f"or remove them")
        for _, name, reason in batch.get("failed", []):
            log.warning("Image data: predict input %s failed to load (%s); its row holds the error", name, reason)
        for name, reason in batch.pop("unreadable", []):
            if name not in self.unreadable:
                if not self.unreadable:
                    log.warning("Image data: unreadable image %s (%s) is replaced by the next readable image of "
                                "its split; further ones are counted and reported when the stage ends", name, reason)
                self.unreadable[name] = reason
        return batch

    def teardown(self, stage: str) -> None:
        """Report the unreadable files met so far, naming a few."""
        if self.unreadable:
            log.warning("Image data: replaced %s by other images of their split (labels and batch shapes stay "
                        "right; an evaluation metric counts each replacement twice); remove or fix them",
                        describe_files(list(self.unreadable.items())))

    def _split(self, name: str) -> Dataset:
        """Official split `name` of the source, read once; files of it left out for their extension are
        reported then."""
        if name not in self._read:
            dataset = self.source.read(name)
            left_out = getattr(dataset, "left_out", [])
            if left_out:
                rank_zero_only(log.warning)("Image data: %s split: left out %s; image extensions are %s", name,
                                            describe_files(left_out), ", ".join(IMAGE_EXTENSIONS))
            self._read[name] = dataset
        return self._read[name]

    def _build(self, name: str) -> None:
        """Set `<name>_set` ("train", "val" or "test"): the official split, or its part carved from train. An
        official split without an image is a ValueError naming it."""
        source = self.source
        self._check_classes()
        if name == "test" and "test" not in source.readers and not source.pool:
            raise ValueError(f"{source.description} has no test split: an ImageFolder tree needs test/ or val/ "
                             "next to train/, idx files the t10k-images/t10k-labels pair, a hub dataset a "
                             "labelled 'test' or a 'validation' split")
        official = name in source.readers and (name != "train" or "val" in source.readers)
        dataset = self._split(name if official else "train")
        if not len(dataset):
            where = f" (an ImageFolder split reads {dataset.root}/<class>/*)" if hasattr(dataset, "root") else ""
            raise ValueError(f"the {name} split of {source.description} holds no image{where}")
        indices = np.arange(len(dataset)) if official else self._carved()[name]
        if name == "train":
            self.train_set = TransformedSubset(dataset, indices, self._train_tf, split=name)
        else:
            setattr(self, f"{name}_set", TransformedSubset(dataset, self._eval_order(indices), self._eval_tf,
                                                           split=name))

    def _carved(self) -> dict[str, np.ndarray]:
        """Indices of the splits carved from the train split, drawn once: train and validation (`_carve`), and
        test from a pool of class folders (`carve_pool`, logged with its fractions and seed)."""
        if self._carved_indices is None:
            train, source = self._split("train"), self.source
            if not source.pool:
                self._carved_indices = dict(zip(("train", "val"), self._carve(np.asarray(train.targets))))
            elif len(train) < 3:
                raise ValueError(f"{source.description} holds {len(train)} image(s): too few to carve train, "
                                 "validation and test from (need 3)")
            else:
                self._carved_indices = carve_pool(np.asarray(train.targets), self.test_fraction, self.val_fraction,
                                                  self.seed)
                rank_zero_info(
                    f"Image data: {source.description} has no test split; test ({self.test_fraction:.0%}) and "
                    f"validation ({self.val_fraction:.0%} of the rest) are carved from its {len(train)} images, "
                    f"evenly across the classes, with seed {self.seed}."
                )
        return self._carved_indices

    def _eval_order(self, indices: np.ndarray) -> np.ndarray:
        """``indices`` shuffled once with ``seed`` (see the module docstring)."""
        return indices[np.random.default_rng(self.seed).permutation(len(indices))]

    def _log_summary(self, built: list[str]) -> None:
        source = self.source
        carved = " (carved from train)" if "val" not in source.readers and not source.pool else ""
        sizes = [f"{name} {len(getattr(self, f'{name}_set'))}{carved if name == 'val' else ''}" for name in built]
        rank_zero_info(
            f"Image data: {source.description}: {', '.join(sizes)}; {len(source.class_names)} classes "
            f"{source.class_names[:10]}; {source.channels} channel(s) at {self.image_size} px; unreadable "
            "files are counted when met."
        )

    def _carve(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Seeded disjoint (train, val) index split of the training samples of `labels`, validation taken evenly
        across the classes (`stratified_take`), so that a small class is not left out of it by chance."""
        n = len(labels)
        n_val = round(n * self.val_fraction)
        if not 0 < n_val < n:
            raise ValueError(
                f"val_fraction={self.val_fraction} of {n} training samples leaves an empty "
                "train or validation split"
            )
        return stratified_take(np.arange(n), labels, n_val, np.random.default_rng(self.seed))

    def _resolve_normalisation(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, std) per channel, resolved once (see `mean`) and logged with where they come from. An idx
        source's default is its official training file's statistics (the usual convention, e.g.
        Fashion-MNIST 0.2860 / 0.3530); other sources default to ImageNet's."""
        if self._normalisation is not None:
            return self._normalisation
        channels = self.in_chans
        if self._mean is not None:
            mean, std, origin = tuple(self._mean), tuple(self._std), "data.mean and data.std"
        elif self._checkpoint is not None:
            mean, std, origin = self._checkpoint["mean"], self._checkpoint["std"], "the checkpoint"
        elif self.source.train_statistics:
            counts = np.bincount(self._split("train").images.ravel(), minlength=256)  # exact, no float copy
            values = np.arange(256) / 255.0
            n = int(counts.sum())
            mu = float(counts @ values) / n
            mean, std = (mu,), (math.sqrt(float(counts @ (values - mu) ** 2) / n),)
            origin = "the training images"
        else:
            mean, std = (IMAGENET_MEAN, IMAGENET_STD) if channels == 3 else (GRAY_MEAN, GRAY_STD)
            origin = "ImageNet's"
        for name, values in (("mean", mean), ("std", std)):
            if len(values) not in (1, channels):
                raise ValueError(f"data.{name} has {len(values)} values; need 1 or in_chans={channels}")
        if len(mean) == 1:
            mean, std = mean * channels, std * channels
        self._normalisation = mean, std
        rank_zero_info(f"Image data: normalisation mean {tuple(round(m, 4) for m in mean)}, std "
                       f"{tuple(round(s, 4) for s in std)} ({origin})")
        return self._normalisation

    # ---- loaders --------------------------------------------------------------------------------

    def _loader(self, dataset: Dataset, shuffle: bool = False, train: bool = False,
                target_key: str = "labels") -> DataLoader:
        mean, std = self._resolve_normalisation()
        collate = ImageCollate(
            mean,
            std,
            target_key=target_key,
            num_classes=self.num_classes if train else 0,
            mixup_alpha=self.mixup_alpha if train else 0.0,
            cutmix_alpha=self.cutmix_alpha if train else 0.0,
            random_erasing=self.random_erasing if train else 0.0,
        )
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer is not None else (0, 1)
        sampler = LengthBucketBatchSampler([1] * len(dataset), batch_size=self.batch_size, shuffle=shuffle,
                                           seed=self.seed, num_replicas=world, rank=rank)
        return ResumableDataLoader(
            dataset,
            batch_sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=collate,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")
        return self._loader(self.train_set, shuffle=True, train=True)

    def val_dataloader(self) -> DataLoader:
        self.setup("validate")
        return every_rank_evaluates("validation", self._loader(self.val_set), self.trainer, "limit_val_batches")

    def test_dataloader(self) -> DataLoader:
        self.setup("test")
        return every_rank_evaluates("test", self._loader(self.test_set), self.trainer, "limit_test_batches")

    def predict_dataloader(self) -> DataLoader:
        """The predict_path images in `in_chans` channels, with the unreadable ones (each gets a row with its error)
        and the files left out named."""
        self.setup("predict")
        files = self._predict_files
        message = f"Image data: predict {len(files.paths)} images of {self.predict_path}"
        if files.unreadable:
            message += f"; unreadable {describe_files(files.unreadable)}: their rows hold the error"
        if files.left_out:
            message += f"; skipped {describe_files(files.left_out)}; image extensions are "
            message += ", ".join(IMAGE_EXTENSIONS)
        rank_zero_info(message)
        dataset = TransformedSubset(ImageFiles(files.paths, self.in_chans), None, self._eval_tf, replace=False)
        return limit_leaves_every_rank_a_batch("predict", self._loader(dataset, target_key="paths"), self.trainer,
                                               "limit_predict_batches")
