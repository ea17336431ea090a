"""Token positions among a sample's real tokens, wherever its padding sits."""
import torch

from infomamba.layers.positions import real_positions


def test_real_positions_skip_padding_on_either_side():
    mask = torch.tensor([[False, False, False, True, True],
                         [True, True, False, False, False],
                         [False, True, False, True, False]])
    pos = real_positions(mask)
    assert pos[0, :3].tolist() == [0, 1, 2]
    assert pos[1, 2:].tolist() == [0, 1, 2]
    assert pos[2, [0, 2, 4]].tolist() == [0, 1, 2]
    assert pos.min() >= 0
