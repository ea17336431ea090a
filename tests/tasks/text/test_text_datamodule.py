"""TextDataModule on small generated fixtures of every layout, plus ListOps, DDP shares and errors."""

import codecs
import csv
import math
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pandas as pd
import pytest
import torch

from infomamba.tasks.base import RunRefused
from infomamba.tasks.text.datamodule import TextDataModule
from infomamba.tasks.text.listops import evaluate_listops
from infomamba.tasks.text.sources import read_predict_texts
from tiny_data import write_sentiment_csv

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma".split()


def _texts(n, offset=0):
    """n distinct short texts; ``trainonly`` appears in every text of the training fixtures."""
    return [" ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(3 + i % 9)) + f" item{i + offset}"
            for i in range(n)]


def _frame(n, labels, offset=0):
    return pd.DataFrame({"text": _texts(n, offset), "label": [labels[i % len(labels)] for i in range(n)]})


def _write(frame, path):
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif path.suffix == ".json":
        frame.to_json(path, orient="records")
    else:
        frame.to_parquet(path)


def _dm(root, **kwargs):
    """A data module with every labelled split set up (stage None)."""
    kwargs.setdefault("vocab_size", 300)
    kwargs.setdefault("batch_size", 8)
    dm = TextDataModule(root=str(root), **kwargs)
    dm.setup()
    return dm


def test_a_labelled_set_of_one_class_is_warned_of(tmp_path):
    """A single-class training set trains to accuracy 1.0 without a word: a wrong label column, or the wrong file."""
    _write(_frame(40, ["pos"]), tmp_path / "train.csv")
    with pytest.warns(UserWarning, match=r"holds one class \('pos'\): a classifier of one class scores 1.0"):
        _dm(tmp_path)


def _write_agnews(path, n, offset=0):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_ALL)
        for i, text in enumerate(_texts(n, offset)):
            writer.writerow([i % 4 + 1, f"Title {i + offset}", text])


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".json", ".parquet"])
@pytest.mark.parametrize("labels", [["neg", "pos", "mixed"], [0, 1, 2]])
def test_generic_layouts(tmp_path, suffix, labels):
    _write(_frame(120, labels), tmp_path / f"train{suffix}")
    _write(_frame(30, labels, offset=1000), tmp_path / f"test{suffix}")
    dm = _dm(tmp_path)
    expected = sorted(map(str, labels)) if isinstance(labels[0], str) else ["0", "1", "2"]
    assert dm.class_names == expected and dm.num_classes == 3
    assert (len(dm.train_dataset), len(dm.val_dataset), len(dm.test_dataset)) == (108, 12, 30)
    assert set(dm.test_dataset.texts) == set(_texts(30, 1000))
    # labels follow the class names
    for text, label in zip(dm.train_dataset.texts, dm.train_dataset.labels):
        assert dm.class_names[label] == str(labels[int(text.split("item")[1]) % 3])


def test_agnews_layout_and_classes(tmp_path):
    _write_agnews(tmp_path / "train.csv", 80)
    _write_agnews(tmp_path / "test.csv", 20, offset=500)
    (tmp_path / "classes.txt").write_text("World\nSports\nBusiness\nSci/Tech\n")
    dm = _dm(tmp_path)
    assert dm.class_names == ["World", "Sports", "Business", "Sci/Tech"]
    assert len(dm.test_dataset) == 20 and len(dm.train_dataset) + len(dm.val_dataset) == 80
    first = dm.test_dataset.texts.index("Title 500. " + _texts(1, 500)[0])
    assert dm.test_dataset.labels[first] == 0


def test_agnews_test_only_is_carved_with_a_warning(tmp_path):
    _write_agnews(tmp_path / "test.csv", 100)
    with pytest.warns(UserWarning, match="NOT comparable"):
        dm = _dm(tmp_path, test_fraction=0.2, val_fraction=0.1)
    sizes = (len(dm.train_dataset), len(dm.val_dataset), len(dm.test_dataset))
    assert sizes == (72, 8, 20)
    parts = [set(d.texts) for d in (dm.train_dataset, dm.val_dataset, dm.test_dataset)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])


