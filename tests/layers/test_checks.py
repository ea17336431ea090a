"""A size or temperature that is not > 0 is refused when the mixer is built, naming it: it had built an empty
concept filter (k_max 0), NaN outputs (tau_assign 0), a state of width 0, or silently the default (heads 0). So is an
option of the wrong type (a float size had ended in torch.randn's listing of its overloads)."""
import re

import pytest

from infomamba.mixers import build_mixer


@pytest.mark.parametrize("mixer, options, words", [
    ("infomamba", {"k_max": 0}, "infomamba: k_max must be > 0, got 0"),
    ("infomamba", {"tau_assign": 0.0}, "infomamba: tau_assign must be > 0, got 0.0"),
    ("mamba", {"d_state": 0}, "the selective SSM: d_state must be > 0, got 0"),
    ("mamba", {"d_conv": 0}, "the selective SSM: d_conv must be > 0, got 0"),
    ("attention", {"heads": 0}, "attention: heads must be > 0, got 0"),
    ("linformer", {"proj_len": 0}, "linformer: proj_len must be > 0, got 0"),
    ("vmisa", {"expand": 0.01}, r"vmisa: int\(expand \* dim\) must be > 0, got 0"),  # had output its bias
    ("vmisa", {"conv_size": 0}, "vmisa: conv_size must be > 0, got 0"),
    ("vmamba", {"d_conv": 0}, "vmamba: d_conv must be > 0, got 0"),
    ("vmamba", {"expand": 0}, r"vmamba: int\(expand \* dim\) must be > 0, got 0"),  # had named an inner width
    ("mambavision", {"expand": 0.01}, r"mambavision: int\(expand \* dim\) must be > 0, got 0"),
    ("mambavision", {"d_conv": 0}, "mambavision: d_conv must be > 0, got 0"),
    ("localmamba", {"attn_ratio": -1.0}, "localmamba: attn_ratio must be > 0, got -1.0"),   # had become 1 channel
])
def test_a_size_that_is_not_positive_is_named(mixer, options, words):
    with pytest.raises(ValueError, match=words):
        build_mixer(mixer, 16, **options)


def test_localmamba_directions_as_one_string_is_refused():
    """A string had been read as its characters: 'h' passed by chance, 'h_flip' failed naming direction '_'."""
    with pytest.raises(ValueError, match="localmamba directions must be a list.*write \\['h_flip'\\]"):
        build_mixer("localmamba", 16, directions="h_flip")


@pytest.mark.parametrize("mixer, options, words", [
    ("infomamba", {"k_max": 2.5}, "mixer 'infomamba': k_max must be a whole number, got 2.5 (float)"),  # torch.randn's
    ("infomamba", {"chunk": True}, "mixer 'infomamba': chunk must be a whole number or null, got True (bool)"),
    ("infomamba", {"d_state": 4.0}, "mixer 'infomamba': d_state must be a whole number, got 4.0 (float)"),
    ("mamba", {"ssm_heads": 2.0}, "mixer 'mamba': ssm_heads must be a whole number or null, got 2.0 (float)"),
    ("infomamba", {"expand": True}, "mixer 'infomamba': expand must be a number, got True (bool)"),
    ("attention", {"qkv_bias": 1}, "mixer 'attention': qkv_bias must be true or false, got 1 (int)"),
    ("linformer", {"sharing": 1}, "mixer 'linformer': sharing must be a string, got 1 (int)"),
])
def test_an_option_of_the_wrong_type_is_named_with_its_value(mixer, options, words):
    with pytest.raises(ValueError, match=f"^{re.escape(words)}$"):
        build_mixer(mixer, 16, **options)


def test_an_int_passes_for_a_float_and_none_for_an_optional_option():
    build_mixer("mamba", 16, expand=1, ssm_heads=None, d_state=4)


def test_a_plugins_options_whose_hints_cannot_be_evaluated_are_left_unchecked(monkeypatch):
    """A plugin mixer may annotate with a name its module imports for type checkers only."""
    from infomamba import mixers
    from infomamba.mixers.mamba import MambaMixer

    class Plugin(MambaMixer):
        def __init__(self, dim: int, *, causal: bool = False, layer_idx: int = 0, depth: int = 1, d_state=4):
            super().__init__(dim, causal=causal, d_state=d_state)

    Plugin.__init__.__annotations__["d_state"] = "Undefined"  # as its module's `from __future__ import annotations`
    monkeypatch.setitem(mixers._REGISTRY, "plugin", Plugin)
    assert mixers.option_hints("plugin") == {"d_state": "Undefined"}
    build_mixer("plugin", 16, d_state=4)

