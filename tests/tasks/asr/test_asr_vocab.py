"""Transcript normalisation, character / subword vocabularies and CTC greedy decoding."""

import re

import pytest
import torch
import torchmetrics

from infomamba.tasks.asr import vocab as vocab_mod
from infomamba.tasks.asr.vocab import CharVocab, OOVError, SubwordVocab, ctc_collapse, normalize_transcript


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Hello, world!", "HELLO WORLD"),
        ("well-known  fact", "WELL KNOWN FACT"),
        ("Rock-'n'-roll, isn't it?", "ROCK N ROLL ISN'T IT"),
        ("'Quoted' words''", "QUOTED WORDS"),
        ("He said: \"don't\" -- twice.", "HE SAID DON'T TWICE"),
        ("  tabs\tand\nnewlines  ", "TABS AND NEWLINES"),
        ("a ' lone apostrophe", "A LONE APOSTROPHE"),
        ("HOW MUCH OF THEIR INFLUENCE", "HOW MUCH OF THEIR INFLUENCE"),  # LibriSpeech text is a fixed point
        ("", ""),
        ("?!...", ""),
    ],
)
def test_normalize_examples(raw, expected):
    assert normalize_transcript(raw) == expected
    assert normalize_transcript(expected) == expected


def test_normalize_non_strict_drops_digits_and_accents_like_the_data_build():
    assert normalize_transcript("press 1 now") == "PRESS NOW"
    assert normalize_transcript("café au lait") == "CAF AU LAIT"


@pytest.mark.parametrize(("raw", "char"), [("press 1 now", "1"), ("café", "é"), ("straße", "ß")])
def test_normalize_strict_names_lost_spoken_content(raw, char):
    with pytest.raises(OOVError, match=repr(char)) as info:
        normalize_transcript(raw, strict=True)
    assert info.value.char == char
    assert isinstance(info.value, ValueError)


def test_normalize_strict_accepts_punctuation():
    assert normalize_transcript("Yes -- no; (maybe) \u201cquoted\u201d.", strict=True) == "YES NO MAYBE QUOTED"


def test_char_vocab_layout_and_round_trip():
    v = CharVocab()
    assert len(v) == 29 and v.blank == 0
    assert v.encode(" ") == [1] and v.encode("'") == [2] and v.encode("AZ") == [3, 28]
    text = "IT'S A TEST OF THE VOCABULARY"
    ids = v.encode(text)
    assert 0 not in ids
    assert v.decode(ids) == text
    assert v.decode([0, *ids, 0]) == text


@pytest.mark.parametrize(("text", "char"), [("hello", "h"), ("A1", "1"), ("A-B", "-"), ("CAFÉ", "É")])
def test_char_vocab_rejects_out_of_vocabulary(text, char):
    with pytest.raises(ValueError, match=f"character {char!r}"):
        CharVocab().encode(text)


def _one_hot_log_probs(paths: list[list[int]], vocab_size: int) -> torch.Tensor:
    """Batch-first log-probs whose argmax follows ``paths`` (padded with blanks)."""
    length = max(len(p) for p in paths)
    lp = torch.full((len(paths), length, vocab_size), -10.0)
    for b, path in enumerate(paths):
        for t in range(length):
            lp[b, t, path[t] if t < len(path) else 0] = 0.0
    return lp.log_softmax(-1)


def test_ctc_greedy_decode_hand_made_paths():
    v = CharVocab()
    h, e, l, o, sp = (v.encode(c)[0] for c in "HELO ")
    paths = [
        [0, h, h, 0, e, l, l, 0, l, o, o, 0],  # blank separates the double L
        [h, e, l, l, o],  # adjacent repeats collapse: HELO
        [0, 0, 0],  # all blank -> empty
        [h, 0, h, sp, sp, o],  # blank between repeats keeps both
    ]
    lp = _one_hot_log_probs(paths, len(v))
    lengths = torch.tensor([len(p) for p in paths])
    assert v.ctc_greedy_decode(lp, lengths) == ["HELLO", "HELO", "", "HH O"]


def test_ctc_greedy_decode_ignores_frames_past_length():
    v = CharVocab()
    a, b = v.encode("A")[0], v.encode("B")[0]
    lp = _one_hot_log_probs([[a, 0, b, b, a]], len(v))
    assert v.ctc_greedy_decode(lp, torch.tensor([3])) == ["AB"]
    assert v.ctc_greedy_decode(lp, torch.tensor([5])) == ["ABA"]


