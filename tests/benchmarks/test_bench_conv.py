"""benchmarks/bench_conv.py: --help works without a GPU; a run without one stops with one line."""
import sys

import pytest
import torch

from benchmark_scripts import load

bench_conv = load("bench_conv")


def test_help_works_without_a_gpu(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(sys, "argv", ["bench_conv.py", "--help"])
    with pytest.raises(SystemExit) as done:
        bench_conv.main()
    assert done.value.code == 0
    assert "--sweep" in capsys.readouterr().out


def test_a_run_without_a_gpu_stops_with_one_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(sys, "argv", ["bench_conv.py", "--sweep"])
    with pytest.raises(SystemExit, match="^bench_conv.py needs a CUDA GPU$"):
        bench_conv.main()
