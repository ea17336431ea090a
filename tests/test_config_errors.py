"""The parser's errors said with the file and key at fault (`infomamba.config_errors`)."""
from pathlib import Path
from typing import Optional

import pytest

from infomamba.config_errors import config_files, parse_error_message, unknown_key_message, yaml_problem


def test_config_files_in_every_spelling():
    argv = ["fit", "-c", "a.yaml", "--config", "b.yaml", "--config=c.yaml", "--data.root", "-c"]
    assert config_files(argv) == [Path("a.yaml"), Path("b.yaml"), Path("c.yaml")]


def test_a_nested_key_is_found_in_the_file_that_sets_it(tmp_path):
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    first.write_text("model:\n  lr: 0.1\n")
    second.write_text("model:\n  encoder:\n    mixr: attention\n")
    message = "Subcommand 'fit' does not accept option 'model.encoder.mixr'"
    accepted = ["model.encoder.mixer", "model.encoder.dim", "model.lr"]
    assert unknown_key_message(message, accepted, [first, second]) == (
        f"unknown key model.encoder.mixr in {second}; did you mean model.encoder.mixer?")
    assert unknown_key_message("unrecognized arguments: --zzz=1", accepted, [first]) == (
        "unknown key zzz on the command line")
    assert unknown_key_message('Parser key "model.lr": Expected a float', accepted, [first]) is None


def test_yaml_problems(tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("a: 1\n")
    bad.write_text("a: [1\nb: 2\n")
    assert yaml_problem(good) is None
    assert yaml_problem(bad).startswith(f"--config {bad}: not valid YAML: line 2, column 2: ")
    assert yaml_problem(tmp_path / "gone.yaml") == f"--config {tmp_path / 'gone.yaml'}: no such file"
    for text, found in (("", "no options (it is empty)"), ("# nothing\n", "no options (it is empty)"),
                        ("- a\n", "a YAML list")):  # jsonargparse had said "Unexpected config: - a", no file
        (tmp_path / "odd.yaml").write_text(text)
        assert yaml_problem(tmp_path / "odd.yaml") == (f"--config {tmp_path / 'odd.yaml'}: {found}; expected a "
                                                       "mapping of options (trainer:, model:, data:)")


def parser_error(argv: list[str]) -> str:
    """What jsonargparse says of `argv` for a few options of the CLI's types, as the CLI receives it."""
    from argparse import ArgumentError

    from jsonargparse import ActionConfigFile, ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_argument("--model.encoder.dim", type=int, default=64)
    parser.add_argument("--model.encoder.mixer_options", type=dict, default={})
    parser.add_argument("--data.max_tokens", type=Optional[int], default=None)
    with pytest.raises(ArgumentError) as raised:
        parser.parse_args(argv)
    return str(raised.value)


def test_a_value_of_the_wrong_type_is_named_with_the_file_that_gave_it(tmp_path):
    """jsonargparse's 'Parser key "model.encoder.dim": Expected a <class 'int'>. Got value: big' named no file."""
    config = tmp_path / "x.yaml"
    config.write_text("model:\n  encoder:\n    dim: big\n")
    assert parse_error_message(parser_error(["--config", str(config)]), [], [config]) == (
        f"model.encoder.dim in {config}: expected int, got 'big'")
    config.write_text("model:\n  encoder:\n    dim: 8\n")  # the command line's value, not the file's
    assert parse_error_message(parser_error(["--config", str(config), "--model.encoder.dim=big"]), [], [config]) == (
        "model.encoder.dim on the command line: expected int, got 'big'")
    assert parse_error_message(parser_error(["--data.max_tokens=abc"]), [], []) == (
        "data.max_tokens on the command line: expected int or null, got 'abc'")
    assert parse_error_message("unrecognized arguments: --zzz=1", [], []) == "unknown key zzz on the command line"


def test_a_mapping_without_the_space_after_its_colon_is_shown_written_right():
    message = parser_error(["--model.encoder.mixer_options={k_max:5,d_state:4}"])
    assert parse_error_message(message, [], []) == (
        "model.encoder.mixer_options on the command line: expected dict, got '{k_max:5,d_state:4}' (a YAML mapping "
        "needs a space after each colon: {k_max: 5,d_state: 4})")


@pytest.mark.parametrize("text, said", [("model:\n  encoder:\n    dimm: 3\n", "model.encoder.dimm"),
                                        ("trainer:\n  max_stepz: 3\n", "trainer.max_stepz"),
                                        ("foo: 1\n", "foo")], ids=["model", "trainer", "top"])
def test_print_config_names_an_unknown_key_as_a_run_does(text, said, tmp_path, monkeypatch):
    """--print_config has jsonargparse check the subcommand's config itself, which names a key from its group
    ("Group 'model' does not accept option 'encoder.dimm'") or says "Option 'foo' is not accepted": the key had been
    told relative to its group and as given on the command line."""
    from infomamba.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text(text)
    for extra in ([], ["--print_config"]):
        with pytest.raises(SystemExit) as stop:
            main(["fit", "--task", "text", "--config", "bad.yaml", *extra])
        assert str(stop.value.code).splitlines()[0].startswith(f"infomamba fit --task text: unknown key {said} in "
                                                               "bad.yaml")


def test_a_union_of_literals_names_every_value_it_takes():
    """trainer.precision is a union of Literals and None: the line had said "expected null" alone."""
    message = ("Parser key \"trainer.precision\":\n  Does not validate against any of the Union subtypes\n  Subtypes: "
               "[typing.Literal[64, 32, 16], typing.Literal['16-mixed', 'bf16-mixed'], <class 'NoneType'>]\n  Errors:\n"
               "    - Expected a <class 'int'>\n  Given value type: <class 'str'>\n  Given value: fp16")
    assert parse_error_message(message, [], []) == (
        "trainer.precision on the command line: expected one of 64, 32, 16, '16-mixed', 'bf16-mixed', null, got 'fp16'")