def test_agnews_row_errors_name_the_file_and_line(tmp_path):
    rows = '"1","Two lines","first\nsecond"\n'
    rows += "".join(f'"{i % 4 + 1}","T{i}","{t}"\n' for i, t in enumerate(_texts(8)))
    for bad, message in (('"x","T","t"', r"line 11: class 'x' is not an AG-News class"),
                         ('"2","a","b","c","d","e","f"', r"line 11 has 7 fields; expected 3"),
                         ('"0","T","t"', r"line 11: class '0' is not an AG-News class")):
        (tmp_path / "train.csv").write_text(rows + bad + "\n")
        with pytest.raises(ValueError, match=rf"^\S*train\.csv: {message}[^\n]*$"):
            TextDataModule(root=str(tmp_path)).setup("fit")


def test_agnews_class_out_of_range_is_reported_as_written_in_the_file(tmp_path):
    for name in ("official", "carved"):
        (tmp_path / name).mkdir()
    _write_agnews(tmp_path / "official" / "train.csv", 40)
    (tmp_path / "official" / "test.csv").write_text('"2","T","a b"\n"7","T","c d"\n')
    with pytest.raises(ValueError, match=r"test\.csv: label 7 is not a class id of the training labels \(1\.\.4\)"):
        _dm(tmp_path / "official")
    _write_agnews(tmp_path / "carved" / "test.csv", 40)  # carved splits keep how the file writes classes
    with open(tmp_path / "carved" / "test.csv", "a") as f:
        f.write('"5","T","e f"\n')
    (tmp_path / "carved" / "classes.txt").write_text("World\nSports\nBusiness\nSci/Tech\n")
    with pytest.warns(UserWarning, match="NOT comparable"), pytest.raises(ValueError, match=r"label 5 .*\(1\.\.4\)"):
        _dm(tmp_path / "carved")


def test_agnews_rows_without_text_are_skipped_and_counted(tmp_path):
    _write_agnews(tmp_path / "train.csv", 40)
    with open(tmp_path / "train.csv", "a") as f:
        f.write('"2","Lone title",""\n"3","","Lone description"\n"4","",""\n"1","  ","  "\n')
    with pytest.warns(UserWarning, match=r"skipped 2 empty texts in \S*train\.csv"):
        dm = _dm(tmp_path)
    datasets = (dm.train_dataset, dm.val_dataset, dm.test_dataset)
    labelled = {t: y for d in datasets for t, y in zip(d.texts, d.labels)}
    assert len(labelled) == 42
    assert labelled["Lone title"] == 1 and labelled["Lone description"] == 2
    assert labelled["Title 0. " + _texts(1)[0]] == 0


def test_byte_order_marks_are_dropped(tmp_path):
    _write_agnews(tmp_path / "train.csv", 40)
    for name, text in (("train.csv", (tmp_path / "train.csv").read_text()),
                       ("classes.txt", "World\nSports\nBusiness\nSci/Tech\n"), ("new.txt", "BOM first line\nnext\n")):
        (tmp_path / name).write_text("\ufeff" + text)
    dm = _dm(tmp_path, predict_path=str(tmp_path / "new.txt"))
    assert dm.class_names == ["World", "Sports", "Business", "Sci/Tech"]
    assert "Title 0. " + _texts(1)[0] in dm.train_dataset.texts + dm.val_dataset.texts + dm.test_dataset.texts
    dm.setup("predict")
    assert sorted(t for b in dm.predict_dataloader() for t in b["texts"]) == ["BOM first line", "next"]
    (tmp_path / "new.jsonl").write_text('\ufeff{"text": "a b"}\n{"text": "c"}\n')
    assert read_predict_texts(tmp_path / "new.jsonl", "text") == (["a b", "c"], [0, 1])


@pytest.mark.parametrize("point_at_acl", [False, True])
def test_aclimdb_tree(tmp_path, point_at_acl):
    for split, n in (("train", 40), ("test", 10)):
        for label in ("neg", "pos"):
            folder = tmp_path / "aclImdb" / split / label
            folder.mkdir(parents=True)
            for i, text in enumerate(_texts(n, offset=hash((split, label)) % 10000)):
                (folder / f"{i}_7.txt").write_text(f"{text}<br /><br />more {label} words")
    (tmp_path / "aclImdb" / "train" / "unsup").mkdir()
    dm = _dm(tmp_path / "aclImdb" if point_at_acl else tmp_path)
    assert dm.class_names == ["neg", "pos"]
    assert len(dm.test_dataset) == 20 and len(dm.train_dataset) + len(dm.val_dataset) == 80
    assert all("<br" not in t and "  more" in t for t in dm.train_dataset.texts)
    assert all(dm.class_names[y] in t for t, y in zip(dm.test_dataset.texts, dm.test_dataset.labels))


