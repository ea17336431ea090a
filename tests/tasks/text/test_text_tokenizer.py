"""TextTokenizer kinds, save/load, and the training-data-keyed cache."""

import importlib.util
import sys
import types

import pytest

from infomamba.tasks.text import tokenizer as tokenizer_module
from infomamba.tasks.text.tokenizer import TextTokenizer, build_tokenizer

CORPUS = [f"the quick brown fox number {i} jumps over the lazy dog, twice." for i in range(200)]


def test_bytes():
    tok = TextTokenizer.utf8_bytes()
    assert tok.encode("aé") == [97 + 2, 0xC3 + 2, 0xA9 + 2]
    assert (tok.pad_id, tok.unk_id, tok.vocab_size) == (0, 1, 258)


@pytest.mark.parametrize("kind", ["bpe", "wordpiece"])
def test_trained_kinds(kind, tmp_path):
    tok = TextTokenizer.train(kind, CORPUS, vocab_size=120)
    assert tok.pad_id == 0 and tok.unk_id == 1
    assert tok.vocab_size <= 120
    assert tok.unk_id not in tok.encode("The lazy fox")  # lower-cased, known
    assert tok.unk_id in tok.encode("ж")  # character never seen in training
    tok.save(tmp_path / "tok.json")
    assert [p.name for p in tmp_path.iterdir()] == ["tok.json"]  # no temporary file left behind
    loaded = TextTokenizer.load(tmp_path / "tok.json")
    assert loaded.kind == kind
    assert loaded.encode_batch(CORPUS[:5]) == tok.encode_batch(CORPUS[:5])


def test_bytes_and_word_save_load(tmp_path):
    for tok in (TextTokenizer.utf8_bytes(), TextTokenizer.word_level(["a", "b"])):
        tok.save(tmp_path / "t.json")
        loaded = TextTokenizer.load(tmp_path / "t.json")
        assert loaded.kind == tok.kind and loaded.encode("a b c") == tok.encode("a b c")


def test_cache_is_keyed_by_training_texts(tmp_path, monkeypatch):
    first = build_tokenizer("bpe", CORPUS, 100, tmp_path)
    (path,) = (tmp_path / "tokenizers").glob("bpe-100-*/tokenizer.json")

    def no_training(*args, **kwargs):
        raise AssertionError("should have been loaded from the cache")

    monkeypatch.setattr(tokenizer_module.TextTokenizer, "train", no_training)
    assert build_tokenizer("bpe", CORPUS, 100, tmp_path).encode(CORPUS[0]) == first.encode(CORPUS[0])
    monkeypatch.undo()
    build_tokenizer("bpe", CORPUS[:100], 100, tmp_path)  # other texts: other key, trained again
    build_tokenizer("wordpiece", CORPUS, 100, tmp_path)
    assert len(list((tmp_path / "tokenizers").iterdir())) == 3




@pytest.mark.skipif(importlib.util.find_spec("transformers") is not None, reason="transformers installed")
def test_pretrained_name_without_transformers_is_a_clear_error():
    with pytest.raises(ImportError, match="pip install transformers"):
        build_tokenizer("bert-base-uncased", CORPUS)


@pytest.mark.parametrize("setting, is_path", [
    ("runs/unsup/checkpoints/last.ckpt", True), ("/tmp/tokenizer", True), ("./tok", True), ("~/tok", True),
    ("my/tokenizer.json", True), ("a/b/c", True), ("C:\\tok", True),
    ("bert-base-uncased", False), ("google/bert_uncased_L-2_H-128_A-2", False),  # hub names: name, org/name
])
def test_a_setting_that_names_a_file_is_told_from_a_hub_name(setting, is_path):
    assert tokenizer_module.looks_like_path(setting) is is_path


def test_a_missing_file_or_a_near_miss_of_a_kind_is_not_read_as_a_hub_name(tmp_path):
    """Both had been said as "needs pip install transformers"."""
    with pytest.raises(FileNotFoundError, match=rf"^data.tokenizer {tmp_path}/gone.ckpt does not exist"):
        build_tokenizer(str(tmp_path / "gone.ckpt"), CORPUS)
    with pytest.raises(ValueError, match=r"^data.tokenizer='wordpeice' is not one of bytes, bpe, wordpiece or a "
                                         r"tokenizer file; did you mean wordpiece\? \(another name is read as a "
                                         r"pretrained Hugging Face tokenizer"):
        build_tokenizer("wordpeice", CORPUS)


def test_an_existing_folder_is_left_to_transformers_as_a_local_pretrained_tokenizer(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # as where transformers is not installed
    with pytest.raises(ImportError, match="pip install transformers"):
        build_tokenizer(str(tmp_path), CORPUS)


def test_a_tokenizer_checkpoint_that_torch_cannot_read_is_named(tmp_path):
    (tmp_path / "cut.ckpt").write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(ValueError, match=rf"^data.tokenizer {tmp_path}/cut.ckpt is not a checkpoint Lightning saved "
                                         r"\(torch.load: \w+\)$"):
        build_tokenizer(str(tmp_path / "cut.ckpt"), CORPUS)


def test_a_pretrained_name_that_cannot_be_loaded_is_a_value_error(monkeypatch):
    """An OSError, which the CLI does not say in one line, had ended the command with a traceback."""
    def unreachable(name):
        raise OSError("offline")

    monkeypatch.setitem(sys.modules, "transformers", types.SimpleNamespace(
        AutoTokenizer=types.SimpleNamespace(from_pretrained=unreachable)))
    with pytest.raises(ValueError, match="Could not load the pretrained tokenizer 'org/name'"):
        build_tokenizer("org/name", CORPUS)
