"""The report: per-head ε_exp of a layer, its example kernel, and the files (strict JSON, markdown, PNGs)."""
import json

import numpy as np
import pytest
import torch

from infomamba.diagnostics.attention_kernels import LayerRecord
from infomamba.diagnostics.report import FILES, markdown, summarize_attention, write_report
from infomamba.diagnostics.ssm_spectrum import SSMRecord

K = 16


def record() -> LayerRecord:
    """Head 0: exact 2-term mixtures (inside the regime); head 1: far spikes (outside)."""
    lags = torch.arange(K, dtype=torch.float64)
    local = torch.stack([0.7 * 0.8 ** lags + 0.3 * (0.2 + 0.01 * i) ** lags for i in range(10)])
    spikes = torch.zeros(10, K, dtype=torch.float64)
    spikes[torch.arange(10), 6 + torch.arange(10)] = 1.0
    rec = LayerRecord("encoder.stack.blocks.3.mixer", 3, heads=2, causal=True)
    rec.kernels["past"] = [torch.stack([local, spikes], 1)]
    rec.diagonal = [torch.tensor([[0.9, 0.1]] * 4)]
    return rec


def test_a_layer_summary_has_eps_per_head_and_the_worst_heads_example():
    summary = summarize_attention(record(), [1, 2, 4])
    assert summary["kernels"] == 10 and summary["index"] == 3
    eps = summary["eps_exp"]
    assert eps["2"][0] < 1e-10 and eps["4"][0] < 1e-10 and eps["1"][0] > 1e-4
    assert min(eps[m][1] for m in ("1", "2", "4")) > 0.5
    assert summary["eps_exp_mean"]["2"] == pytest.approx((eps["2"][0] + eps["2"][1]) / 2)
    assert summary["diagonal_mass"] == pytest.approx([0.9, 0.1])
    example = summary["example"]
    assert example["head"] == 1 and example["order"] == 2 and len(example["kernel"]) == K
    assert set(example["fits"]) == {"1", "2", "4"}
    capped = summarize_attention(record(), [1], max_kernels=3)
    assert capped["kernels"] == 3


def test_files_are_written_with_strict_json(tmp_path):
    ssm = SSMRecord("encoder.stack.blocks.0.mixer.ssm.0", 0, False, channels=4)
    ssm.count, ssm.maximum, ssm.samples = 8, 0.99, [torch.tensor([0.5, 0.9, 0.95, 0.99])]
    empty = SSMRecord("encoder.stack.blocks.1.mixer.ssm.0", 1, False, channels=4)   # saw nothing: NaN -> null
    report = {"task": "text", "ckpt_path": "x.ckpt", "config": "config.yaml", "method": "pencil", "horizon": K,
              "orders": [1, 2, 4], "max_queries": 8, "max_kernels": 100, "split": "val", "batches": 1,
              "samples": 4, "accuracy": 0.75, "attention": [summarize_attention(record(), [1, 2, 4])],
              "ssm": [ssm.summary(), empty.summary()],
              "agreement": {"split": "test", "n": 4, "both_right": 0.5, "both_wrong": 0.25, "disagree": 0.25,
                            "a_only_right": 0.25, "b_only_right": 0.0, "same_prediction": 0.75,
                            "accuracy_a": 0.75, "accuracy_b": 0.5, "other_ckpt_path": "y.ckpt"}}
    (tmp_path / "out").mkdir()
    written = write_report(report, tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(FILES)
    loaded = json.loads((tmp_path / "out" / "diagnostics.json").read_text(),
                        parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert loaded["ssm"][1]["rho_max"] is None and loaded["ssm"][0]["rho_max"] == pytest.approx(0.99)
    assert loaded["attention"][0]["eps_exp"]["2"][0] < 1e-10
    text = (tmp_path / "out" / "diagnostics.md").read_text()
    assert text == markdown(report) + "\n"
    assert "| `encoder.stack.blocks.3.mixer` | 3 | True | 2 | 10 |" in text and "## Agreement" in text
    assert "4 samples in 1 batches; accuracy 0.7500 on these samples only" in text  # not the split's accuracy
    for name in ("eps_exp.png", "example_kernel.png", "ssm_spectrum.png"):
        assert (tmp_path / "out" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report["ssm"] = []   # a plot that no longer applies is removed on the next write
    write_report(report, tmp_path / "out")
    assert not (tmp_path / "out" / "ssm_spectrum.png").exists()
    assert np.isfinite(loaded["attention"][0]["eps_exp_mean"]["1"])


def test_a_report_cut_short_leaves_the_earlier_one_whole(tmp_path, monkeypatch):
    """Ctrl-C (or an error) while the plots are drawn: the earlier report's files are those of the earlier report,
    every one, and no partial or temporary file is left in the folder."""
    from infomamba.diagnostics import report as report_module

    report = {"task": "text", "ckpt_path": "x.ckpt", "config": "config.yaml", "method": "pencil", "horizon": K,
              "orders": [1, 2], "max_queries": 8, "max_kernels": 100, "split": "val", "batches": 1, "samples": 4,
              "accuracy": 0.75, "attention": [summarize_attention(record(), [1, 2])], "ssm": [], "agreement": None}
    out = tmp_path / "out"
    write_report(report, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def interrupted(report, path):
        path.write_bytes(b"half a PNG")
        raise KeyboardInterrupt

    monkeypatch.setattr(report_module, "plot_example", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_report({**report, "accuracy": 0.5, "samples": 8}, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