def test_single_file_root_carves_validation_and_test(tmp_path):
    _write(_frame(100, ["a", "b"]), tmp_path / "reviews.parquet")
    dm = _dm(tmp_path / "reviews.parquet", test_fraction=0.2, val_fraction=0.25)
    assert (len(dm.train_dataset), len(dm.val_dataset), len(dm.test_dataset)) == (60, 20, 20)


def test_splits_disjoint_and_deterministic_by_seed(tmp_path):
    _write(_frame(200, ["x", "y"]), tmp_path / "train.csv")
    _write(_frame(20, ["x", "y"], offset=900), tmp_path / "test.csv")
    a, b, c = (_dm(tmp_path, seed=s) for s in (0, 0, 1))
    assert not set(a.train_dataset.texts) & set(a.val_dataset.texts)
    assert not set(a.train_dataset.texts) & set(a.test_dataset.texts)
    assert a.val_dataset.texts == b.val_dataset.texts
    assert set(a.val_dataset.texts) != set(c.val_dataset.texts)


def test_tokenizer_trained_on_training_split_only(tmp_path):
    train = _frame(100, ["x", "y"])
    train.loc[:, "text"] = train["text"] + " trainonlyword"
    test = _frame(20, ["x", "y"], offset=500)
    test.loc[:, "text"] = test["text"] + " testonlyword Жж"
    _write(train, tmp_path / "train.csv")
    _write(test, tmp_path / "test.csv")
    dm = _dm(tmp_path, vocab_size=2000)
    tok = dm.text_tokenizer
    assert tok.token_to_id("trainonlyword") is not None  # frequent training words become tokens ...
    assert tok.token_to_id("testonlyword") is None  # ... test-only ones do not
    assert tok.unk_id in tok.encode("Жж")
    assert any(tok.unk_id in ids.tolist() for ids in dm.test_dataset.ids)


@pytest.mark.parametrize("kind", ["bytes", "wordpiece"])
def test_batches_padding_and_truncation(tmp_path, kind):
    _write(_frame(60, [0, 1]), tmp_path / "train.jsonl")
    dm = _dm(tmp_path, tokenizer=kind, max_length=20, batch_size=7)
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        for batch in loader:
            ids, mask, labels = batch["input_ids"], batch["padding_mask"], batch["labels"]
            assert ids.dtype == torch.long and mask.dtype == torch.bool and labels.dtype == torch.long
            assert ids.shape == mask.shape and ids.shape[0] == labels.shape[0] <= 7
            assert ids.shape[1] <= 20 and (~mask).any(1).all()
            assert (ids[mask] == dm.pad_id).all() and (ids[~mask] != dm.pad_id).all()
            lengths = (~mask).sum(1)
            assert lengths.max() == ids.shape[1]  # padded to the batch maximum only
            assert (mask == (torch.arange(ids.shape[1]) >= lengths[:, None])).all()  # right padding


