"""Text sources: one folder per class (20 Newsgroups layout and a single pool), its errors, and its labels."""

import pytest

from infomamba.tasks.text.datamodule import TextDataModule

NEWSGROUPS = ["sci.space", "alt.atheism", "rec.autos"]  # not in sorted order on purpose
WORDS = "orbit rocket prayer belief engine wheel launch faith brake".split()


def _write_class_folders(root, counts, classes=NEWSGROUPS):
    """``root/<class>/<number>`` files without extension (as 20 Newsgroups ships them); each text names its
    class, so a label can be checked against its text."""
    for c, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(counts):
            (folder / f"{51000 + 10 * c + i}").write_text(f"From: {name}\n{' '.join(WORDS[i % 9:])} group {name}\n")
        (folder / ".DS_Store").write_bytes(b"\x00\x01")  # hidden: not a text


def _labels_follow_folders(dataset, class_names):
    return all(text.endswith(f"group {class_names[label]}") for text, label in zip(dataset.texts, dataset.labels))


def test_train_and_test_class_folders(tmp_path):
    _write_class_folders(tmp_path / "news" / "train", 10)
    _write_class_folders(tmp_path / "news" / "test", 3, NEWSGROUPS[:2])  # a test split may lack a class
    dm = TextDataModule(root=str(tmp_path / "news"), vocab_size=200, batch_size=4)
    dm.setup()
    assert dm.class_names == sorted(NEWSGROUPS) and dm.num_classes == 3
    assert (len(dm.train_dataset) + len(dm.val_dataset), len(dm.test_dataset)) == (30, 6)
    for dataset in (dm.train_dataset, dm.val_dataset, dm.test_dataset):
        assert _labels_follow_folders(dataset, dm.class_names)
    batch = next(iter(dm.train_dataloader()))
    assert batch["labels"].max() < 3


def test_one_pool_of_class_folders_is_carved(tmp_path):
    _write_class_folders(tmp_path, 10)
    dm = TextDataModule(root=str(tmp_path), vocab_size=200, test_fraction=0.2, val_fraction=0.25)
    dm.setup()
    assert dm.class_names == sorted(NEWSGROUPS)
    assert (len(dm.train_dataset), len(dm.val_dataset), len(dm.test_dataset)) == (18, 6, 6)
    for dataset in (dm.train_dataset, dm.val_dataset, dm.test_dataset):
        assert _labels_follow_folders(dataset, dm.class_names)


def test_system_files_in_class_folders_are_left_out_and_named(tmp_path):
    """Windows' Thumbs.db (binary) had been read as a text of its folder's class."""
    _write_class_folders(tmp_path / "news" / "train", 4)
    (tmp_path / "news" / "train" / "rec.autos" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0\x00" * 20)
    (tmp_path / "news" / "train" / "sci.space" / "desktop.ini").write_text("[.ShellClassInfo]\n")
    dm = TextDataModule(root=str(tmp_path / "news"), vocab_size=200, val_fraction=0.25)
    with pytest.warns(UserWarning, match=r"left out 1 system file\(s\) in \S*rec.autos: \['Thumbs.db'\]"):
        dm.setup()
    assert len(dm.train_dataset) + len(dm.val_dataset) + len(dm.test_dataset) == 12
    for dataset in (dm.train_dataset, dm.val_dataset, dm.test_dataset):
        assert _labels_follow_folders(dataset, dm.class_names)


def test_class_folder_errors_name_the_folder(tmp_path):
    _write_class_folders(tmp_path / "a" / "train", 4)
    (tmp_path / "a" / "train" / "talk.politics").mkdir()
    with pytest.raises(ValueError, match=r"class folder \S*talk.politics holds no file"):
        TextDataModule(root=str(tmp_path / "a")).setup("fit")
    _write_class_folders(tmp_path / "b" / "train", 4)
    _write_class_folders(tmp_path / "b" / "test", 2, ["comp.graphics"])
    with pytest.raises(ValueError, match=r"test has class folders absent from the training split: \['comp.graphics'\]"):
        TextDataModule(root=str(tmp_path / "b")).setup("fit")


def test_a_test_folder_without_class_folders_is_an_error_naming_it_not_an_empty_test(tmp_path):
    """Its test split had been empty: `test` ended deep in the sampler, naming no folder."""
    _write_class_folders(tmp_path / "train", 4)
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "README").write_text("test texts go in one folder per class")
    dm = TextDataModule(root=str(tmp_path), tokenizer="bytes")
    dm.setup("fit")
    with pytest.raises(ValueError, match=r"the test split \(\S*test\) holds no text"):
        dm.setup("test")


def test_text_that_is_not_utf8_is_kept_and_counted(tmp_path):
    _write_class_folders(tmp_path, 6)
    (tmp_path / "sci.space" / "51099").write_bytes("café group sci.space".encode("latin-1"))
    with pytest.warns(UserWarning, match=r"1 files in .* are not valid UTF-8 \(e.g. \['51099'\]\)"):
        dm = TextDataModule(root=str(tmp_path), vocab_size=200)
        dm.setup()
    texts = dm.train_dataset.texts + dm.val_dataset.texts + dm.test_dataset.texts
    assert "caf\ufffd group sci.space" in texts


def test_byte_order_mark_of_a_class_file_is_dropped(tmp_path):
    _write_class_folders(tmp_path, 6)
    (tmp_path / "sci.space" / "51099").write_text("\ufeffbom group sci.space")
    (tmp_path / "rec.autos" / "51098").write_bytes(b"\xef\xbb\xbfcaf\xe9 group rec.autos")
    dm = TextDataModule(root=str(tmp_path), vocab_size=200)
    with pytest.warns(UserWarning, match="not valid UTF-8"):
        dm.setup()
    texts = dm.train_dataset.texts + dm.val_dataset.texts + dm.test_dataset.texts
    assert "bom group sci.space" in texts and "caf\ufffd group rec.autos" in texts
