"""ImageDataModule on generated fixtures: ImageFolder trees, idx files (raw, gz, corrupt), a local
HF DatasetDict standing in for the hub, MixUp/CutMix soft labels, predict batches, and the errors for bad
predict and test inputs."""

import gzip
import struct
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image

from infomamba.tasks.image.datamodule import IMAGENET_MEAN, ImageDataModule
from infomamba.tasks.image.datasets import read_idx
from infomamba.tasks.image.frontend import PatchEmbed

CLASSES = ["cat", "dog", "fox"]
PER_CLASS = {"train": 10, "val": 3, "test": 2}


# ---- fixture writers ----------------------------------------------------------------------------


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write a uint8 array as an idx file (gzipped when the name ends in .gz)."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
    return path


def make_idx(root: Path, gz: bool, n_train: int = 40, n_test: int = 12, classes: int = 4) -> Path:
    rng = np.random.default_rng(0)
    ext = ".gz" if gz else ""
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(root / f"{prefix}-images-idx3-ubyte{ext}", rng.integers(0, 256, (n, 28, 28)))
        write_idx(root / f"{prefix}-labels-idx1-ubyte{ext}", np.arange(n) % classes)
    return root


def make_folder(root: Path, splits=("train", "test")) -> Path:
    """PNG ImageFolder tree: 3 classes, mixed sizes; every third image grayscale, one RGBA."""
    rng = np.random.default_rng(1)
    for split in splits:
        for name in CLASSES:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(PER_CLASS[split]):
                h, w = (20, 24) if i % 2 else (30, 18)
                shape = (h, w) if i % 3 == 0 else (h, w, 4 if i == 1 else 3)  # L, RGBA, RGB
                image = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8))
                image.save(folder / f"{name}_{i}.png")
    return root


def module(root, **kw) -> ImageDataModule:
    kw = {"image_size": 16, "batch_size": 4, "num_workers": 0, **kw}
    dm = ImageDataModule(root=str(root), **kw)
    dm.setup("fit")
    return dm


# ---- ImageFolder --------------------------------------------------------------------------------


def test_folder_batches_and_metadata(tmp_path):
    dm = module(make_folder(tmp_path))
    assert (dm.num_classes, dm.class_names, dm.in_chans, dm.image_size) == (3, CLASSES, 3, 16)
    assert dm.mean == IMAGENET_MEAN
    assert len(dm.train_set) + len(dm.val_set) == 30 and len(dm.val_set) == 3
    assert dm.test_set is None  # fit reads train only; the test split is read by the test stage
    dm.setup("test")
    assert len(dm.test_set) == 6
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        batch = next(iter(loader))
        assert batch["images"].shape == (min(4, len(loader.dataset)), 3, 16, 16)
        assert batch["images"].dtype == torch.float32 and type(batch["images"]) is torch.Tensor
        assert batch["labels"].dtype == torch.int64 and batch["labels"].ndim == 1
    test_labels = torch.cat([b["labels"] for b in dm.test_dataloader()])
    assert sorted(test_labels.tolist()) == [0, 0, 1, 1, 2, 2]
    assert test_labels.tolist() == [dm.test_set.base.targets[i] for i in dm.test_set.indices]


def test_eval_resize_rule(tmp_path):
    """image_size >= 64: shorter side to image_size / 0.875 then centre crop; smaller: direct."""
    big = module(make_folder(tmp_path), image_size=64)
    assert [type(t).__name__ for t in big._eval_tf.transforms] == ["Resize", "CenterCrop"]
    assert big._eval_tf.transforms[0].size == [73]  # floor(64 / 0.875)
    small = module(tmp_path, image_size=32)
    assert small._eval_tf.transforms[0].size == [32]
    assert next(iter(big.val_dataloader()))["images"].shape[-2:] == (64, 64)


def test_carved_validation_is_disjoint_and_seeded(tmp_path):
    root = make_folder(tmp_path)
    a, b, c = module(root, seed=0), module(root, seed=0), module(root, seed=1, val_fraction=0.2)
    for dm in (a, c):
        train, val = set(dm.train_set.indices), set(dm.val_set.indices)
        assert not train & val and train | val == set(range(30))
        assert dm.val_set.base is dm.train_set.base  # carved from train, eval transform
    assert np.array_equal(a.val_set.indices, b.val_set.indices)
    assert len(c.val_set) == 6 and not set(c.val_set.indices) <= set(a.val_set.indices)