def test_pad_multiple_rounds_batch_lengths_up_to_max_length(tmp_path):
    """Bytes texts cut at max_length 70, pad_multiple 16: every batch is 32, 48, 64 or (the cap) 70 long, padding
    only added at the right, the texts untouched."""
    _write(_frame(60, [0, 1]), tmp_path / "train.jsonl")
    plain = _dm(tmp_path, tokenizer="bytes", max_length=70, batch_size=7)
    padded = _dm(tmp_path, tokenizer="bytes", max_length=70, batch_size=7, pad_multiple=16)
    widths = set()
    for a, b in zip(plain.train_dataloader(), padded.train_dataloader()):  # same seed: same batches
        n = a["input_ids"].shape[1]
        assert b["input_ids"].shape[1] == min(-(-n // 16) * 16, 70)
        assert torch.equal(b["input_ids"][:, :n], a["input_ids"]) and b["padding_mask"][:, n:].all()
        assert (b["input_ids"][:, n:] == padded.pad_id).all()
        widths.add(b["input_ids"].shape[1])
    assert widths <= {16, 32, 48, 64, 70} and len(widths) > 1
    with pytest.raises(ValueError, match="pad_multiple"):
        TextDataModule(pad_multiple=0)


def test_a_negative_worker_count_is_refused_when_the_data_module_is_built():
    """torch's DataLoader had refused it with a traceback at the first loader."""
    with pytest.raises(ValueError, match=r"^data.num_workers must be >= 0, got -1.$"):
        TextDataModule(num_workers=-1)


def test_max_tokens_batches(tmp_path):
    _write(_frame(80, [0, 1]), tmp_path / "train.csv")
    dm = _dm(tmp_path, tokenizer="bytes", max_length=64, max_tokens=256)
    for batch in dm.train_dataloader():
        assert batch["input_ids"].numel() <= 256


def test_a_token_budget_below_the_longest_text_is_refused_in_setup(tmp_path):
    """setup, whose errors the CLI says in one line: the sampler, built in the dataloader hook, had raised it as a
    22-frame traceback."""
    _write(_frame(80, [0, 1]), tmp_path / "train.csv")
    with pytest.raises(ValueError, match=r"^data.max_tokens=16 is smaller than the longest sample \(\d+ tokens\); "
                                         r"raise data.max_tokens or truncate the samples \(data.max_length\).$"):
        _dm(tmp_path, tokenizer="bytes", max_length=64, max_tokens=16)


def test_ddp_ranks_share_the_evaluation_set_exactly_once(tmp_path):
    _write(_frame(100, [0, 1]), tmp_path / "train.csv")
    _write(_frame(37, [0, 1], offset=300), tmp_path / "test.csv")
    dm = _dm(tmp_path, batch_size=4)
    seen = []
    for rank in range(2):
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=2)
        seen += [t for batch in dm.test_dataloader() for t in batch["labels"].tolist()]
        assert len(dm.train_dataloader()) == math.ceil(len(dm.train_dataset) / 4) // 2
    assert len(seen) == 37


def test_empty_texts_skipped_and_counted(tmp_path):
    frame = _frame(30, ["a", "b"])
    frame.loc[[3, 7], "text"] = ["", "   "]
    _write(frame, tmp_path / "train.parquet")
    with pytest.warns(UserWarning, match="skipped 2 empty texts"):
        dm = _dm(tmp_path)
    assert len(dm.train_dataset) + len(dm.val_dataset) + len(dm.test_dataset) == 28


def test_predict(tmp_path):
    _write(_frame(40, [0, 1]), tmp_path / "train.csv")
    (tmp_path / "new.txt").write_text("alpha beta\n\ngamma delta epsilon\n")
    dm = _dm(tmp_path, predict_path=str(tmp_path / "new.txt"))
    dm.setup("predict")
    batches = list(dm.predict_dataloader())
    rows = {i: t for b in batches for i, t in zip(b["index"].tolist(), b["texts"])}
    assert rows == {0: "alpha beta", 2: "gamma delta epsilon"}
    assert "labels" not in batches[0]


@pytest.mark.parametrize("key, value, low", [("batch_size", 0, 1), ("max_length", -5, 1), ("listops_size", 3, 4)])
def test_a_size_out_of_range_is_named_with_its_value(key, value, low):
    """It had been "Need max_length >= 1, batch_size >= 1 and listops_size >= 4.", naming neither key nor value."""
    with pytest.raises(ValueError, match=rf"^data: {key} must be >= {low}, got {value}$"):
        TextDataModule(**{key: value})


def test_predict_lines_that_are_not_utf8_are_skipped_counted_and_named(tmp_path):
    """One stray byte had refused the whole file; now its line alone is left out, named in one warning, and the
    other lines keep their numbers (a .txt line is one text; a table's row may span lines, so a table is refused)."""
    lines = ["caf\u00e9 au lait".encode("latin-1"), "caf\u00e9 cr\u00e8me".encode(), b"tea", b"\xff\xfe"]
    (tmp_path / "mixed.txt").write_bytes(codecs.BOM_UTF8 + b"\r\n".join(lines) + b"\n")
    with pytest.warns(UserWarning) as said:
        assert read_predict_texts(tmp_path / "mixed.txt", "text") == (["caf\u00e9 cr\u00e8me", "tea"], [1, 2])
    message, = [str(w.message) for w in said if "UTF-8" in str(w.message)]
    assert message == (f"Text data: data.predict_path {tmp_path}/mixed.txt: skipped 2 of 4 lines, not UTF-8: line "
                       "1 (byte 0xe9), 4 (byte 0xff); the other lines keep their numbers.")


def test_predict_errors_name_the_file_before_any_data_is_read(tmp_path):
    data = tmp_path / "absent_data"  # never read: the predict file is checked when the module is built
    with pytest.raises(FileNotFoundError, match="missing.txt does not exist"):
        TextDataModule(root=str(data), predict_path=str(tmp_path / "missing.txt"))
    pd.DataFrame({"body": ["a b"]}).to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(ValueError, match=r"p\.csv.*\['text'\].*\['body'\]"):
        TextDataModule(root=str(data), predict_path=str(tmp_path / "p.csv"))
    for name, content in (("empty.txt", ""), ("blank.txt", "\n  \n<br />\n")):
        (tmp_path / name).write_text(content)
        with pytest.raises(ValueError, match=rf"^data.predict_path \S*{name} holds no text to predict[^\n]*$"):
            TextDataModule(root=str(data), predict_path=str(tmp_path / name))
    (tmp_path / "latin.csv").write_bytes("text\ncaf\u00e9 au lait\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"^data.predict_path \S*latin.csv: line 2 is not UTF-8 \(byte 0xe9\); "
                                         r"expected UTF-8 text\.$"):
        TextDataModule(root=str(data), predict_path=str(tmp_path / "latin.csv"))
    (tmp_path / "ragged.csv").write_text("text,label\na,1\nb,2,3\n")
    with pytest.raises(ValueError, match=r"^data.predict_path \S*ragged\.csv: not a valid \.csv table \([^\n]*line 3"):
        TextDataModule(root=str(data), predict_path=str(tmp_path / "ragged.csv"))


def test_input_errors(tmp_path):
    with pytest.raises(FileNotFoundError) as missing_root:
        TextDataModule(root=str(tmp_path / "nowhere")).setup("fit")
    assert str(missing_root.value) == (f"data.root {tmp_path}/nowhere does not exist (the layouts it accepts: "
                                       "`--help`, under --data.root)")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no recognised layout"):
        TextDataModule(root=str(tmp_path / "empty")).setup("fit")
    pd.DataFrame({"review": ["a b"], "label": [1]}).to_csv(tmp_path / "train.csv", index=False)
    with pytest.raises(ValueError, match=r"train\.csv.*\['text'\].*\['review', 'label'\]"):
        TextDataModule(root=str(tmp_path)).setup("fit")
    other = tmp_path / "other"
    other.mkdir()
    _write(_frame(20, ["a", "b"]), other / "train.csv")
    _write(_frame(5, ["a", "c"]), other / "test.csv")
    with pytest.raises(ValueError, match=r"test\.csv: label 'c'"):
        _dm(other)
    with pytest.raises(ValueError, match="not both"):
        TextDataModule(root="x", hub_id="y")


def test_hub_dataset_through_a_stubbed_load_dataset(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["no", "yes"])})
    stub = datasets.DatasetDict({
        split: datasets.Dataset.from_pandas(_frame(n, [0, 1], offset), features=features, preserve_index=False)
        for split, n, offset in (("train", 50, 0), ("test", 10, 100))
    })
    monkeypatch.setattr(datasets, "load_dataset", lambda hub_id: stub)
    dm = TextDataModule(hub_id="someone/reviews", cache_dir=str(tmp_path), vocab_size=200)
    assert dm.class_names == ["no", "yes"]
    dm.setup()
    assert (len(dm.train_dataset), len(dm.val_dataset), len(dm.test_dataset)) == (45, 5, 10)


