"""Unreadable images (garbage, zero bytes, truncated data) are replaced at load time by readable images of
the same split with their own labels, counted once and reported; files of other extensions are left out and
named once per split (GIFs are images); the evaluation order mixes classes; a fit through the real CLI survives
them and leaves the data folder as it was."""

import json
import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from infomamba.cli import main
from infomamba.tasks.image.datamodule import ImageDataModule
from tiny_data import TINY_MODEL

CLASSES = ["0_red", "1_green", "2_blue"]  # class id = the channel its images light up


def write_colour_folder(root, per_class, broken_test=True):
    """An ImageFolder tree whose images are one solid colour per class, so a label can be checked against its
    image. train/ also holds a garbage .jpg and a zero-byte .png; test/ a .jpg cut after its header."""
    for split, n in per_class.items():
        for channel, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = np.zeros((12, 12, 3), dtype=np.uint8)
                pixels[..., channel] = 200 + i
                Image.fromarray(pixels).save(folder / f"{name}_{i}.png")
    broken = {"garbage": root / "train" / "0_red" / "broken.jpg", "empty": root / "train" / "1_green" / "empty.png"}
    broken["garbage"].write_bytes(b"this is not a jpeg " * 20)
    broken["empty"].write_bytes(b"")
    if "test" in per_class and broken_test:
        truncated = root / "test" / "2_blue" / "truncated.jpg"
        Image.fromarray(np.full((64, 64, 3), 90, dtype=np.uint8)).save(truncated, quality=95)
        truncated.write_bytes(truncated.read_bytes()[:400])  # the header reads, the pixels do not
        broken["truncated"] = truncated
    return {key: str(path) for key, path in broken.items()}


def colour_labels(images):
    """The class each (normalised) solid-colour image shows: its brightest channel."""
    return images.mean(dim=(2, 3)).argmax(1)


def drain(dm, loader):
    return [dm.on_before_batch_transfer(batch, 0) for batch in loader]


def test_unreadable_images_are_replaced_with_right_labels_and_reported_once(tmp_path, caplog):
    broken = write_colour_folder(tmp_path, {"train": 6, "val": 2, "test": 3})
    dm = ImageDataModule(root=str(tmp_path), image_size=8, batch_size=4, num_workers=0, augment="none")
    dm.setup("fit")
    assert len(dm.train_set) == 20  # 18 images + 2 broken files, found only when loaded
    with caplog.at_level(logging.WARNING, logger="infomamba.tasks.image.datamodule"):
        for _ in range(2):  # a second epoch meets the same files again: still counted once
            batches = drain(dm, dm.train_dataloader())
            assert [tuple(b["images"].shape) for b in batches] == [(4, 3, 8, 8)] * 5
            for batch in batches:
                assert "unreadable" not in batch
                assert torch.equal(colour_labels(batch["images"]), batch["labels"])
        assert set(dm.unreadable) == {broken["garbage"], broken["empty"]}
        assert "UnidentifiedImageError" in dm.unreadable[broken["empty"]]
        test_batches = drain(dm, dm.test_dataloader())
        assert [len(b["labels"]) for b in test_batches] == [4, 4, 2]
        assert all(torch.equal(colour_labels(b["images"]), b["labels"]) for b in test_batches)
        assert broken["truncated"] in dm.unreadable and len(dm.unreadable) == 3
        dm.teardown("fit")
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 2 and "is replaced by the next readable image" in messages[0]
    assert "replaced 3 file(s): " in messages[1] and all(path in messages[1] for path in broken.values())


def test_ranks_keep_equal_batch_counts_and_full_batches(tmp_path):
    write_colour_folder(tmp_path, {"train": 6, "val": 2, "test": 1})
    dm = ImageDataModule(root=str(tmp_path), image_size=8, batch_size=4, num_workers=0, augment="none")
    dm.setup("fit")
    shapes = []
    for rank in range(2):
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=2)
        shapes.append([tuple(b["images"].shape) for b in drain(dm, dm.train_dataloader())])
    assert shapes[0] == shapes[1] == [(4, 3, 8, 8)] * 2


