"""Masked-LM pretraining on texts without labels, and the classifier's refusal of them."""

import pandas as pd
import pytest
import torch

from infomamba import EncoderConfig
from infomamba.tasks.text.datamodule import MaskedTextDataModule, TextDataModule
from infomamba.tasks.text.module import TextClassifier
from infomamba.tasks.text.pretrain import MaskedTextPretraining

WORDS = "orbit rocket prayer belief engine wheel launch faith brake".split()
ENCODER = EncoderConfig(dim=16, depth=1)


def _texts(n, offset=0):
    return [f"{WORDS[i % 9]} {WORDS[(i * 4) % 9]} review {i + offset}" for i in range(n)]


def _corpus(tmp_path, layout, n=40):
    """``n`` unlabelled texts in ``layout``; the path to give as data.root."""
    texts = _texts(n)
    if layout == "txt":
        (tmp_path / "corpus.txt").write_text("\n".join(texts) + "\n\n")  # a blank line is no text
        return tmp_path / "corpus.txt"
    if layout == "txt folder":  # aclImdb/train/unsup: one review per file
        (tmp_path / "unsup").mkdir()
        for i, text in enumerate(texts):
            (tmp_path / "unsup" / f"{i}_0.txt").write_text(text)
        return tmp_path / "unsup"
    pd.DataFrame({"text": texts}).to_csv(tmp_path / "texts.csv", index=False)
    return tmp_path / "texts.csv"


@pytest.mark.parametrize("layout", ["txt", "txt folder", "csv without labels"])
def test_an_unlabelled_corpus_is_carved_into_disjoint_train_and_validation_by_the_seed(tmp_path, layout):
    root = _corpus(tmp_path, layout)
    dm = MaskedTextDataModule(root=str(root), tokenizer="bytes", batch_size=8, val_fraction=0.25, seed=1)
    dm.setup("fit")
    train, val = set(dm.train_dataset.texts), set(dm.val_dataset.texts)
    assert not train & val and train | val == set(_texts(40)) and len(val) == 10
    assert "labels" not in next(iter(dm.train_dataloader())) and dm.class_names == []
    again = MaskedTextDataModule(root=str(root), tokenizer="bytes", val_fraction=0.25, seed=1)
    again.setup("validate")
    assert set(again.val_dataset.texts) == val
    with pytest.raises(ValueError, match="holds unlabelled texts and no test file"):
        again.setup("test")


@pytest.mark.parametrize("layout", ["txt", "txt folder", "csv without labels"])
def test_the_classifier_refuses_unlabelled_texts_in_one_line_naming_them(tmp_path, layout):
    root = _corpus(tmp_path, layout)
    with pytest.raises(ValueError, match="--task text_mlm") as error:
        TextDataModule(root=str(root), tokenizer="bytes").setup("fit")
    message = str(error.value)
    assert "\n" not in message and str(root) in message


def test_mlm_on_a_labelled_root_ignores_the_labels_and_carves_as_the_classifier(tmp_path):
    """The classifier's validation and test texts never pretrain; the tokenizer is the classifier's."""
    texts = _texts(60)
    pd.DataFrame({"text": texts, "label": ["pos", "neg", None] * 20}).to_csv(tmp_path / "pool.csv", index=False)
    mlm = MaskedTextDataModule(root=str(tmp_path / "pool.csv"), vocab_size=80, batch_size=8)
    mlm.setup()
    pd.DataFrame({"text": texts, "label": ["pos", "neg", "neg"] * 20}).to_csv(tmp_path / "pool.csv", index=False)
    classifier = TextDataModule(root=str(tmp_path / "pool.csv"), vocab_size=80, batch_size=8)
    classifier.setup()
    for split in ("train", "val", "test"):
        assert getattr(mlm, f"{split}_dataset").texts == getattr(classifier, f"{split}_dataset").texts
    assert not set(mlm.train_dataset.texts) & set(classifier.test_dataset.texts)
    assert mlm.text_tokenizer.to_json() == classifier.text_tokenizer.to_json() and mlm.class_names == []


def test_a_corpus_pretraining_initialises_a_classifier_given_its_tokenizer(tmp_path):
    """Pretrained on a corpus, the MLM's tokenizer is not the one the labelled data would train: init_from refuses
    it, naming --data.tokenizer; with the checkpoint named there, the embeddings start as the MLM's."""
    mlm_data = MaskedTextDataModule(root=str(_corpus(tmp_path, "txt", 80)), vocab_size=60)
    mlm = MaskedTextPretraining(num_classes=mlm_data.num_classes, class_names=mlm_data.class_names,
                                vocab_size=mlm_data.vocab_size, tokenizer=mlm_data.text_tokenizer, encoder=ENCODER)
    checkpoint = tmp_path / "mlm.ckpt"
    saved = {"state_dict": mlm.state_dict()}
    mlm.on_save_checkpoint(saved)
    torch.save(saved, checkpoint)
    labelled = tmp_path / "labelled"
    labelled.mkdir()
    pd.DataFrame({"text": [t.upper() + " extra" for t in _texts(30, 500)], "label": ["a", "b"] * 15}).to_csv(
        labelled / "train.csv", index=False)

    def classifier(**data):
        dm = TextDataModule(root=str(labelled), vocab_size=60, **data)
        return TextClassifier(num_classes=dm.num_classes, vocab_size=dm.vocab_size, pad_id=dm.pad_id,
                              tokenizer=dm.text_tokenizer, encoder=ENCODER)

    with pytest.raises(ValueError, match=f"--data.tokenizer={checkpoint}"):
        classifier().load_pretrained(checkpoint)
    model = classifier(tokenizer=str(checkpoint))
    model.load_pretrained(checkpoint)
    assert model.tokenizer.to_json() == mlm.tokenizer.to_json()
    assert torch.equal(model.embed.weight, mlm.embed.weight) and torch.equal(model.pos, mlm.pos)


def test_only_a_test_file_of_unlabelled_texts_is_not_pretrained_on(tmp_path):
    (tmp_path / "test.txt").write_text("\n".join(_texts(20)))
    with pytest.raises(ValueError, match=r"has only a test file .*give that file as data.root"):
        MaskedTextDataModule(root=str(tmp_path), tokenizer="bytes").setup("fit")
    dm = MaskedTextDataModule(root=str(tmp_path / "test.txt"), tokenizer="bytes")
    dm.setup("fit")
    assert len(dm.train_dataset) + len(dm.val_dataset) == 20