def test_carved_validation_takes_each_class_its_share(tmp_path):
    """A plain random draw had given a class of a tenth of the training images 0 to 4 of the 10 carved."""
    labels = np.array([0] * 36 + [1] * 4)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((40, 8, 8)))
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    for seed in range(5):
        dm = module(tmp_path, seed=seed, val_fraction=0.25, image_size=8)
        assert np.bincount(labels[dm.val_set.indices]).tolist() == [9, 1]
        assert not set(dm.train_set.indices) & set(dm.val_set.indices)

def test_folder_layout_rules(tmp_path):
    both = module(make_folder(tmp_path / "both", ("train", "val", "test")))
    both.setup("test")
    assert (len(both.train_set), len(both.val_set), len(both.test_set)) == (30, 9, 6)
    only_val = module(make_folder(tmp_path / "imagenet", ("train", "val")))  # val is the test split
    only_val.setup("test")
    assert (len(only_val.train_set), len(only_val.val_set), len(only_val.test_set)) == (27, 3, 9)
    for name, splits in (("hub_named", ("train", "val", "test")), ("hub_named_no_test", ("train", "val"))):
        root = make_folder(tmp_path / name, splits)
        (root / "val").rename(root / "validation")  # the name hub datasets give it
        renamed = module(root)
        renamed.setup("test")
        assert len(renamed.test_set) == (6 if "test" in splits else 9)
        renamed.setup("fit")
        assert len(renamed.val_set) == (9 if "test" in splits else 3)
    (tmp_path / "hub_named" / "val").mkdir()
    with pytest.raises(ValueError, match="both val/ and validation/"):
        module(tmp_path / "hub_named").class_names
    only_train = module(make_folder(tmp_path / "train_only", ("train",)))
    with pytest.raises(ValueError, match=r"^ImageFolder tree .*train_only has no test split: "):
        only_train.setup("test")



def test_an_official_split_without_an_image_is_an_error_naming_its_folder(tmp_path):
    """An empty val/, or a test/ of loose files without class folders, had stopped the run in its first loader
    ("LengthBucketBatchSampler got no samples")."""
    root = make_folder(tmp_path, ("train",))
    (root / "val" / "cat").mkdir(parents=True)
    (root / "test").mkdir()
    Image.new("RGB", (8, 8)).save(root / "test" / "loose.png")
    for stage, split in (("fit", "val"), ("test", "test")):
        with pytest.raises(ValueError, match=rf"^the {split} split of ImageFolder tree .* holds no image \(an "
                                             rf"ImageFolder split reads .*{split}/<class>/\*\)$"):
            ImageDataModule(root=str(root), image_size=16, num_workers=0).setup(stage)

def test_unknown_class_in_test_folder_raises(tmp_path):
    root = make_folder(tmp_path)
    (root / "train" / ".cache").mkdir()  # hidden folders are not classes
    (root / "test" / ".cache").mkdir()
    assert module(root).class_names == CLASSES
    (root / "test" / "owl").mkdir()
    with pytest.raises(ValueError, match=r"absent from the training split: \['owl'\]"):
        module(root)


def test_grayscale_and_rgba_become_model_channels(tmp_path):
    dm = module(make_folder(tmp_path))
    gray, _ = dm.train_set.base[0]  # cat_0.png is grayscale
    rgba, _ = dm.train_set.base[1]  # cat_1.png is RGBA
    assert gray.shape == (3, 30, 18) and gray.dtype == torch.uint8
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    assert rgba.shape == (3, 20, 24)
    one = module(tmp_path, in_chans=1)
    assert one.in_chans == 1 and one.mean == (0.449,)
    assert next(iter(one.train_dataloader()))["images"].shape == (4, 1, 16, 16)


# ---- idx ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_idx_source(tmp_path, gz):
    root = make_idx(tmp_path, gz)
    dm = module(root, image_size=32, augment="none")
    dm.setup("test")
    assert (dm.num_classes, dm.in_chans, dm.class_names) == (4, 1, ["0", "1", "2", "3"])
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (36, 4, 12)
    pixels = read_idx(root / f"train-images-idx3-ubyte{'.gz' if gz else ''}")  # official train file
    assert dm.mean == pytest.approx((pixels.mean() / 255,))
    assert dm.std == pytest.approx((pixels.std() / 255,))
    batch = next(iter(dm.train_dataloader()))
    assert batch["images"].shape == (4, 1, 32, 32) and batch["labels"].dtype == torch.int64
    native = module(root, image_size=28, augment="none")
    images = torch.cat([b["images"] for b in native.test_dataloader()])
    raw = torch.from_numpy(read_idx(next(root.glob("t10k-images*")))).float()[native.test_set.indices] / 255
    assert torch.allclose(images[:, 0] * native.std[0] + native.mean[0], raw, atol=1e-5)


