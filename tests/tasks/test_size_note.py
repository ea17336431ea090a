"""tasks/size_note.py: a fit's mixer that is not size-matched to InfoMamba's is said, with the options that match."""
import re

import pytest

from infomamba import EncoderConfig
from infomamba.summary import summarize
from infomamba.tasks.size_note import size_note


def params(config: EncoderConfig) -> int:
    return summarize(config, 1, flops=False)["params_total"]


def test_a_baseline_with_its_default_widths_is_noted_with_the_size_matched_options():
    attention = EncoderConfig(dim=256, depth=4, mixer="attention")
    note = size_note(attention)
    expected = 1 - params(attention) / params(EncoderConfig(dim=256, depth=4))
    assert expected > 0.10
    shown = float(re.search(r"has (\d+\.\d)% fewer parameters than InfoMamba's at dim 256, depth 4", note).group(1))
    assert shown == pytest.approx(100 * expected, abs=0.05)
    assert note.endswith("configs/size_matched.yaml's options for this size: "
                         "--model.encoder.mixer_options='{inner_dim: 768}'")
    assert size_note(EncoderConfig(dim=256, depth=4, mixer="attention", mixer_options={"inner_dim": 768})) is None


def test_infomamba_and_matched_sizes_get_no_note_and_other_sizes_name_the_summary():
    assert size_note(EncoderConfig(dim=64, depth=2, mixer_options={"k_max": 8})) is None
    assert size_note(EncoderConfig(dim=384, depth=12, mixer="mamba", mixer_options={"expand": 3})) is None
    note = size_note(EncoderConfig(dim=64, depth=2, mixer="linformer"))
    assert "more parameters" in note  # its default E, F tables of 1024 rows
    assert note.endswith("no setting for dim 64, depth 2; `infomamba summary --dim 64 --depth 2 --mixers infomamba "
                         "linformer` counts both")


def test_cross_layer_connections_are_counted_on_both_sides():
    sparx = dict(dim=256, depth=4, cross_layer="sparx")
    assert size_note(EncoderConfig(**sparx, mixer="attention", mixer_options={"inner_dim": 768})) is None
    assert "attention encoder has" in size_note(EncoderConfig(**sparx, mixer="attention"))


def test_an_image_grids_linformer_is_told_the_options_for_its_grid():
    """The image task builds Linformer for its 7 x 7 grid (max_len 49): the note had named the 1,024-row options of
    the speech recipe's sequences, whose rows past 49 a grid never reads."""
    note = size_note(EncoderConfig(dim=192, depth=6, mixer="linformer", mixer_options={"max_len": 49}))
    assert note.endswith("--model.encoder.mixer_options='{inner_dim: 576, max_len: 49, proj_len: 64}'")
    assert size_note(EncoderConfig(dim=192, depth=6, mixer="linformer",
                                   mixer_options={"inner_dim": 576, "proj_len": 64, "max_len": 49})) is None
