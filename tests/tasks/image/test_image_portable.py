"""A trained image model predicts from its checkpoint alone: the checkpoint keeps the normalisation and the
channel count beside the model's sizes and class names. After a tiny fit on idx files, the data is deleted,
and `ImageClassifier.predict_images`, a Trainer run with a data module whose root is gone and `infomamba predict`
(which links the model's sizes from the checkpoint) predict what `infomamba predict` wrote with the data present.
`test` and `predict` read no training images. An evaluation of a moved checkpoint takes its image size, carve and
channels from it."""
import shutil

import lightning as L
import pytest
import torch
from PIL import Image

from infomamba.cli import main
from infomamba.tasks.image.datamodule import ImageDataModule
from infomamba.tasks.image.datasets import read_idx
from infomamba.tasks.image.module import ImageClassifier
from test_image_augment import write_fashion_like
from test_portable_checkpoints import CPU, cli_predictions
from tiny_data import TINY_MODEL


def test_checkpoint_predicts_without_its_data(tmp_path, monkeypatch, capsys):
    data = write_fashion_like(tmp_path / "fashion")
    inputs = shutil.move(data / "predict", tmp_path / "inputs")
    monkeypatch.chdir(tmp_path)
    main(["fit", "--task", "image", *TINY_MODEL, f"--data.root={data}", "--data.image_size=16",
          "--data.batch_size=8", "--data.num_workers=0", "--model.patch_size=4", "--trainer.max_epochs=1", CPU])
    ckpt = tmp_path / "runs" / "image" / "version_0" / "checkpoints" / "last.ckpt"
    pixels = read_idx(data / "train-images-idx3-ubyte") / 255.0
    kept = torch.load(ckpt, map_location="cpu", weights_only=False)["ImageDataModule"]
    assert kept["in_chans"] == 1
    assert kept["mean"] == pytest.approx([pixels.mean()]) and kept["std"] == pytest.approx([pixels.std()])
    expected = cli_predictions(["--task", "image", "--ckpt_path", str(ckpt), f"--data.predict_path={inputs}"], capsys)
    shutil.rmtree(data)

    model = ImageClassifier.load_from_checkpoint(ckpt, map_location="cpu")
    paths = [row["path"] for row in expected]
    by_library = model.predict_images(paths, batch_size=2)
    in_float64 = model.double().predict_images(paths, batch_size=2)  # the images follow the model's dtype
    assert [row["label"] for row in in_float64] == [row["label"] for row in by_library]
    model.float()
    gone = ImageDataModule(root=str(data), predict_path=str(inputs), image_size=16, num_workers=0)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    by_trainer = [row for batch in trainer.predict(model, datamodule=gone, ckpt_path=ckpt) for row in batch]
    by_cli = cli_predictions(["--task", "image", "--ckpt_path", str(ckpt), f"--data.predict_path={inputs}"], capsys)
    assert len(paths) == 3
    for rows in (by_library, by_trainer, by_cli):
        assert [row["path"] for row in rows] == paths
        assert [row["label"] for row in rows] == [row["label"] for row in expected]
        assert [row["score"] for row in rows] == pytest.approx([row["score"] for row in expected], abs=1e-5)


def test_test_and_predict_read_no_training_images(tmp_path):
    root = write_fashion_like(tmp_path)
    state = ImageDataModule(root=str(root), image_size=28).state_dict()  # what a fit's checkpoint keeps
    train_images = root / "train-images-idx3-ubyte"
    train_images.write_bytes(train_images.read_bytes()[:200])  # the header stays, the pixels are gone
    dm = ImageDataModule(root=str(root), image_size=28, batch_size=8, num_workers=0,
                         predict_path=str(root / "predict"))
    assert (dm.class_names, dm.in_chans) == (["0", "1", "2", "3"], 1)  # what the CLI links: labels and headers
    dm.setup("test")
    dm.setup("predict")
    dm.load_state_dict(state)  # as Lightning does in a run given the checkpoint
    assert sum(len(batch["labels"]) for batch in dm.test_dataloader()) == 12
    assert sum(len(batch["paths"]) for batch in dm.predict_dataloader()) == 3
    assert (dm.mean, dm.std) == (tuple(state["mean"]), tuple(state["std"]))
    with pytest.raises(ValueError, match="train-images-idx3-ubyte: header declares shape"):
        dm.setup("fit")  # the training stage does read them