def test_idx_grayscale_to_three_channels(tmp_path):
    dm = module(make_idx(tmp_path, gz=True), image_size=28, in_chans=3)
    images = next(iter(dm.val_dataloader()))["images"]
    assert images.shape == (4, 3, 28, 28) and len(dm.mean) == 3
    assert torch.equal(images[:, 0], images[:, 1]) and torch.equal(images[:, 1], images[:, 2])


@pytest.mark.parametrize("gz", [False, True])
def test_idx_corrupt_files_raise_naming_the_file(tmp_path, gz):
    root = make_idx(tmp_path, gz)
    ext = ".gz" if gz else ""
    images = root / f"train-images-idx3-ubyte{ext}"
    labels = root / f"t10k-labels-idx1-ubyte{ext}"
    good = read_idx(images)
    opener = gzip.open if gz else open
    with opener(images, "wb") as f:  # wrong magic
        f.write(b"\x12\x34\x08\x03" + good.tobytes())
    with pytest.raises(ValueError, match=f"{images.name} is not an idx file"):
        module(root)
    write_idx(images, good)
    with opener(labels, "wb") as f:  # header says 12 labels, payload holds 11
        f.write(bytes([0, 0, 8, 1]) + struct.pack(">I", 12) + bytes(11))
    with pytest.raises(ValueError, match=f"{labels.name}: header declares shape \\(12,\\)"):
        module(root)
    write_idx(labels, np.arange(11) % 4)
    with pytest.raises(ValueError, match="holds 12 images but .* holds 11 labels"):
        module(root)


def test_idx_not_gzip_and_dotted_names(tmp_path):
    root = make_idx(tmp_path, gz=False)
    for path in root.glob("train-*"):  # the `train-images.idx3-ubyte` spelling is found too
        path.rename(root / path.name.replace("-idx", ".idx"))
    assert len(module(root).train_set.base) == 40
    (root / "t10k-labels-idx1-ubyte").unlink()
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip data")
    with pytest.raises(ValueError, match="cannot read idx file .*t10k-labels-idx1-ubyte.gz"):
        module(root)


def test_idx_missing_partner_file(tmp_path):
    root = make_idx(tmp_path, gz=False)
    (root / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte has no matching test labels"):
        module(root)


# ---- MixUp / CutMix -----------------------------------------------------------------------------


@pytest.mark.parametrize("alphas", [(0.4, 0.0), (0.0, 1.0), (0.8, 1.0)])
def test_mixup_cutmix_soft_labels(tmp_path, alphas):
    torch.manual_seed(0)
    dm = module(make_folder(tmp_path), mixup_alpha=alphas[0], cutmix_alpha=alphas[1], batch_size=8)
    for batch in dm.train_dataloader():
        labels = batch["labels"]
        assert labels.shape == (len(batch["images"]), 3) and labels.dtype == torch.float32
        assert torch.allclose(labels.sum(1), torch.ones(len(labels)))
        assert (labels >= 0).all()
    assert next(iter(dm.val_dataloader()))["labels"].dtype == torch.int64  # eval stays hard


# ---- predict ------------------------------------------------------------------------------------


def test_predict_folder_and_file(tmp_path):
    root = make_folder(tmp_path / "data")
    dm = module(root, predict_path=str(root / "test"))
    paths = [p for b in dm.predict_dataloader() for p in b["paths"]]
    assert len(paths) == 6 and paths == sorted(paths)
    batch = next(iter(dm.predict_dataloader()))
    assert batch["images"].shape == (4, 3, 16, 16) and "labels" not in batch
    single = module(root, predict_path=str(root / "test" / "dog" / "dog_1.png"))
    assert [b["paths"] for b in single.predict_dataloader()] == [[str(root / "test/dog/dog_1.png")]]


# ---- hub (a local DatasetDict standing in for datasets.load_dataset) -----------------------------


def hub_dict(test_labels):
    datasets = pytest.importorskip("datasets")
    rng = np.random.default_rng(2)

    def split(labels, mode):
        shape = (12, 12) if mode == "L" else (12, 12, 3)  # fromarray infers the mode from the shape
        images = [Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)) for _ in labels]
        features = datasets.Features(
            {"img": datasets.Image(), "fine": datasets.ClassLabel(names=["a", "b"])}
            if min(labels) >= 0
            else {"img": datasets.Image(), "fine": datasets.Value("int64")}
        )
        return datasets.Dataset.from_dict({"img": images, "fine": labels}, features=features)

    def build(mode):
        return datasets.DatasetDict({
            "train": split([0, 1] * 10, mode),
            "validation": split([0, 1] * 3, mode),
            "test": split(test_labels, mode),
        })

    return build


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_hub_source(monkeypatch, mode):
    datasets = pytest.importorskip("datasets")
    labelled = hub_dict([1, 0, 1, 1])(mode)
    monkeypatch.setattr(datasets, "load_dataset", lambda hub_id: labelled)
    dm = ImageDataModule(hub_id="toy", image_column="img", label_column="fine", image_size=8,
                         batch_size=4, num_workers=0)
    dm.setup("fit")
    dm.setup("test")
    assert (dm.num_classes, dm.class_names, dm.in_chans) == (2, ["a", "b"], 1 if mode == "L" else 3)
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (20, 6, 4)
    batch = next(iter(dm.test_dataloader()))
    assert batch["images"].shape == (4, dm.in_chans, 8, 8)
    assert batch["labels"].tolist() == [[1, 0, 1, 1][i] for i in dm.test_set.indices]


