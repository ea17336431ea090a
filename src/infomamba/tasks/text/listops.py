"""ListOps (Nangia & Bowman 2018; the Long Range Arena task), generated from its definition.

An expression is a nested list ``[OP a b ... ]`` whose arguments are digits 0-9 or nested lists; the
label is its value, 0-9 (10 classes). Operators: ``MAX``, ``MIN``, ``MED`` (median; for an even count the
mean of the two middle values rounded down, as LRA's ``int(np.median(...))``), ``SM`` (sum modulo 10).
Tokens are whitespace separated and the opening bracket is fused with its operator, as in LRA:
``[MAX 2 9 [MIN 4 7 ] 0 ]`` -> 9.

Generation follows LRA's recursive recipe: each argument is a nested list with probability 0.25 (while
the nesting depth allows), else a uniform digit; each list has a uniform number of arguments in
``[2, max_args]``; expressions longer than ``max_length`` tokens are drawn again. Unlike LRA, the root is
always a list (LRA removes bare digits through its minimum length) and the defaults are small (LRA:
depth 10, 10 arguments, 500-2000 tokens), so that a short CPU run learns something.
"""

from __future__ import annotations

import random

from infomamba.tasks.text.tokenizer import TextTokenizer

OPERATORS = ("[MAX", "[MIN", "[MED", "[SM")
CLOSE = "]"
DIGITS = tuple(str(d) for d in range(10))
VOCABULARY = (*OPERATORS, CLOSE, *DIGITS)
NUM_CLASSES = 10
SUBLIST_PROBABILITY = 0.25


def _apply(operator: str, values: list[int]) -> int:
    """Value of one list."""
    if operator == "[MAX":
        return max(values)
    if operator == "[MIN":
        return min(values)
    if operator == "[MED":
        ordered = sorted(values)
        middle = len(ordered) // 2
        return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) // 2
    return sum(values) % 10


def evaluate_listops(text: str) -> int:
    """Value (0-9) of a ListOps expression; ValueError if it is malformed."""
    stack: list[tuple[str, list[int]]] = []
    result: int | None = None
    for token in text.split():
        if result is not None:
            raise ValueError(f"ListOps: tokens after the end of the expression in {text!r}.")
        if token in OPERATORS:
            stack.append((token, []))
        elif token in DIGITS:
            if not stack:
                raise ValueError(f"ListOps: digit {token!r} outside a list in {text!r}.")
            stack[-1][1].append(int(token))
        elif token == CLOSE:
            if not stack or not stack[-1][1]:
                raise ValueError(f"ListOps: unmatched or empty list in {text!r}.")
            operator, values = stack.pop()
            value = _apply(operator, values)
            if stack:
                stack[-1][1].append(value)
            else:
                result = value
        else:
            raise ValueError(f"ListOps: unknown token {token!r} in {text!r}.")
    if result is None:
        raise ValueError(f"ListOps: unclosed or empty expression {text!r}.")
    return result


def _expression(rng: random.Random, depth: int, max_depth: int, max_args: int) -> list[str]:
    """Tokens of a random list at nesting ``depth`` (the root is depth 1)."""
    tokens = [rng.choice(OPERATORS)]
    for _ in range(rng.randint(2, max_args)):
        if depth < max_depth and rng.random() < SUBLIST_PROBABILITY:
            tokens.extend(_expression(rng, depth + 1, max_depth, max_args))
        else:
            tokens.append(rng.choice(DIGITS))
    tokens.append(CLOSE)
    return tokens


def generate_listops(
    n: int, max_depth: int = 5, max_args: int = 6, max_length: int = 200, seed: int = 0
) -> list[tuple[str, int]]:
    """``n`` random (expression, value) pairs, the same for the same arguments.

    Args:
        n: number of expressions.
        max_depth: maximum nesting depth (1 = a flat list of digits).
        max_args: maximum number of arguments of a list (at least 2).
        max_length: maximum number of tokens; longer draws are rejected.
        seed: seed of the generator (use different seeds for train, validation and test).
    """
    if max_depth < 1 or max_args < 2:
        raise ValueError(f"Need max_depth >= 1 and max_args >= 2, got {max_depth}, {max_args}.")
    if max_length < 4:
        raise ValueError(f"max_length must be >= 4 (the shortest list, `[SM 1 2 ]`), got {max_length}.")
    rng = random.Random(seed)
    samples: list[tuple[str, int]] = []
    while len(samples) < n:
        tokens = _expression(rng, 1, max_depth, max_args)
        if len(tokens) <= max_length:
            text = " ".join(tokens)
            samples.append((text, evaluate_listops(text)))
    return samples


def listops_tokenizer() -> TextTokenizer:
    """Whitespace-level tokenizer over the ListOps vocabulary ([PAD]=0, [UNK]=1, operators, ], digits)."""
    return TextTokenizer.word_level(VOCABULARY)
