"""TextTokenizer kinds, save/load, and the training-data-keyed cache."""

import importlib.util

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