def test_hub_unlabelled_test_falls_back_to_validation(monkeypatch):
    datasets = pytest.importorskip("datasets")
    unlabelled = hub_dict([-1, -1])("RGB")  # like imagenet-1k's test split
    monkeypatch.setattr(datasets, "load_dataset", lambda hub_id: unlabelled)
    dm = ImageDataModule(hub_id="toy", image_column="img", label_column="fine", image_size=8,
                         num_workers=0, val_fraction=0.25)
    dm.setup("fit")
    dm.setup("test")
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (15, 5, 6)
    assert sorted(np.bincount(np.array([0, 1] * 10)[dm.val_set.indices])) == [2, 3]  # carved evenly by class
    with pytest.raises(ValueError, match="no column 'image'"):
        ImageDataModule(hub_id="toy", label_column="fine").setup("fit")


# ---- errors and Lightning -----------------------------------------------------------------------


def test_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="exactly one of root"):
        ImageDataModule(root=str(tmp_path), hub_id="food101")
    with pytest.raises(ValueError, match="in_chans must be 1, 3 or None"):
        ImageDataModule(root=str(tmp_path), in_chans=2)
    with pytest.raises(ValueError, match="neither an ImageFolder tree"):
        module(tmp_path)
    with pytest.raises(ValueError, match="val_fraction"):
        ImageDataModule(root=str(tmp_path), val_fraction=0.0)
    with pytest.raises(ValueError, match="mean and std"):
        ImageDataModule(root=str(tmp_path), mean=(0.5,))
    with pytest.raises(ValueError, match="mean has 2 values"):
        module(make_folder(tmp_path / "f"), mean=(0.5, 0.5), std=(0.2, 0.2)).train_dataloader()



@pytest.mark.parametrize(("options", "message"), [
    ({"image_size": 0}, "data: image_size must be >= 1, got 0"),
    ({"image_size": 0, "batch_size": 0}, "data: image_size must be >= 1, got 0; batch_size must be >= 1, got 0"),
    ({"num_workers": -1}, "data: num_workers must be >= 0, got -1"),
    ({"cutmix_alpha": -0.5}, "data: cutmix_alpha must be >= 0, got -0.5"),
    ({"hflip": 1.5}, r"data: hflip must be in \[0, 1\], got 1.5"),
    ({"test_fraction": 1.0}, r"data: test_fraction must be in \(0, 1\), got 1.0")])
def test_an_option_out_of_range_is_named_with_its_value(tmp_path, options, message):
    """They had been one sentence of three bounds and three bare values (`need image_size >= 1, batch_size >= 1,
    num_workers >= 0; got 0, 512, 8`), naming neither the section nor which was wrong."""
    with pytest.raises(ValueError, match=rf"^{message}$"):
        ImageDataModule(root=str(tmp_path), **options)


