"""ListOps generator and evaluator."""

import collections

import pytest

from infomamba.tasks.text.listops import evaluate_listops, generate_listops, listops_tokenizer


@pytest.mark.parametrize(
    "text, value",
    [
        ("[MAX 2 9 [MIN 4 7 ] 0 ]", 9),
        ("[MIN 3 [SM 4 8 ] ]", 2),
        ("[SM 9 9 [MAX 1 2 ] ]", 0),
        ("[MED 5 1 3 ]", 3),
        ("[MED 1 2 3 4 ]", 2),  # even count: mean of the middle two, rounded down
        ("[MED [MAX 1 8 ] [MIN 6 7 ] ]", 7),
        ("[SM [SM [SM 5 5 ] 3 ] 4 ]", 7),
    ],
)
def test_evaluator_on_hand_made_expressions(text, value):
    assert evaluate_listops(text) == value


@pytest.mark.parametrize("bad", ["[MAX 1 2", "[MAX 1 2 ] ]", "3", "[MAX ]", "[FOO 1 2 ]", "[MAX 1 2 ] 4"])
def test_evaluator_rejects_malformed(bad):
    with pytest.raises(ValueError, match="ListOps"):
        evaluate_listops(bad)


def _depth(text):
    depth = deepest = 0
    for token in text.split():
        depth += token.startswith("[") - (token == "]")
        deepest = max(deepest, depth)
    return deepest


def test_generated_samples_bounded_labelled_and_varied():
    samples = generate_listops(3000, max_depth=4, max_args=5, max_length=60, seed=1)
    assert all(len(t.split()) <= 60 and _depth(t) <= 4 for t, _ in samples)
    assert all(evaluate_listops(t) == y for t, y in samples)
    counts = collections.Counter(y for _, y in samples)
    assert set(counts) == set(range(10))
    assert max(counts.values()) / len(samples) < 0.3
    assert max(_depth(t) for t, _ in samples) == 4
    assert len({t for t, _ in samples}) > 0.8 * len(samples)


def test_determinism_by_seed():
    assert generate_listops(50, seed=7) == generate_listops(50, seed=7)
    assert generate_listops(50, seed=7) != generate_listops(50, seed=8)


def test_tokenizer_covers_the_vocabulary():
    tokenizer = listops_tokenizer()
    assert tokenizer.pad_id == 0 and tokenizer.vocab_size == 2 + 4 + 1 + 10
    ids = [i for t, _ in generate_listops(200, seed=2) for i in tokenizer.encode(t)]
    assert tokenizer.unk_id not in ids and tokenizer.pad_id not in ids
    assert tokenizer.encode("[MAX 2 9 ]") == [tokenizer.token_to_id(w) for w in ("[MAX", "2", "9", "]")]
