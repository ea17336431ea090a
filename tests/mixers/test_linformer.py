"""Linformer (Wang et al. 2020): low-rank E/F projections sliced to the sample's length, no causal form."""
import pytest
import torch

from infomamba.mixers import build_mixer, causal_mixers

DIM, L = 16, 21


def test_refuses_causal_and_names_the_mixers_that_can_be():
    with pytest.raises(ValueError, match="linformer cannot be causal") as refused:
        build_mixer("linformer", DIM, causal=True)
    named = str(refused.value).rsplit("causal models can use ", 1)[1].split(", ")
    assert named == causal_mixers() and {"attention", "mamba", "infomamba", "localmamba"} <= set(named)
    assert "linformer" not in named and "vmamba" not in named


@pytest.mark.parametrize("sharing, n_proj, has_f", [("none", 2, True), ("headwise", 1, True), ("kv", 1, False)])
def test_sharing_shapes(sharing, n_proj, has_f):
    m = build_mixer("linformer", DIM, heads=2, proj_len=5, max_len=32, sharing=sharing)
    assert m.E.shape == (n_proj, 32, 5)
    assert (m.F is not None) == has_f
    y, _ = m(torch.randn(2, L, DIM))
    assert y.shape == (2, L, DIM)


def test_uses_the_first_rows_of_E_only():
    torch.manual_seed(0)
    m = build_mixer("linformer", DIM, heads=2, proj_len=5, max_len=32, sharing="none")
    x = torch.randn(1, L, DIM)
    y, _ = m(x)
    with torch.no_grad():
        m.E[:, L:] += 1.0
        m.F[:, L:] += 1.0
    assert torch.equal(m(x)[0], y)


@pytest.mark.parametrize("left", [False, True])
def test_padded_sample_equals_sample_alone(left):
    """Padded rows of E/F are zeroed and positions are ranks among real tokens: E[:L_real] either side."""
    torch.manual_seed(0)
    m = build_mixer("linformer", DIM, proj_len=6, max_len=32)
    n = 13
    x = torch.randn(1, n, DIM)
    alone, _ = m(x)
    noise = 50 * torch.randn(1, L - n, DIM)
    padded = torch.cat([noise, x] if left else [x, noise], dim=1)
    mask = torch.zeros(1, L, dtype=torch.bool)
    if left:
        mask[:, : L - n] = True
    else:
        mask[:, n:] = True
    y, _ = m(padded, mask)
    real = y[:, L - n:] if left else y[:, :n]
    torch.testing.assert_close(real, alone)


def test_refuses_longer_than_max_len():
    m = build_mixer("linformer", DIM, proj_len=4, max_len=8)
    with pytest.raises(ValueError, match="max_len=8"):
        m(torch.randn(1, 9, DIM))
