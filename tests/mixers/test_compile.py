"""Every mixer traces under torch.compile as one graph: the Triton kernels are torch.library custom ops
with fake implementations, so dynamo never breaks at them (the fused SSM issue). The kernels run in
Triton's interpreter on CPU (INFOMAMBA_KERNELS=triton), so the traced path is the GPU's path; the references, a
CPU's path, trace whole too (their sequential scan is an op pair as well)."""
import pytest
import torch

from infomamba import Encoder, EncoderConfig
from infomamba.mixers import build_mixer, list_mixers

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
LINEAR_SIZES = {"linformer": {"max_len": 64}}


@pytest.fixture(autouse=True)
def kernel_path(monkeypatch):
    """The GPU's path (Triton kernels as custom ops) with a fresh dynamo cache, untuned launches."""
    monkeypatch.setenv("INFOMAMBA_KERNELS", "triton")
    monkeypatch.setenv("INFOMAMBA_SCAN_AUTOTUNE", "0")
    torch._dynamo.reset()


@pytest.mark.parametrize("name,options", [(name, {}) for name in list_mixers()]
                         + [(name, form) for form in ({"ssm_heads": 2}, {"causal": True})
                            for name in ("infomamba", "mamba")])
@pytest.mark.parametrize("kernels", ["triton", "reference"])
def test_forward_and_backward_trace_without_graph_breaks(name, options, kernels, monkeypatch):
    """On the GPU's path and on a CPU's (INFOMAMBA_KERNELS=reference), also InfoMamba's and mamba's SSD and causal
    forms. On the references the scan's loop of in-place steps had broken the graph at every step, and under
    InfoMamba's `with` block dynamo then ran the whole mixer eagerly."""
    monkeypatch.setenv("INFOMAMBA_KERNELS", kernels)
    mixer = build_mixer(name, 16, **LINEAR_SIZES.get(name, {}), **options).to(DEVICE)
    x = torch.randn(2, 24, 16, device=DEVICE, requires_grad=True)
    mask = torch.zeros(2, 24, dtype=torch.bool, device=DEVICE)
    mask[1, 18:] = True
    explained = torch._dynamo.explain(mixer)(x, mask)
    assert explained.graph_break_count == 0, explained.break_reasons
    assert explained.graph_count == 1


@pytest.mark.parametrize("name", list_mixers())
def test_every_mixer_on_an_image_grid_traces_without_graph_breaks(name):
    """Image tokens on a 4 x 6 grid: the 2-D routes (VMamba's columns, LocalMamba's 2 x 2 windows) are made in the
    graph with static shapes; a window route cut out of a padded grid by a mask had broken it 6 times."""
    mixer = build_mixer(name, 16, **LINEAR_SIZES.get(name, {})).to(DEVICE)
    x = torch.randn(2, 24, 16, device=DEVICE, requires_grad=True)
    explained = torch._dynamo.explain(mixer)(x, None, (4, 6))
    assert explained.graph_break_count == 0, explained.break_reasons
    assert explained.graph_count == 1


@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
@pytest.mark.parametrize("name", ["infomamba", "mamba"])
def test_the_ssd_form_traces_without_graph_breaks(name, causal):
    """ssm_heads: the fused SSM op in the SSD form (2 heads of 16 channels, 16 states: the SSD kernels' path, not
    the reference's) traces as one graph too: both directions as the pair op, a causal mixer's one as the single
    direction's."""
    mixer = build_mixer(name, 16, ssm_heads=2, causal=causal).to(DEVICE)
    x = torch.randn(2, 24, 16, device=DEVICE, requires_grad=True)
    explained = torch._dynamo.explain(mixer)(x)
    assert explained.graph_break_count == 0, explained.break_reasons
    assert explained.graph_count == 1
    ops = {node.target for graph in explained.graphs for node in graph.graph.nodes}
    pair, single = torch.ops.infomamba.ssm_inner_pair.default, torch.ops.infomamba.ssm_inner.default
    assert (single in ops, pair in ops) == ((True, False) if causal else (False, True))


@pytest.mark.parametrize("name", ["infomamba", "attention"])
def test_the_whole_encoder_traces_as_one_graph_under_autocast(name):
    """The encoder's own glue (norms, the mixed-precision cast before each mixer, the MLP) adds no break."""
    encoder = Encoder(EncoderConfig(dim=16, depth=2, mixer=name)).to(DEVICE)
    x = torch.randn(2, 24, 16, device=DEVICE, requires_grad=True)
    with torch.autocast(DEVICE, dtype=torch.bfloat16):
        explained = torch._dynamo.explain(encoder)(x)
    assert explained.graph_break_count == 0, explained.break_reasons
    assert explained.graph_count == 1


def test_the_kernel_path_compiles_once_for_every_sequence_length():
    """Text batches are as long as their longest sample: after the second length dynamo traces the length as
    a symbol, and nothing on the kernel path pins it again (each new length would otherwise recompile)."""
    graphs = []

    def count(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    encoder = torch.compile(Encoder(EncoderConfig(dim=16, depth=1, mixer="infomamba")).to(DEVICE), backend=count)
    for length in (35, 4, 8, 21):
        x = torch.randn(2, length, 16, device=DEVICE, requires_grad=True)
        mask = torch.zeros(2, length, dtype=torch.bool, device=DEVICE)
        mask[1, length - 2:] = True
        encoder(x, mask).hidden.sum().backward()
    assert len(graphs) == 2