def test_listops_default_and_a_lightning_run(tmp_path):
    dm = TextDataModule(listops_size=64, batch_size=16)
    assert dm.vocab_size == 17 and dm.num_classes == 10 and dm.pad_id == 0  # usable before setup
    dm.setup()
    assert not set(dm.train_dataset.texts) & (set(dm.val_dataset.texts) | set(dm.test_dataset.texts))
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape[0] == 16 and batch["input_ids"].shape[1] <= 200
    short = TextDataModule(listops_size=64, max_length=30)  # expressions are generated short, never cut
    short.setup()
    assert max(short.train_dataset.lengths) <= 30
    assert all(evaluate_listops(t) == y for t, y in zip(short.test_dataset.texts, short.test_dataset.labels))

    class Tiny(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(17, 8)
            self.head = torch.nn.Linear(8, 10)

        def forward(self, batch):
            hidden = self.embed(batch["input_ids"]) * (~batch["padding_mask"])[..., None]
            return self.head(hidden.sum(1))

        def training_step(self, batch, _):
            return torch.nn.functional.cross_entropy(self(batch), batch["labels"])

        def predict_step(self, batch, _):
            return batch["index"]

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    (tmp_path / "p.txt").write_text("[MAX 1 2 ]\n[SM 3 4 ]\n")
    dm = TextDataModule(listops_size=64, batch_size=16, predict_path=str(tmp_path / "p.txt"))
    trainer = L.Trainer(max_epochs=2, use_distributed_sampler=False, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(Tiny(), datamodule=dm)
    assert trainer.train_dataloader.batch_sampler.epoch == 1  # Lightning reached set_epoch
    predictions = trainer.predict(Tiny(), datamodule=dm)
    assert sorted(i for p in predictions for i in p.tolist()) == [0, 1]


def test_first_batch_of_a_class_sorted_test_set_mixes_classes(tmp_path):
    """Sorted by label, with every text truncated to the same length, the file order would decide the
    batches; the evaluation order is shuffled once, so a partial evaluation sees both classes."""
    _write(_frame(40, ["neg", "pos"]), tmp_path / "train.csv")
    test = pd.DataFrame({"text": _texts(40, 500), "label": ["neg"] * 20 + ["pos"] * 20})
    _write(test, tmp_path / "test.csv")
    dm = _dm(tmp_path, tokenizer="bytes", max_length=8, batch_size=8)
    assert set(dm.test_dataset.lengths) == {8}
    assert len(set(next(iter(dm.test_dataloader()))["labels"].tolist())) == 2
    seen = []
    for rank in range(2):  # still every sample exactly once over the ranks
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=2)
        seen += [t for batch in dm.test_dataloader() for t in batch["input_ids"].tolist()]
    assert sorted(seen) == sorted(ids.tolist() for ids in dm.test_dataset.ids)


def test_a_checkpoints_tokenizer_and_class_order_replace_the_data_settings(tmp_path):
    data = tmp_path / "reviews"
    write_sentiment_csv(data)
    trained = TextDataModule(root=str(data), vocab_size=60, cache_dir=str(tmp_path / "cache"))
    trained.setup("fit")
    state = {**trained.state_dict(), "class_names": ["pos", "neg"]}  # a checkpoint whose classes are the other way
    dm = TextDataModule(root=str(data), tokenizer="bytes", batch_size=64, cache_dir=str(tmp_path / "cache"))
    dm.setup("test")
    before = dm.test_dataset
    with pytest.warns(UserWarning, match="checkpoint's tokenizer or class names differ"):
        dm.load_state_dict(state)
    assert dm.state_dict() == state and dm.class_names == ["pos", "neg"]
    batch = next(iter(dm.test_dataloader()))
    after = dm.test_dataset
    assert sorted(after.texts) == sorted(before.texts)
    label_of = dict(zip(before.texts, before.labels))
    assert after.labels == [1 - label_of[text] for text in after.texts]  # the checkpoint's label ids
    tokenizer = trained.text_tokenizer
    assert [ids.tolist() for ids in after.ids] == tokenizer.encode_batch(after.texts)
    assert batch["input_ids"].max() < tokenizer.vocab_size < max(ids.max() for ids in before.ids)


def test_a_predict_line_holding_a_form_feed_or_line_separator_stays_one_text(tmp_path):
    lines = ["first\u2028still first", "second\x0cstill second", "", "fourth\x1cstill fourth"]
    (tmp_path / "new.txt").write_text("\r\n".join(lines) + "\r\n", newline="")
    assert read_predict_texts(tmp_path / "new.txt", "text") == ([lines[0], lines[1], lines[3]], [0, 1, 3])


def test_a_predict_path_that_is_a_folder_is_named_as_one_not_as_missing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "texts").mkdir()
    with pytest.raises(FileNotFoundError, match=r"^data.predict_path texts is a folder; expected one file: \.txt \(one "
                                                r"text per line\) or one of .*\(relative to the working folder "):
        read_predict_texts(Path("texts"), "text")
    with pytest.raises(FileNotFoundError, match=r"^data.predict_path gone.txt does not exist \(relative to"):
        read_predict_texts(Path("gone.txt"), "text")


