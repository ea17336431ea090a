"""A trained image model predicts from its checkpoint alone: the checkpoint keeps the normalisation and the
channel count beside the model's sizes and class names. After a tiny fit on idx files, the data is deleted,
and `ImageClassifier.predict_images`, a Trainer run with a data module whose root is gone and `infomamba predict`
(which links the model's sizes from the checkpoint) predict what `infomamba predict` wrote with the data present.
`test` and `predict` read no training images."""
import shutil

import lightning as L
import pytest
import torch

from infomamba.cli import main
from infomamba.tasks.image.datamodule import ImageDataModule
from infomamba.tasks.image.datasets import read_idx
from infomamba.tasks.image.module import ImageClassifier
from test_image_augment import write_fashion_like
from test_portable_checkpoints import cli_predictions
from tiny_data import TINY_MODEL


def test_checkpoint_predicts_without_its_data(tmp_path, monkeypatch, capsys):
    data = write_fashion_like(tmp_path / "fashion")
    inputs = shutil.move(data / "predict", tmp_path / "inputs")
    monkeypatch.chdir(tmp_path)
    main(["fit", "--task", "image", *TINY_MODEL, f"--data.root={data}", "--data.image_size=16",
          "--data.batch_size=8", "--data.num_workers=0", "--model.patch_size=4", "--trainer.max_epochs=1"])
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