def test_root_and_hub_id_together_say_how_to_replace_a_configs_source(tmp_path):
    """configs/food101.yaml sets hub_id, and its header had said that --data.root alone reads a folder instead."""
    with pytest.raises(ValueError, match=r"hub_id='food101'; .*\(e\.g\. --data\.root DIR --data\.hub_id=null\)"):
        ImageDataModule(root=str(tmp_path), hub_id="food101")

def test_predict_and_test_inputs_are_checked_early(tmp_path):
    """A missing, unreadable or non-image predict_path is an error when the data module is built (which the CLI
    prints as one line, before the model is built); predict without predict_path and test without a test split
    are ValueErrors of their setup."""
    root = make_folder(tmp_path / "data", ("train",))
    (tmp_path / "bad.png").write_bytes(b"not a png at all")
    (tmp_path / "notes.txt").write_text("a note")
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "notes.txt").write_text("a note")
    for path, error, message in [
        (tmp_path / "missing", FileNotFoundError, r"^data.predict_path .*missing does not exist$"),
        (tmp_path / "bad.png", ValueError, r"bad.png is not a readable image: UnidentifiedImageError"),
        (tmp_path / "notes.txt", ValueError, r"notes.txt is not an image file: its extension is not one of .jpg"),
        (tmp_path / "none", ValueError, r"^no readable image \(.*\) under predict_path .*none; left out 1 file\(s\): "
                                        r".*notes.txt \(unsupported extension\)$"),
    ]:
        with pytest.raises(error, match=message):
            ImageDataModule(root=str(root), predict_path=str(path))
    dm = ImageDataModule(root=str(root), num_workers=0)
    with pytest.raises(ValueError, match=r"^predict needs data.predict_path: an image file or a folder of images$"):
        dm.setup("predict")
    with pytest.raises(ValueError, match=r"^ImageFolder tree .*data has no test split: an ImageFolder tree needs"):
        dm.test_dataloader()
    with pytest.raises(ValueError, match="^this image data module has no source: give data.root"):
        ImageDataModule(predict_path=str(root / "train" / "cat" / "cat_0.png")).predict_dataloader()


class TinyClassifier(L.LightningModule):
    """PatchEmbed + mean-pool + linear; accepts hard or soft labels."""

    def __init__(self, in_chans: int, num_classes: int) -> None:
        super().__init__()
        self.embed = PatchEmbed(in_chans, 8, patch_size=4, img_size=16)
        self.head = torch.nn.Linear(8, num_classes)

    def step(self, batch):
        tokens, _ = self.embed(batch["images"])
        return torch.nn.functional.cross_entropy(self.head(tokens.mean(1)), batch["labels"])

    def training_step(self, batch, _):
        return self.step(batch)

    def validation_step(self, batch, _):
        self.log("val_loss", self.step(batch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_fit_with_workers_and_mixup(tmp_path):
    dm = ImageDataModule(root=str(make_folder(tmp_path / "data")), image_size=16, batch_size=8,
                         num_workers=2, mixup_alpha=0.2)
    model = TinyClassifier(dm.in_chans, dm.num_classes)  # metadata before setup (CLI links need it)
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 4  # ceil(27 / 8)


def _train_batches(root, workers, resume_at=0):
    torch.manual_seed(0)
    dm = module(root, num_workers=workers, augment="randaugment", random_erasing=0.5, mixup_alpha=0.2)
    loader = dm.train_dataloader()
    loader.batch_sampler.load_state_dict({"epoch": 1, "batch": resume_at})
    batches = [(batch["images"], batch["labels"]) for batch in loader]
    loader._iterator._shutdown_workers()  # the persistent workers now, not in a finaliser (a teardown race)
    return batches


def test_training_augmentation_depends_on_the_batch_not_on_the_worker(tmp_path):
    """Crops, RandAugment, erasing and MixUp drawn in workers: the same batches with one worker or two, and
    a resumed epoch draws what the whole epoch drew."""
    root = make_folder(tmp_path / "data")
    one = _train_batches(root, 1)
    assert len(one) > 3 and not torch.equal(one[0][0], one[1][0][: len(one[0][0])])
    for resumed_at, batches in ((0, _train_batches(root, 2)), (3, _train_batches(root, 2, resume_at=3))):
        for (images, labels), (expected_images, expected_labels) in zip(batches, one[resumed_at:], strict=True):
            assert torch.equal(images, expected_images) and torch.equal(labels, expected_labels)