def test_integer_labels_from_1_are_reported_as_leaving_class_0_untrained(tmp_path):
    _write(_frame(30, [1, 2]), tmp_path / "train.csv")
    _write(_frame(10, [2, 1], offset=1000), tmp_path / "test.csv")
    with pytest.warns(UserWarning, match=r"class id\(s\) \[0\] of \['0', '1', '2'\] never occur in \S*train\.csv"):
        assert _dm(tmp_path, tokenizer="bytes").class_names == ["0", "1", "2"]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_text_column_of_numbers_is_an_error_naming_the_column_and_row(tmp_path, suffix):
    frame = _frame(20, ["a", "b"]).assign(id=range(7, 27))
    _write(frame, tmp_path / f"train{suffix}")
    with pytest.raises(ValueError, match=rf"train\{suffix}: column 'id' holds 7 in data row 1, not a text"):
        _dm(tmp_path, tokenizer="bytes", text_column="id")


def test_a_jsonl_record_that_is_not_json_is_an_error_naming_its_line(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"text": "a b", "label": "x"}\n\n{"text": "c" "label": "y"}\n')
    with pytest.raises(ValueError, match=r"train\.jsonl: line 3 is not a JSON record"):
        _dm(tmp_path, tokenizer="bytes")


def test_editing_the_classes_txt_beside_a_single_file_is_not_answered_from_the_cached_card(tmp_path):
    _write(_frame(20, [0, 1]), tmp_path / "pool.csv")
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    assert TextDataModule(root=str(tmp_path / "pool.csv"), tokenizer="bytes").class_names == ["cat", "dog"]
    (tmp_path / "classes.txt").write_text("negative\npositive\n")
    assert TextDataModule(root=str(tmp_path / "pool.csv"), tokenizer="bytes").class_names == ["negative", "positive"]