def test_evaluating_on_other_classes_is_an_error_naming_both(tmp_path):
    """Label ids are positions in the class list: data of other classes (or another order) would be scored against
    the wrong ones, so a labelled split of such data is refused once the checkpoint's state is taken."""
    trained = ImageDataModule(root=str(write_fashion_like(tmp_path / "a")), image_size=28).state_dict()
    assert trained["class_names"] == ["0", "1", "2", "3"]
    other = write_fashion_like(tmp_path / "b")
    (other / "classes.txt").write_text("w\nx\ny\nz\n")
    dm = ImageDataModule(root=str(other), image_size=28, batch_size=8, num_workers=0)
    dm.load_state_dict(trained)
    with pytest.raises(ValueError, match=r"classes \['w', 'x', 'y', 'z'\], the checkpoint was trained on \['0'"):
        dm.setup("test")
    built = ImageDataModule(root=str(other), image_size=28, batch_size=8, num_workers=0)
    built.setup("test")
    with pytest.raises(ValueError, match="its label ids would mean other classes"):
        built.load_state_dict(trained)  # as Lightning does after setup
    same = ImageDataModule(root=str(write_fashion_like(tmp_path / "c")), image_size=28, batch_size=8, num_workers=0)
    same.load_state_dict(trained)
    same.setup("test")
    old = {key: value for key, value in trained.items() if key != "class_names"}  # a checkpoint from before
    dm.load_state_dict(old)
    dm.setup("test")


def test_an_evaluation_of_a_moved_checkpoint_takes_its_image_size_and_carve(tmp_path):
    """Without its run's config.yaml, an evaluation had read 224 px images for a model trained at 16 (the learned
    positions resampled, silently) and carved test out of images the checkpoint trained on (default seed and
    fraction); it takes them from the checkpoint's data hyperparameters now."""
    from infomamba.cli import trained_data
    from infomamba.tasks.registry import get_task
    from test_image_sources import write_class_folders

    root = write_class_folders(tmp_path / "pool", {"a": 10, "b": 10})
    fit = ImageDataModule(root=str(root), image_size=16, seed=3, test_fraction=0.5, num_workers=0)
    fit.setup("test")
    data = {"root": str(root), "image_size": 224, "seed": 0, "val_fraction": 0.1, "test_fraction": 0.2,
            "num_workers": 0}
    trained_data(data, dict(fit.hparams), get_task("image").trained_data, given=set())
    evaluation = ImageDataModule(**data)
    evaluation.setup("test")
    assert evaluation.image_size == 16
    assert sorted(evaluation.test_set.indices) == sorted(fit.test_set.indices)


def test_data_in_chans_other_than_the_checkpoints_is_an_error_naming_both(tmp_path):
    """The model takes its checkpoint's channels: data.in_chans=3 given to evaluate a 1-channel model had stopped the
    run with a shape error in its first batch."""
    root = write_fashion_like(tmp_path)
    trained = ImageDataModule(root=str(root), image_size=28).state_dict()
    dm = ImageDataModule(root=str(root), image_size=28, in_chans=3, batch_size=8, num_workers=0,
                         predict_path=str(root / "predict"))
    dm.setup("test")  # Lightning restores the checkpoint after setup, before the loaders
    dm.load_state_dict(trained)
    for loader in (dm.test_dataloader, dm.predict_dataloader):
        with pytest.raises(ValueError, match=r"data\.in_chans=3, but the checkpoint's model takes 1 channel"):
            loader()
    same = ImageDataModule(root=str(root), image_size=28, in_chans=1, batch_size=8, num_workers=0)
    same.load_state_dict(trained)
    assert next(iter(same.test_dataloader()))["images"].shape[1] == 1


def test_labelled_splits_are_read_in_the_checkpoints_channels(tmp_path):
    """A model trained on 1-channel idx files and tested on an RGB ImageFolder tree of the same classes (or the
    reverse) had been fed the source's own channels, and the run stopped at its first batch."""
    idx = write_fashion_like(tmp_path / "idx")
    for split in ("train", "test"):
        for name in ("0", "1", "2", "3"):
            (tmp_path / "tree" / split / name).mkdir(parents=True)
            Image.new("RGB", (28, 28), (200, 30, 30)).save(tmp_path / "tree" / split / name / "x.png")
    gray = ImageDataModule(root=str(idx), image_size=28).state_dict()
    rgb = {**gray, "mean": [0.5] * 3, "std": [0.25] * 3, "in_chans": 3}
    for root, state in ((tmp_path / "tree", gray), (idx, rgb)):
        for restored_first in (True, False):  # as the CLI does it, and as Lightning does
            dm = ImageDataModule(root=str(root), image_size=28, batch_size=8, num_workers=0)
            if restored_first:
                dm.load_state_dict(state)
            dm.setup("test")
            dm.load_state_dict(state)
            assert next(iter(dm.test_dataloader()))["images"].shape[1] == state["in_chans"]
