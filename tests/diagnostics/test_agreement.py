"""§5.5 agreement of two models on a hand-made example."""
import pytest

from infomamba.diagnostics.agreement import agreement


def test_fractions_of_a_hand_made_example():
    labels = [0, 1, 1, 1, 0]
    a = [0, 1, 1, 0, 2]          # right, right, right, wrong, wrong
    b = [0, 1, 0, 1, 2]          # right, right, wrong, right, wrong (the same wrong answer as a)
    got = agreement(a, b, labels)
    assert got["n"] == 5
    assert got["both_right"] == pytest.approx(2 / 5)
    assert got["both_wrong"] == pytest.approx(1 / 5)
    assert got["disagree"] == pytest.approx(2 / 5)
    assert got["a_only_right"] == pytest.approx(1 / 5) and got["b_only_right"] == pytest.approx(1 / 5)
    assert got["same_prediction"] == pytest.approx(3 / 5)
    assert got["accuracy_a"] == pytest.approx(3 / 5) and got["accuracy_b"] == pytest.approx(3 / 5)
    assert got["both_right"] + got["both_wrong"] + got["disagree"] == pytest.approx(1.0)


def test_transcripts_count_as_right_only_when_whole():
    got = agreement(["A B", "C"], ["A B", "C D"], ["A B", "C D"])
    assert (got["both_right"], got["disagree"], got["b_only_right"]) == (0.5, 0.5, 0.5)


def test_lengths_must_match():
    with pytest.raises(ValueError, match="one prediction per label"):
        agreement([0, 1], [0], [0, 1])
    with pytest.raises(ValueError, match="zero samples"):
        agreement([], [], [])
