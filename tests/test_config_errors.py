"""The parser's errors said with the file and key at fault (`infomamba.config_errors`)."""
from pathlib import Path

from infomamba.config_errors import config_files, unknown_key_message, yaml_problem


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
