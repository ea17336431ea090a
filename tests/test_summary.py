"""Parameter/FLOP summary, and the size-match proof: configs/size_matched.yaml keeps every mixer within
±10% of InfoMamba's total parameters."""
from pathlib import Path

import pytest
import yaml

from infomamba import EncoderConfig, list_mixers
from infomamba.summary import summarize, summary_table

SIZE_MATCHED = yaml.safe_load((Path(__file__).parents[1] / "configs" / "size_matched.yaml").read_text())


@pytest.mark.parametrize("setting", sorted(SIZE_MATCHED["settings"]))
def test_size_matched_within_tolerance(setting):
    spec = SIZE_MATCHED["settings"][setting]
    options = spec["mixer_options"]
    assert set(options) == set(list_mixers()), "every registered mixer needs size-matched options"

    def params(mixer: str) -> int:
        config = EncoderConfig(dim=spec["dim"], depth=spec["depth"], mixer=mixer, mixer_options=options[mixer])
        return summarize(config, spec["seq_len"], flops=False)["params_total"]

    reference = params(SIZE_MATCHED["reference"])
    off = {m: params(m) / reference - 1 for m in options}
    assert all(abs(r) <= SIZE_MATCHED["tolerance"] for r in off.values()), off


def test_counts_and_scan_flops_of_a_mamba_encoder():
    """dim 8, depth 1, E = 16, N = 4, dt_rank 1, conv 4: every matmul/conv counted, scans at 9 B L E N.

    The SSM's conv pads both ends and keeps the first L outputs, so the counter sees L + K - 1 of them."""
    D, E, N, R, K, L = 8, 16, 4, 1, 4, 10
    config = EncoderConfig(dim=D, depth=1, mixer="mamba", mixer_options={"d_state": N})
    result = summarize(config, L)
    per_direction = 2 * (L + K - 1) * E * K + 2 * L * E * (R + 2 * N) + 2 * L * R * E + 9 * L * E * N
    mixer = 2 * L * D * 2 * E + 2 * per_direction + 2 * L * E * D
    mlp = 2 * 2 * L * D * 4 * D
    assert result["flops"] == mixer + mlp
    assert result["params_mixer"] + result["params_other"] == result["params_total"]


def test_table_rows_relative_to_infomamba():
    table = summary_table(["infomamba", "mamba"], 16, 2, 12, {"mamba": {"expand": 3}}, flops=False)
    lines = table.splitlines()
    assert lines[2].startswith("| mixer |") and len(lines) == 6
    assert "| infomamba | defaults |" in lines[4] and "+0.0%" in lines[4]
    assert "| mamba | expand=3 |" in lines[5]


def test_flops_grow_linearly_for_mamba_and_quadratically_for_attention():
    def growth(mixer):
        f16, f32, f48 = (summarize(EncoderConfig(dim=8, depth=1, mixer=mixer), n)["flops"] for n in (16, 32, 48))
        return (f48 - f32) / (f32 - f16)

    assert growth("mamba") == 1.0
    assert growth("attention") > 1.0
