"""SparX: ganglion/normal layer pattern, the sliding window of connections, DMCA, padding, causality."""
import re

import pytest
import torch

from infomamba import Encoder, EncoderConfig
from infomamba.cross_layer import SparXStack

DIM, DEPTH, L = 16, 5, 11


def _encoder(causal=False, **options):
    torch.manual_seed(0)
    config = EncoderConfig(dim=DIM, depth=DEPTH, mixer="attention", causal=causal, cross_layer="sparx",
                           cross_layer_options={"causal": causal, **options})
    encoder = Encoder(config).eval()
    for dmca in encoder.stack.aggregators.values():  # leave the identity initialisation
        torch.nn.init.normal_(dmca.w5.weight, std=0.2)
    return encoder


def test_paper_example_pattern():
    """8 layers, S = 2, M = 2: ganglion layers 2, 4, 6, 8 (1-based); -1 is the stack input."""
    assert SparXStack.connections(8, 2, 2) == {1: (-1, 0), 3: (-1, 1, 2), 5: (1, 3, 4), 7: (3, 5, 6)}
    assert SparXStack.connections(7, 3, 3) == {2: (-1, 0, 1), 5: (-1, 2, 3, 4)}
    assert SparXStack.connections(3, 1, 2) == {0: (-1,), 1: (-1, 0), 2: (0, 1)}


def test_aggregators_read_only_their_window_and_normal_layers_run_untouched():
    encoder = _encoder(stride=2, window=1)
    stack = encoder.stack
    outputs, block_inputs, dmca_inputs = {}, {}, {}
    for i, block in enumerate(stack.blocks):
        block.register_forward_hook(lambda mod, args, out, i=i: outputs.__setitem__(i, out[0]))
        block.register_forward_pre_hook(lambda mod, args, i=i: block_inputs.__setitem__(i, args[0]))
    for key, dmca in stack.aggregators.items():
        dmca.register_forward_pre_hook(lambda mod, args, i=int(key): dmca_inputs.__setitem__(i, args[1]))
    x = torch.randn(2, L, DIM)
    encoder(x)
    assert stack.sources == {1: (-1, 0), 3: (1, 2)}
    assert sorted(dmca_inputs) == [1, 3]
    for i, inputs in dmca_inputs.items():
        expected = [x if j == -1 else outputs[j] for j in stack.sources[i]]
        assert len(inputs) == len(expected) and all(a is b for a, b in zip(inputs, expected))
    for i in (2, 4):  # normal layers take the previous block's output as it is
        assert block_inputs[i] is outputs[i - 1]


def test_identity_initialisation_starts_as_the_plain_stack():
    torch.manual_seed(0)
    sparx = Encoder(EncoderConfig(dim=DIM, depth=DEPTH, mixer="attention", cross_layer="sparx")).eval()
    plain = Encoder(EncoderConfig(dim=DIM, depth=DEPTH, mixer="attention")).eval()
    plain.load_state_dict(sparx.state_dict(), strict=False)
    x = torch.randn(2, L, DIM)
    torch.testing.assert_close(sparx(x).hidden, plain(x).hidden)
    assert len(sparx(x).aux) == DEPTH


@pytest.mark.parametrize("causal", [False, True])
def test_padding_never_reaches_real_tokens(causal):
    encoder = _encoder(causal=causal)
    n = 7
    x = torch.randn(2, L, DIM)
    alone = encoder(x[:1, :n]).hidden
    mask = torch.zeros(2, L, dtype=torch.bool)
    mask[0, n:] = True
    x[0, n:] = 100.0
    torch.testing.assert_close(encoder(x, mask).hidden[:1, :n], alone)


def test_causal_aggregator_reads_the_past_only():
    encoder = _encoder(causal=True)
    x = torch.randn(2, L, DIM)
    x2 = x.clone()
    x2[:, 6:] += torch.randn(2, L - 6, DIM)
    torch.testing.assert_close(encoder(x2).hidden[:, :6], encoder(x).hidden[:, :6])


def test_causal_blocks_need_the_causal_aggregator():
    with pytest.raises(ValueError, match="causal"):
        Encoder(EncoderConfig(dim=DIM, depth=2, mixer="attention", causal=True, cross_layer="sparx",
                              cross_layer_options={"causal": False}))
    encoder = Encoder(EncoderConfig(dim=DIM, depth=2, mixer="infomamba", causal=True, cross_layer="sparx",
                                    mixer_options={"k_max": 8, "d_concept": 8, "d_state": 4}))
    assert all(agg.causal for agg in encoder.stack.aggregators.values())


@pytest.mark.parametrize("options, words", [
    ({"stride": 2.5}, "got {'stride': 2.5}"),                     # had made block 4 alone a ganglion
    ({"window": 2.0}, "got {'window': 2.0}"),                     # had been a slicing TypeError
    ({"groups": 0, "stride": 0}, "got {'stride': 0, 'groups': 0}"),  # groups 0: a ZeroDivisionError
])
def test_sparx_sizes_are_positive_ints(options, words):
    with pytest.raises(ValueError, match="sparx stride, window and groups must be ints >= 1, " + re.escape(words)):
        Encoder(EncoderConfig(dim=16, depth=4, mixer="attention", cross_layer="sparx", cross_layer_options=options))


@pytest.mark.parametrize("stride", [2, 3])
def test_a_stride_past_the_depth_is_refused_not_built_without_connections(stride):
    """With stride > depth no block is a ganglion layer: a 2-block fit with stride 3 had trained a plain stack under
    cross_layer: sparx. A stride equal to the depth makes the last block the one ganglion layer."""
    with pytest.raises(ValueError, match=rf"^sparx stride={stride + 1} is more than depth={stride}: no block would be "
                                         "a ganglion layer.*set stride <= depth$"):
        Encoder(EncoderConfig(dim=16, depth=stride, mixer="attention", cross_layer="sparx",
                              cross_layer_options={"stride": stride + 1}))
    encoder = Encoder(EncoderConfig(dim=16, depth=stride, mixer="attention", cross_layer="sparx",
                                    cross_layer_options={"stride": stride}))
    assert list(encoder.stack.sources) == [stride - 1]
