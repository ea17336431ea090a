"""A size or temperature that is not > 0 is refused when the mixer is built, naming it: it had built an empty
concept filter (k_max 0), NaN outputs (tau_assign 0), a state of width 0, or silently the default (heads 0)."""
import pytest

from infomamba.mixers import build_mixer


@pytest.mark.parametrize("mixer, options, words", [
    ("infomamba", {"k_max": 0}, "infomamba: k_max must be > 0, got 0"),
    ("infomamba", {"tau_assign": 0.0}, "infomamba: tau_assign must be > 0, got 0.0"),
    ("mamba", {"d_state": 0}, "the selective SSM: d_state must be > 0, got 0"),
    ("mamba", {"d_conv": 0}, "the selective SSM: d_conv must be > 0, got 0"),
    ("attention", {"heads": 0}, "attention: heads must be > 0, got 0"),
    ("linformer", {"proj_len": 0}, "linformer: proj_len must be > 0, got 0"),
    ("vmisa", {"expand": 0.01}, "vmisa: inner must be > 0, got 0"),   # had built a mixer that outputs its bias
    ("vmisa", {"conv_size": 0}, "vmisa: conv_size must be > 0, got 0"),
    ("vmamba", {"d_conv": 0}, "vmamba: d_conv must be > 0, got 0"),
    ("vmamba", {"expand": 0}, "vmamba: inner must be > 0, got 0"),
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
