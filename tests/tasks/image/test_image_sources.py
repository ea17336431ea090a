"""Class folders without split folders (root/<class>/*, torchvision ImageFolder's layout) are one labelled pool:
validation and test are carved from it with the seed, evenly across the classes, the same in every process, and
a test stage reads nothing else. idx files get real class names: classes.txt beside them, else Fashion-MNIST's
for a folder named so, else the digits; fit and predict through the CLI carry the names into the checkpoint and
the predictions, and leave the data folder as it was."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.datasets import FashionMNIST

from infomamba.cli import main
from infomamba.tasks.image.datamodule import ImageDataModule
from test_image_augment import write_fashion_like
from test_image_datamodule import make_idx
from test_image_unreadable import colour_labels, drain, snapshot
from test_portable_checkpoints import cli_predictions
from tiny_data import TINY_MODEL

SIZES = {"bird": 4, "cat": 10, "dog": 6}  # sorted names; class id = the channel its images light up
SHARED_FASHION = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "fashion-mnist"


def write_class_folders(root, sizes=SIZES):
    """root/<class>/*.png and nothing else: 8x8 solid images, brightest in the channel of their class id."""
    for channel, (name, n) in enumerate(sizes.items()):
        (root / name).mkdir(parents=True)
        for i in range(n):
            pixels = np.zeros((8, 8, 3), dtype=np.uint8)
            pixels[..., channel] = 150 + i
            Image.fromarray(pixels).save(root / name / f"{name}_{i}.png")
    return root


def pool_module(root, **kw):
    return ImageDataModule(root=str(root), **{"image_size": 8, "batch_size": 4, "num_workers": 0, "augment": "none",
                                              **kw})


def carved(dm):
    return {name: sorted(getattr(dm, f"{name}_set").indices.tolist()) for name in ("train", "val", "test")}


# ---- class folders --------------------------------------------------------------------------------


def test_class_folders_are_one_pool_carved_evenly_across_classes(tmp_path, caplog):
    dm = pool_module(write_class_folders(tmp_path / "flat"))
    with caplog.at_level(logging.INFO):
        dm.setup("fit")
        dm.setup("test")
    assert (dm.class_names, dm.num_classes, dm.in_chans) == (list(SIZES), 3, 3)
    splits = carved(dm)
    assert {name: len(indices) for name, indices in splits.items()} == {"train": 14, "val": 2, "test": 4}
    assert sorted(sum(splits.values(), [])) == list(range(20))  # disjoint, and every image in one split
    pool = dm.train_set.base
    assert dm.val_set.base is pool and dm.test_set.base is pool
    assert [Path(path).parent.name for path, _ in pool.samples] == [list(SIZES)[label] for label in pool.targets]
    test_labels = [pool.targets[i] for i in splits["test"]]
    for label, n in enumerate(SIZES.values()):  # each class gives its share of the 4 test images, to within one
        assert abs(test_labels.count(label) - n * 4 / 20) < 1
    assert set(test_labels) == {0, 1, 2}
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        for batch in loader:
            assert torch.equal(colour_labels(batch["images"]), batch["labels"])  # each label with its own image
    carving = [r.getMessage() for r in caplog.records if "carved from" in r.getMessage()]
    assert carving == [f"Image data: class folders {tmp_path / 'flat'} has no test split; test (20%) and validation "
                       "(10% of the rest) are carved from its 20 images, evenly across the classes, with seed 0."]


SPLIT_IN_A_FRESH_PROCESS = """
import json, sys
from infomamba.tasks.image.datamodule import ImageDataModule
dm = ImageDataModule(root=sys.argv[1], image_size=8, num_workers=0)
dm.setup("fit")
dm.setup("test")
print(json.dumps({name: sorted(getattr(dm, name + "_set").indices.tolist()) for name in ("train", "val", "test")}))
"""


@pytest.mark.parametrize("link, target", [("cat/self", ".."), ("dog/cats", "../cat")], ids=["loop", "two-classes"])
def test_a_link_to_a_folder_already_read_is_refused(tmp_path, link, target):
    """ImageFolder follows links: a loop had made cat's 10 images 210 samples, and a class folder linked into
    another class had given its images two labels."""
    root = write_class_folders(tmp_path / "flat")
    os.symlink(target, root / link)
    with pytest.raises(ValueError, match=r"again, reached through a link .* its images would be read twice"):
        pool_module(root).setup("fit")


def test_carve_is_the_same_in_every_process_and_follows_seed_and_fractions(tmp_path):
    root = write_class_folders(tmp_path / "flat")
    dm = pool_module(root)
    dm.setup("fit")
    dm.setup("test")
    env = {**os.environ, "PYTHONHASHSEED": "123", "OMP_NUM_THREADS": "1"}  # another rank: its own process
    done = subprocess.run([sys.executable, "-c", SPLIT_IN_A_FRESH_PROCESS, str(root)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == carved(dm)
    test_only = pool_module(root)
    test_only.setup("test")  # a test run carves the same test split, and builds nothing else
    assert test_only.train_set is None and test_only.val_set is None
    assert sorted(test_only.test_set.indices.tolist()) == carved(dm)["test"]
    other = pool_module(root, seed=1)
    other.setup("test")
    assert sorted(other.test_set.indices.tolist()) != carved(dm)["test"]
    halves = pool_module(root, test_fraction=0.5, val_fraction=0.5)
    halves.setup("fit")
    halves.setup("test")
    assert [len(indices) for indices in carved(halves).values()] == [5, 5, 10]


def test_smallest_pool_gives_every_split_one_image(tmp_path):
    dm = pool_module(write_class_folders(tmp_path / "three", {"a": 1, "b": 1, "c": 1}))
    dm.setup("fit")
    dm.setup("test")
    assert sorted(map(len, carved(dm).values())) == [1, 1, 1]
    two = pool_module(write_class_folders(tmp_path / "two", {"a": 1, "b": 1}))
    with pytest.raises(ValueError, match=r"^class folders .*two holds 2 image\(s\): too few to carve train, "):
        two.setup("fit")
    with pytest.raises(ValueError, match=r"^data: test_fraction must be in \(0, 1\), got 1.0$"):
        pool_module(tmp_path / "three", test_fraction=1.0)


def test_pool_leaves_out_other_files_and_replaces_unreadable_images(tmp_path, caplog):
    root = write_class_folders(tmp_path / "flat")
    (root / ".thumbnails").mkdir()  # hidden: not a class
    Image.new("RGB", (8, 8)).save(root / ".thumbnails" / "cat_0.png")
    notes, broken = root / "cat" / "notes.txt", root / "dog" / "broken.png"
    notes.write_text("not an image")
    broken.write_bytes(b"not a png")
    dm = pool_module(root)
    with caplog.at_level(logging.WARNING):
        dm.setup("fit")
        dm.setup("test")
        batches = [b for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader())
                   for b in drain(dm, loader)]
    assert dm.class_names == list(SIZES) and dm.train_set.base.left_out == [(str(notes), "unsupported extension")]
    assert sum(len(b["labels"]) for b in batches) == 21 and list(dm.unreadable) == [str(broken)]
    assert all(torch.equal(colour_labels(b["images"]), b["labels"]) for b in batches)
    assert any(f"left out 1 file(s): {notes} (unsupported extension)" in r.getMessage() for r in caplog.records)


def test_unrecognised_roots_name_every_layout(tmp_path):
    layouts = (r"is neither an ImageFolder tree \(root/train/<class>/\*.png\|jpg, plus val/ or test/\), class folders "
               r"\(root/<class>/\*.png\|jpg, no split folders\) nor a folder of idx files \(train-images-idx3-ubyte")
    (tmp_path / "empty").mkdir()
    write_class_folders(tmp_path / "no_train" / "test")  # a split folder without train/ is no pool of class "test"
    (tmp_path / "texts" / "notes").mkdir(parents=True)
    (tmp_path / "texts" / "notes" / "a.txt").write_text("not an image")
    for name in ("empty", "no_train", "texts"):
        with pytest.raises(ValueError, match=rf"^{tmp_path / name} {layouts}"):
            pool_module(tmp_path / name).class_names
    root = write_class_folders(tmp_path / "above" / "flat")
    (root / "docs").mkdir()
    (root / "docs" / "readme.md").write_text("about these images")
    with pytest.raises(ValueError, match=rf"^class folders \['docs'\] of {root} hold no image file \(.jpg, "):
        pool_module(root).class_names
    (root / "docs" / "readme.md").unlink()
    (root / "docs").rmdir()
    with pytest.raises(ValueError, match=rf"^{root.parent} has one class folder, flat/: class folders need two or "):
        pool_module(root.parent).class_names  # the folder above the class folders


# ---- idx class names ------------------------------------------------------------------------------


def test_idx_class_names_from_classes_txt_then_fashion_mnist_then_digits(tmp_path):
    digits = [str(i) for i in range(10)]
    for folder, names in (("mnist", digits), ("fashion-mnist", FashionMNIST.classes),
                          ("FashionMNIST/raw", FashionMNIST.classes), ("Fashion_MNIST", FashionMNIST.classes),
                          ("fashion-mnist-like", digits)):
        root = make_idx(tmp_path / folder, gz=True, n_train=20, n_test=10, classes=10)
        assert ImageDataModule(root=str(root)).class_names == names, folder
    subset = make_idx(tmp_path / "four" / "fashion_mnist", gz=False, classes=4)  # labels 0-3: their four names
    assert ImageDataModule(root=str(subset)).class_names == FashionMNIST.classes[:4]
    named = tmp_path / "fashion-mnist"
    (named / "classes.txt").write_text("\n".join(f"kind {i}" for i in range(10)) + "\n\n")  # wins over the name
    assert ImageDataModule(root=str(named)).class_names == [f"kind {i}" for i in range(10)]


def test_bad_classes_txt_is_an_error_naming_it(tmp_path):
    root = make_idx(tmp_path / "letters", gz=False, classes=4)
    names = root / "classes.txt"
    names.write_text("a\nb\nc\n")
    with pytest.raises(ValueError, match=rf"^{names} has 3 class names \(one per line\) but the idx labels under "
                                         rf"{root} number 4 classes \(0-3\)$"):
        ImageDataModule(root=str(root)).class_names
    names.write_text("a\nb\na\nc\n")
    with pytest.raises(ValueError, match=rf"^{names} names \['a'\] more than once"):
        ImageDataModule(root=str(root)).class_names


@pytest.mark.skipif(not SHARED_FASHION.is_dir(), reason="no ../shared/data/fashion-mnist")
def test_shared_fashion_mnist_is_named():
    dm = ImageDataModule(root=str(SHARED_FASHION))  # the label files and the images' headers only
    assert dm.class_names == FashionMNIST.classes and dm.in_chans == 1


# ---- through the CLI ------------------------------------------------------------------------------


def fit_and_predict(root, inputs, tmp_path, capsys, *options):
    """Fit one tiny epoch on `root` from `tmp_path`, then predict `inputs` from its checkpoint: (the checkpoint's
    class names, the predictions)."""
    main(["fit", "--task", "image", *TINY_MODEL, f"--data.root={root}", "--data.image_size=8", "--data.batch_size=8",
          "--data.num_workers=0", "--model.patch_size=4", "--trainer.max_epochs=1", *options])
    ckpt = sorted(tmp_path.glob("runs/image/version_*/checkpoints/last.ckpt"))[-1]
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)["hyper_parameters"]["class_names"]
    return saved, cli_predictions(["--task", "image", "--ckpt_path", str(ckpt), f"--data.predict_path={inputs}"],
                                  capsys)


def test_cli_fit_on_class_folders_names_the_predictions(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    flat = write_class_folders(tmp_path / "flat")
    before = snapshot(flat)
    saved, rows = fit_and_predict(flat, flat / "cat", tmp_path, capsys)
    assert saved == list(SIZES) and len(rows) == 10 and {row["label"] for row in rows} <= set(SIZES)
    assert snapshot(flat) == before


def test_cli_fit_on_fashion_mnist_names_the_predictions(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    fashion = write_fashion_like(tmp_path / "fashion-mnist")  # labels 0-3
    before = snapshot(fashion)
    saved, rows = fit_and_predict(fashion, fashion / "predict", tmp_path, capsys, "--trainer.limit_train_batches=2")
    assert saved == FashionMNIST.classes[:4] and len(rows) == 3
    assert {row["label"] for row in rows} <= set(FashionMNIST.classes[:4])
    assert snapshot(fashion) == before