def test_an_evaluation_of_a_moved_checkpoint_validates_on_the_split_it_held_out(tmp_path):
    """Without its run's config.yaml, an evaluation had carved validation with the default seed and fraction, out of
    texts the checkpoint trained on; it takes them from the checkpoint's data hyperparameters now."""
    from infomamba.cli import trained_data
    from infomamba.tasks.registry import get_task

    _write(_frame(60, ["a", "b"]), tmp_path / "train.csv")
    fit = _dm(tmp_path, tokenizer="bytes", seed=3, val_fraction=0.5)
    for task in ("text", "text_mlm"):
        data = {"root": str(tmp_path), "tokenizer": "bytes", "seed": 0, "val_fraction": 0.1, "test_fraction": 0.2}
        trained_data(data, dict(fit.hparams), get_task(task).trained_data, given=set())
        evaluation = _dm(**data)
        assert set(evaluation.val_dataset.texts) == set(fit.val_dataset.texts)


def test_kaggles_ag_news_csv_with_its_header_is_read_as_ag_news(tmp_path):
    """Its header had made it a generic table: the user named `Class Index` the label column and got 5 classes
    (0 never trained) and texts without their titles."""
    for split, n, offset in (("train", 40, 0), ("test", 12, 500)):
        _write_agnews(tmp_path / f"{split}.csv", n, offset)
        rows = (tmp_path / f"{split}.csv").read_text()
        (tmp_path / f"{split}.csv").write_text('"Class Index","Title","Description"\n' + rows)
    dm = _dm(tmp_path, tokenizer="bytes")
    assert dm.class_names == ["0", "1", "2", "3"] and len(dm.test_dataset) == 12
    first = dm.test_dataset.texts.index("Title 500. " + _texts(1, 500)[0])
    assert dm.test_dataset.labels[first] == 0


def test_a_validation_file_beside_train_is_said_to_be_unread(tmp_path):
    """Validation is carved from train: a dev.csv beside it had been ignored without a word."""
    _write(_frame(20, ["a", "b"]), tmp_path / "train.csv")
    _write(_frame(6, ["a", "b"], offset=500), tmp_path / "dev.csv")
    with pytest.warns(UserWarning, match=r"\['dev\.csv'\] in \S+ not read: validation is carved from the training"):
        dm = _dm(tmp_path, tokenizer="bytes")
    assert not set(dm.val_dataset.texts) & set(_texts(6, 500))