def test_first_batch_of_a_class_sorted_test_set_mixes_classes(tmp_path):
    write_colour_folder(tmp_path, {"train": 2, "test": 4}, broken_test=False)
    dm = ImageDataModule(root=str(tmp_path), image_size=8, batch_size=4, num_workers=0)
    dm.setup("test")
    assert [dm.test_set.base.targets[i] for i in range(len(dm.test_set))] == sorted(dm.test_set.base.targets)
    assert len(set(next(iter(dm.test_dataloader()))["labels"].tolist())) > 1
    seen = []
    for rank in range(2):
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=2)
        seen += [int(i) for b in dm.test_dataloader() for i in b["labels"]]
    assert sorted(seen) == sorted(dm.test_set.base.targets)  # every test image once over the ranks


def predicted_rows(folder, out, batch_size):
    """The rows of predictions.jsonl after a predict run of a tiny untrained 3-class model over `folder`."""
    import lightning as L

    from infomamba import EncoderConfig
    from infomamba.tasks.image.module import ImageClassifier
    from infomamba.tasks.prediction_writer import JsonLinesPredictionWriter

    torch.manual_seed(0)
    model = ImageClassifier(num_classes=3, encoder=EncoderConfig(dim=16, depth=1), in_chans=3, image_size=8,
                            patch_size=4, class_names=CLASSES)
    dm = ImageDataModule(image_size=8, batch_size=batch_size, num_workers=0, predict_path=str(folder))
    dm.load_state_dict({"mean": [0.5] * 3, "std": [0.5] * 3, "in_chans": 3, "class_names": CLASSES})
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=out,
                        callbacks=[JsonLinesPredictionWriter()])
    trainer.predict(model, datamodule=dm, return_predictions=False)
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("batch_size", [1, 4])  # 1: the unreadable file alone in its batch
def test_an_unreadable_predict_file_gets_a_row_with_its_error(tmp_path, batch_size, caplog, capsys):
    """A file whose header PIL does not identify had been left out of predictions.jsonl, named only in a log line,
    though every input should have its row (as an unreadable audio input has); the other rows stay as they were."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    for i, name in enumerate(("a.png", "c.jpg")):
        pixels = np.zeros((12, 12, 3), dtype=np.uint8)
        pixels[..., i] = 210
        Image.fromarray(pixels).save(folder / name)
    bad = folder / "bad.png"
    bad.write_bytes(b"not a png")
    with caplog.at_level(logging.INFO):
        rows = predicted_rows(folder, tmp_path / "with_bad", batch_size)
    assert [(row["index"], row["path"]) for row in rows] == list(enumerate(map(str, [folder / "a.png", bad,
                                                                                     folder / "c.jpg"])))
    error = rows[1].pop("error")
    assert rows[1] == {"index": 1, "path": str(bad), "label": None, "score": None}
    assert error.startswith("UnidentifiedImageError: cannot identify image file '/")
    summary = next(r.getMessage() for r in caplog.records if "Image data: predict" in r.getMessage())
    assert "predict 3 images" in summary and f"unreadable 1 file(s): {bad} (UnidentifiedImageError" in summary
    assert "wrote 3 predictions" in capsys.readouterr().out
    bad.unlink()
    good = predicted_rows(folder, tmp_path / "without", batch_size)
    assert [{**row, "index": None} for row in rows[::2]] == [{**row, "index": None} for row in good]


def test_other_extensions_are_left_out_and_named_once_per_split(tmp_path, caplog):
    """A GIF is an image like the PNGs, in a tree and in a predict folder; other files are left out, counted and
    named: once per split read, and in the predict summary."""
    write_colour_folder(tmp_path, {"train": 2, "test": 1}, broken_test=False)
    pixels = np.zeros((12, 12, 3), dtype=np.uint8)
    pixels[..., 2] = 220
    gif = tmp_path / "train" / "2_blue" / "odd.gif"
    Image.fromarray(pixels).convert("P").save(gif)  # a palette image, as GIFs are
    notes, extra = tmp_path / "train" / "0_red" / "notes.txt", tmp_path / "test" / "1_green" / "labels.csv"
    notes.write_text("not an image")
    extra.write_text("not an image either")
    dm = ImageDataModule(root=str(tmp_path), image_size=8, batch_size=4, num_workers=0, augment="none",
                         predict_path=str(tmp_path / "train"), seed=2)  # seeds 0, 1 carve a broken file as validation
    with caplog.at_level(logging.INFO):
        for stage in ("fit", "validate", "test", "fit"):
            dm.setup(stage)
        predicted = [p for b in drain(dm, dm.predict_dataloader()) for p in b["paths"]]
        train = [b for loader in (dm.train_dataloader(), dm.val_dataloader()) for b in drain(dm, loader)]
    assert str(gif) in {path for path, _ in dm.train_set.base.samples}
    assert all(torch.equal(colour_labels(b["images"]), b["labels"]) for b in train)  # the GIF read as blue
    assert sum(len(b["labels"]) for b in train) == 9  # 6 PNGs, the GIF and the 2 broken files' replacements
    left_out = [r.getMessage() for r in caplog.records if "split: left out" in r.getMessage()]
    assert left_out == [f"Image data: {split} split: left out 1 file(s): {path} (unsupported extension); image "
                        "extensions are .jpg, .jpeg, .png, .ppm, .bmp, .pgm, .tif, .tiff, .webp, .gif"
                        for split, path in (("train", notes), ("test", extra))]
    assert str(gif) in predicted and len(predicted) == 7
    summary = next(r.getMessage() for r in caplog.records if "Image data: predict" in r.getMessage())
    assert "predict 9 images" in summary  # the 2 broken files too: each gets a row with its error
    assert f"skipped 1 file(s): {notes} (unsupported extension)" in summary
    single = ImageDataModule(root=str(tmp_path), image_size=8, num_workers=0, predict_path=str(gif))
    assert [p for b in single.predict_dataloader() for p in b["paths"]] == [str(gif)]


def test_hidden_files_are_left_out_not_read_as_broken_images(tmp_path, caplog):
    """A tree copied from a Mac holds a `._x.png` of metadata beside each image, and Jupyter a hidden
    `.ipynb_checkpoints` folder in a class folder: none of them is a sample (none replaced as unreadable, none
    predicted); each split and the predict summary name them as hidden."""
    write_colour_folder(tmp_path, {"train": 2, "test": 1}, broken_test=False)
    for path in [tmp_path / "train" / "0_red" / "broken.jpg", tmp_path / "train" / "1_green" / "empty.png"]:
        path.unlink()
    apple = [tmp_path / split / name / f"._{name}_0.png" for split in ("train", "test") for name in CLASSES]
    for path in apple:
        path.write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")
    checkpoints = tmp_path / "train" / "2_blue" / ".ipynb_checkpoints"
    checkpoints.mkdir()
    Image.new("RGB", (12, 12), (200, 0, 0)).save(checkpoints / "2_blue_0-checkpoint.png")  # red under blue
    dm = ImageDataModule(root=str(tmp_path), image_size=8, batch_size=4, num_workers=0, augment="none",
                         predict_path=str(tmp_path / "train"))
    with caplog.at_level(logging.INFO):
        dm.setup("fit")
        dm.setup("test")
        batches = [b for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader())
                   for b in drain(dm, loader)]
        predicted = [p for b in drain(dm, dm.predict_dataloader()) for p in b["paths"]]
    assert sum(len(b["labels"]) for b in batches) == 9 and not dm.unreadable
    assert all(torch.equal(colour_labels(b["images"]), b["labels"]) for b in batches)
    assert len(predicted) == 6 and not any("/." in p for p in predicted)
    hidden = sorted(path for path, reason in dm.train_set.base.left_out if reason == "hidden")
    assert hidden == sorted(map(str, apple[:3] + [checkpoints / "2_blue_0-checkpoint.png"]))
    summary = next(r.getMessage() for r in caplog.records if "Image data: predict" in r.getMessage())
    assert "predict 6 images" in summary and "skipped 4 file(s)" in summary and "(hidden)" in summary


def snapshot(folder):
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in [folder, *folder.rglob("*")]}


def test_cli_fit_survives_a_corrupt_and_an_empty_image(tmp_path, monkeypatch, caplog):
    data = tmp_path / "images"
    broken = write_colour_folder(data, {"train": 6, "val": 2})
    before = snapshot(data)
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING, logger="infomamba.tasks.image.datamodule"):
        main(["fit", "--task", "image", *TINY_MODEL, f"--data.root={data}", "--data.image_size=8",
              "--data.batch_size=4", "--data.num_workers=0", "--model.patch_size=4", "--trainer.max_epochs=1"])
    assert (tmp_path / "runs" / "image" / "version_0" / "checkpoints" / "last.ckpt").is_file()
    report = caplog.records[-1].getMessage()
    assert "replaced 2 file(s)" in report and broken["garbage"] in report and broken["empty"] in report
    assert snapshot(data) == before


def test_a_predict_file_that_fails_to_decode_gets_its_own_error_row(tmp_path, caplog):
    """Its header passes the scan, its pixels do not decode: it had been replaced by the next image, whose row then
    came twice while the file had none."""
    import json

    import lightning as L

    from infomamba import EncoderConfig
    from infomamba.tasks.image.module import ImageClassifier
    from infomamba.tasks.prediction_writer import JsonLinesPredictionWriter

    write_colour_folder(tmp_path / "data", {"train": 1, "test": 2}, broken_test=False)
    cut = tmp_path / "data" / "test" / "2_blue" / "cut.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(cut)
    cut.write_bytes(cut.read_bytes()[:len(cut.read_bytes()) // 2])  # passes the header scan, fails to decode
    model = ImageClassifier(num_classes=3, encoder=EncoderConfig(dim=16, depth=1), in_chans=3, image_size=8,
                            patch_size=4, class_names=CLASSES)
    model.normalisation = ((0.5,) * 3, (0.5,) * 3)
    for batch_size in (1, 4):
        out = tmp_path / f"out{batch_size}"
        dm = ImageDataModule(image_size=8, batch_size=batch_size, num_workers=0,
                             predict_path=str(tmp_path / "data" / "test"))
        dm.load_state_dict({"mean": [0.5] * 3, "std": [0.5] * 3, "in_chans": 3, "class_names": CLASSES})
        trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False,
                            default_root_dir=out, callbacks=[JsonLinesPredictionWriter()])
        with caplog.at_level(logging.WARNING):
            trainer.predict(model, datamodule=dm, return_predictions=False)
        rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
        files = sorted(str(p) for p in (tmp_path / "data" / "test").rglob("*") if p.is_file())
        assert sorted(row["path"] for row in rows) == files and len(rows) == 7
        failed = [row for row in rows if "error" in row]
        assert [row["path"] for row in failed] == [str(cut)] and failed[0]["label"] is None
        assert all(row["label"] in CLASSES for row in rows if "error" not in row)
    assert any("failed to load" in r.getMessage() and str(cut) in r.getMessage() for r in caplog.records)


def test_a_predict_path_whose_every_image_fails_to_decode_ends_in_a_refusal(tmp_path):
    """Headers that pass the scan, pixels that do not decode, and nothing else: the command had ended with status 0
    and rows of errors only, where a predict path with no readable input is a one-line error (README)."""
    from infomamba.tasks.base import RunRefused

    folder = tmp_path / "inputs"
    folder.mkdir()
    cut = folder / "cut.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(cut)
    cut.write_bytes(cut.read_bytes()[:len(cut.read_bytes()) // 2])
    with pytest.raises(RunRefused, match=r"^no input of data.predict_path could be read: each of the 1 rows of "):
        predicted_rows(folder, tmp_path / "out", 1)
    assert "error" in json.loads((tmp_path / "out" / "predictions.jsonl").read_text())  # the rows are kept


def test_a_split_without_a_readable_image_refuses_the_fit_in_one_line(tmp_path, monkeypatch, capsys):
    """Every file garbage: the first batch's loader worker (the sanity check's, of the carved validation split) finds
    none to read, and the command ends with one line that names the split and its files (not a worker's
    traceback); the data folder is left as it was."""
    for name in CLASSES[:2]:
        (tmp_path / "data" / "train" / name).mkdir(parents=True)
        for i in range(4):
            (tmp_path / "data" / "train" / name / f"{i}.png").write_bytes(b"not a png")
    before = snapshot(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(["fit", "--task", "image", "--data.root", "data", "--data.num_workers=1", *TINY_MODEL,
              "--trainer.max_epochs=1"])
    message = str(stop.value.code)
    assert message.count("\n") == 0 and "Traceback" not in message, message
    assert "no image of the val split can be read" in message and "data/train/" in message, message
    assert "UnidentifiedImageError" in message and snapshot(tmp_path / "data") == before
