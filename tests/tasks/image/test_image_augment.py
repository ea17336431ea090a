"""RandAugment and random erasing in the image pipeline: RandAugment runs after the standard crop and
flip on uint8 images of 1 and 3 channels; erasing replaces one rectangle of a chosen training image with
standard-normal noise after normalisation; validation, test and predict batches are untouched by both."""

import re
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from infomamba.tasks.image.augment import random_erase
from infomamba.tasks.image.datamodule import ImageDataModule, train_transform


def write_fashion_like(root):
    """Fashion-MNIST-shaped idx files (28x28, one channel; 40 train, 12 test) and 3 PNGs to predict."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", 40), ("t10k", 12)):
        for kind, array in (("images-idx3", rng.integers(0, 256, (n, 28, 28))), ("labels-idx1", np.arange(n) % 4)):
            header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            (root / f"{prefix}-{kind}-ubyte").write_bytes(header + array.astype(np.uint8).tobytes())
    (root / "predict").mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(root / "predict" / f"{i}.png")
    return root


def module(root, **kw) -> ImageDataModule:
    kw = {"image_size": 28, "batch_size": 8, "num_workers": 0, "predict_path": str(root / "predict"), **kw}
    dm = ImageDataModule(root=str(root), **kw)
    dm.setup("fit")
    return dm


def batches(loader):
    return [(batch["images"], batch.get("labels", batch.get("paths"))) for batch in loader]


# ---- RandAugment --------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_randaugment_follows_the_standard_crop_and_flip(channels):
    image = torch.randint(0, 256, (channels, 28, 28), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(0))

    def augmented(augment, ops, seed):
        torch.manual_seed(seed)
        return train_transform(20, augment, (0.35, 1.0), 0.5, ops, 9)(image)

    seeds = range(64)  # 4 ops each: every one of RandAugment's 14 ops is drawn, on 1 and 3 channels
    standard = [augmented("standard", 2, seed) for seed in seeds]
    randaug = [augmented("randaugment", 4, seed) for seed in seeds]
    no_ops = [augmented("randaugment", 0, seed) for seed in seeds]
    assert all(out.shape == (channels, 20, 20) and out.dtype == torch.uint8 for out in randaug)
    assert all(torch.equal(a, b) for a, b in zip(no_ops, standard))  # the same crop and flip first
    assert sum(not torch.equal(a, b) for a, b in zip(randaug, standard)) > len(seeds) // 2


def test_datamodule_builds_randaugment_from_its_options(tmp_path):
    dm = module(write_fashion_like(tmp_path), augment="randaugment", randaugment_ops=3, randaugment_magnitude=5)
    steps = dm.train_set.transform.transforms
    assert [type(step).__name__ for step in steps] == ["RandomResizedCrop", "RandomHorizontalFlip", "RandAugment"]
    assert (steps[-1].num_ops, steps[-1].magnitude) == (3, 5)
    images = next(iter(dm.train_dataloader()))["images"]
    assert images.shape == (8, 1, 28, 28) and images.dtype == torch.float32


# ---- random erasing -----------------------------------------------------------------------------


def test_erasing_replaces_one_rectangle_per_image_with_standard_normal_noise():
    images = 10 + torch.rand(256, 3, 24, 32)  # far above any noise value, so every change shows
    before = images.clone()
    erased = random_erase(images, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(images, before)  # a copy, the input untouched
    changed = erased != images
    assert torch.equal(changed, changed[:, :1].expand_as(changed))  # one rectangle through all channels
    shapes = []
    for mask in changed[:, 0]:
        rows, cols = mask.any(1).nonzero().squeeze(1), mask.any(0).nonzero().squeeze(1)
        h, w = len(rows), len(cols)
        assert h and w and rows[-1] - rows[0] == h - 1 and cols[-1] - cols[0] == w - 1
        assert mask.sum() == h * w  # the full box of the changed rows and columns, nothing else
        assert 0.01 <= h * w / mask.numel() <= 0.4  # ERASE_AREA (0.02, 1/3), up to rounding of h and w
        shapes.append((h, w))
    assert any(h > 2 * w for h, w in shapes) and any(w > 2 * h for h, w in shapes)
    assert torch.equal(erased[~changed], images[~changed])
    noise = erased[changed]
    assert abs(noise.mean()) < 0.02 and abs(noise.std() - 1) < 0.02
    assert not torch.equal(erased[:, 0][changed[:, 0]], erased[:, 1][changed[:, 1]])  # per-channel noise


def test_erasing_probability_and_generator():
    images = torch.rand(400, 1, 16, 16)
    assert torch.equal(random_erase(images, 0.0, torch.Generator().manual_seed(0)), images)
    half = random_erase(images, 0.5, torch.Generator().manual_seed(0))
    share = (half != images).flatten(1).any(1).float().mean()
    assert 0.4 < share < 0.6  # per image, not once per batch
    assert torch.equal(half, random_erase(images, 0.5, torch.Generator().manual_seed(0)))
    assert not torch.equal(half, random_erase(images, 0.5, torch.Generator().manual_seed(1)))


# ---- the datamodule -----------------------------------------------------------------------------


def test_only_training_batches_are_augmented_and_erased(tmp_path):
    root = write_fashion_like(tmp_path)
    plain = module(root)
    augmented = module(root, augment="randaugment", random_erasing=1.0)
    for split in ("val", "test", "predict"):
        expected, got = (batches(getattr(dm, f"{split}_dataloader")()) for dm in (plain, augmented))
        assert len(expected) == len(got)
        for (images, targets), (images_aug, targets_aug) in zip(expected, got):
            assert torch.equal(images, images_aug) and (targets == targets_aug if split == "predict"
                                                        else torch.equal(targets, targets_aug))
    torch.manual_seed(0)
    erased = next(iter(module(root, augment="none", random_erasing=1.0).train_dataloader()))
    clean = next(iter(module(root, augment="none").train_dataloader()))
    assert torch.equal(erased["labels"], clean["labels"])
    share = (erased["images"] != clean["images"]).flatten(1).float().mean(1)
    assert ((share > 0) & (share < 0.5)).all()  # every image erased in part


@pytest.mark.parametrize(("option", "value"), [
    ("augment", "trivialaugment"),
    ("randaugment_ops", -1),
    ("randaugment_magnitude", 31),
    ("randaugment_magnitude", -1),
    ("random_erasing", 1.5),
    ("random_erasing", -0.1),
])
def test_bad_augmentation_options_raise_naming_the_option(tmp_path, option, value):
    with pytest.raises(ValueError, match=rf"^data: {option} must be .*, got '?{re.escape(str(value))}'?$"):
        ImageDataModule(root=str(tmp_path), **{option: value})