def test_string_labels_are_read_without_the_blanks_around_them(tmp_path):
    """"pos " had been a class of its own beside "pos" (a csv written with a space after each comma)."""
    _write(_frame(20, ["neg", "pos", " pos", "neg "]), tmp_path / "train.csv")
    _write(_frame(6, ["pos ", "neg"], offset=500), tmp_path / "test.csv")
    dm = _dm(tmp_path, tokenizer="bytes")
    assert dm.class_names == ["neg", "pos"] and sorted(set(dm.test_dataset.labels)) == [0, 1]


def test_rows_without_a_label_are_an_error_naming_the_first(tmp_path):
    frame = _frame(20, ["neg", "pos"])
    frame.loc[[6, 9], "label"] = ["  ", None]
    _write(frame, tmp_path / "train.jsonl")
    with pytest.raises(ValueError, match=r"train\.jsonl: 2 rows have no label in column 'label' \(the first: data "
                                         r"row 7\)"):
        _dm(tmp_path, tokenizer="bytes")


def test_an_evaluated_split_with_fewer_samples_than_ranks_is_refused_in_one_line(tmp_path):
    """Rank 1 would be dealt no sample of the one validation text: Lightning had stopped that rank alone with a
    traceback ("has zero length") while rank 0 waited in the metric sync. Predict still allows such a rank."""
    (tmp_path / "p.txt").write_text("[MAX 1 2 ]\n")
    dm = TextDataModule(listops_size=4, predict_path=str(tmp_path / "p.txt"))
    dm.trainer = SimpleNamespace(global_rank=1, world_size=2)
    for split, loader in (("validation", dm.val_dataloader), ("test", dm.test_dataloader)):
        with pytest.raises(RunRefused, match=rf"^the {split} split has 1 sample\(s\) for 2 processes \(DDP ranks\), "
                                             r"and every rank must evaluate .* \(--trainer.devices=1\)"):
            loader()
    assert len(dm.predict_dataloader()) == 0
    dm.trainer = SimpleNamespace(global_rank=0, world_size=1)
    assert len(dm.val_dataloader()) == 1


def test_a_fractional_limit_that_leaves_a_rank_no_evaluation_batch_is_refused_in_one_line():
    """3 validation batches on 2 ranks are 2 and 1: limit_val_batches=0.5 is 1 batch for rank 0 and none for rank
    1, where Lightning stopped with a traceback while rank 0 waited in the metric sync (one process: 1 of 3)."""
    dm = TextDataModule(listops_size=96, batch_size=8)
    dm.trainer = SimpleNamespace(global_rank=0, world_size=2, limit_val_batches=0.5, limit_test_batches=0.5)
    for split, loader in (("validation", dm.val_dataloader), ("test", dm.test_dataloader)):
        with pytest.raises(RunRefused, match=rf"limit_(val|test)_batches=0.5 leaves a rank none of the {split} split: "
                                             r"its 2 process\(es\) take 1 batch\(es\) or more each, .* at least 1"):
            loader()
    for rank, world, limit, batches in ((0, 2, 1.0, 2), (1, 2, 1, 1), (1, 2, 0.0, 1), (0, 1, 0.5, 3)):
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=world, limit_val_batches=limit)
        assert len(dm.val_dataloader()) == batches


def test_a_fractional_predict_limit_that_leaves_a_rank_no_batch_is_refused_in_one_line(tmp_path):
    """21 inputs in 3 batches on 2 ranks: limit_predict_batches=0.5 had stopped rank 1 with a traceback."""
    (tmp_path / "p.txt").write_text("".join(f"[MAX {i} 2 ]\n" for i in range(21)))
    dm = TextDataModule(listops_size=64, batch_size=8, predict_path=str(tmp_path / "p.txt"))
    dm.trainer = SimpleNamespace(global_rank=1, world_size=2, limit_predict_batches=0.5)
    with pytest.raises(RunRefused, match=r"^trainer.limit_predict_batches=0.5 leaves a rank none of the predict split"):
        dm.predict_dataloader()
    dm.trainer = SimpleNamespace(global_rank=1, world_size=2, limit_predict_batches=1.0)
    assert len(dm.predict_dataloader()) == 1