def test_ctc_collapse_ids_and_shape_check():
    ids = torch.tensor([[1, 1, 0, 1, 2, 2, 0]])
    assert ctc_collapse(ids, torch.tensor([7])) == [[1, 1, 2]]
    with pytest.raises(ValueError, match="expected log_probs"):
        CharVocab().ctc_greedy_decode(torch.zeros(1, 4, 5), torch.tensor([4]))


TRAIN_TEXTS = [
    "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG",
    "A STITCH IN TIME SAVES NINE",
    "DON'T COUNT YOUR CHICKENS BEFORE THEY HATCH",
    "THE EARLY BIRD CATCHES THE WORM",
] * 5


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_subword_vocab_round_trip_and_greedy_decode(kind, tmp_path):
    v = SubwordVocab.train(TRAIN_TEXTS, kind=kind, vocab_size=60, cache_dir=tmp_path)
    assert v.blank == 0 and 29 < len(v) <= 60
    for text in [*set(TRAIN_TEXTS), "ZQX JAW'S VEX"]:  # unseen words fall back to seeded letters
        ids = v.encode(text)
        assert 0 not in ids
        assert v.decode(ids) == text
    ids = v.encode("THE LAZY DOG")
    path = [0]
    for i in ids:
        path += [i, i, 0]
    assert v.ctc_greedy_decode(_one_hot_log_probs([path], len(v)), torch.tensor([len(path)])) == ["THE LAZY DOG"]
    with pytest.raises(ValueError, match="character 'x'"):
        v.encode("THE x")


def test_subword_vocab_cache_is_reused(tmp_path, monkeypatch):
    first = SubwordVocab.train(TRAIN_TEXTS, kind="bpe", vocab_size=50, cache_dir=tmp_path)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".json"  # no temporary file left behind

    def refuse(*args, **kwargs):
        raise AssertionError("retrained although a cached tokenizer exists")

    monkeypatch.setattr(vocab_mod, "_train_tokenizer", refuse)
    second = SubwordVocab.train(TRAIN_TEXTS, kind="bpe", vocab_size=50, cache_dir=tmp_path)
    assert second.encode("THE WORM") == first.encode("THE WORM")
    with pytest.raises(AssertionError, match="retrained"):  # other transcripts -> other cache key
        SubwordVocab.train(TRAIN_TEXTS[:2], kind="bpe", vocab_size=50, cache_dir=tmp_path)


def test_subword_vocab_argument_errors():
    with pytest.raises(ValueError, match="kind"):
        SubwordVocab.train(TRAIN_TEXTS, kind="wordpiece")
    with pytest.raises(ValueError, match="zero transcripts"):
        SubwordVocab.train([], kind="bpe")
    with pytest.raises(ValueError, match="character"):
        SubwordVocab.train(["not normalised"], kind="bpe")


@pytest.mark.parametrize("apostrophe", ["\u2019", "\u2018", "\u02bc"])
def test_typographic_apostrophes_are_apostrophes_not_word_breaks(apostrophe):
    """"isn’t" (as word processors and many corpora write it) had become "ISN T": a wrong label, silently."""
    assert normalize_transcript(f"It isn{apostrophe}t \u2018mine\u2019", strict=True) == "IT ISN'T MINE"


@pytest.mark.parametrize(("raw", "char"), [("Tom & Jerry", "&"), ("ten % off", "%"), ("a $ sign", "$"),
                                           ("one \u20ac", "\u20ac"), ("one + one", "+")])
def test_normalize_strict_names_symbols_that_are_read_aloud(raw, char):
    """"Tom & Jerry" had become "TOM JERRY", the spoken "and" lost from the label without a word."""
    with pytest.raises(OOVError, match=re.escape(repr(char))):
        normalize_transcript(raw, strict=True)


def test_greedy_decoding_single_spaces_words_so_the_error_rates_count_no_stray_space():
    """Greedy decoding had kept the space token wherever CTC emitted it (' HELLO  WORLD '), unlike the beam and
    subword decoders, and the validation CER counted every stray space against references that hold none."""
    v = CharVocab()
    path = []
    for char in " HELLO  WORLD ":  # a blank after each character keeps doubled ones through the collapse
        path += [v.encode(char)[0], v.blank]
    log_probs = torch.full((1, len(path), len(v)), -20.0)
    log_probs[0, torch.arange(len(path)), torch.tensor(path)] = 0.0
    hyps = v.ctc_greedy_decode(log_probs, torch.tensor([len(path)]))
    assert hyps == ["HELLO WORLD"]
    assert torchmetrics.text.CharErrorRate()(hyps, ["HELLO WORLD"]).item() == 0.0
    assert torchmetrics.text.WordErrorRate()(hyps, ["HELLO WORLD"]).item() == 0.0
