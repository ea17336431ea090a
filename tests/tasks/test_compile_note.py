"""`--compile` on a CPU took some 100 s for a 4-step fit that runs eagerly in under one, without a word: a note says
why (compiling, the references' path) and what to do; on a GPU, or without compile, nothing is said."""
import pytest
import torch

from infomamba.tasks.compile_note import compile_on_cpu_note, note_compile_on_cpu


@pytest.mark.parametrize("compile", [True, "default", "reduce-overhead", "max-autotune"])
def test_compile_on_a_cpu_gets_the_note(compile):
    note = compile_on_cpu_note(compile, "cpu")
    assert note.startswith("[infomamba] note: torch.compile on a CPU") and "\n" not in note
    assert "compiles for minutes" in note and "reference path" in note
    assert "the run's config.yaml for validate, test and predict" in note and "--model.compile=false" in note


@pytest.mark.parametrize("compile, device_type", [(False, "cpu"), (True, "cuda"), ("reduce-overhead", "cuda")])
def test_no_note_without_compile_or_off_the_cpu(compile, device_type):
    assert compile_on_cpu_note(compile, device_type) is None


def test_the_note_is_said_once_on_stdout_for_a_cpu_device(capsys):
    note_compile_on_cpu(True, torch.device("cpu"))
    note_compile_on_cpu(True, "cuda:0")
    note_compile_on_cpu(False, "cpu")
    assert capsys.readouterr().out == compile_on_cpu_note(True, "cpu") + "\n"
