"""The mixer contract (DESIGN.md), checked for every registered mixer."""
import pytest
import torch

from infomamba.mixers import Mixer, MixerAux, build_mixer, list_mixers, mixer_class

from shape_audit import ShapeAudit

DIM = 16
L = 53  # prime: distinct from every inner size below (k_max 20, chunk 8, d_state 4, windows, heads)
SMALL = {"infomamba": {"k_max": 20, "chunk": 8, "d_state": 4, "d_concept": 8}}
SHAPES = {"1d_causal": (True, None), "1d_bidirectional": (False, None), "2d_grid": (False, (6, 8))}
# every registered mixer with its defaults, plus configurations of another form: id -> (mixer, options)
CONFIGS = {name: (name, {}) for name in list_mixers()} | {
    "infomamba-ssd": ("infomamba", {"ssm_heads": 4}),     # SSD (Mamba-2) SSM: 4 heads of 8 channels
    "mamba-ssd": ("mamba", {"ssm_heads": 4}),
    "vmamba-ssd": ("vmamba", {"ssm_heads": 4}),           # 4 heads of 8 channels, one set a route
    "localmamba-ssd": ("localmamba", {"ssm_heads": 4}),   # 4 heads of 8 channels, one set a direction
    # the SSM scans half of E = D: 2 heads of 4 channels; attn_layers=[]: layer 1 of 2 scans, not attends
    "mambavision-ssd": ("mambavision", {"ssm_heads": 2, "attn_layers": []}),
}


def build(name, causal, **extra):
    return build_mixer(name, DIM, causal=causal, layer_idx=1, depth=2, **{**SMALL.get(name, {}), **extra})


def build_or_refuse(config, causal):
    name, options = CONFIGS[config]
    try:
        return build(name, causal, **options)
    except ValueError as err:
        assert "causal" in str(err).lower(), f"{config} refused with an unclear error: {err}"
        pytest.skip(f"{config} refuses causal mode: {err}")


@pytest.mark.parametrize("name", list_mixers())
def test_every_mixer_is_a_mixer_that_declares_its_capabilities(name):
    """Subclass of `Mixer`, `causal_capable` and `linear_time` declared on the class, and
    `causal_capable` False exactly when causal=True is refused at build."""
    cls = mixer_class(name)
    assert issubclass(cls, Mixer) and cls.mixer_name == name
    assert isinstance(cls.causal_capable, bool) and isinstance(cls.linear_time, bool)
    if cls.causal_capable:
        assert build(name, True).causal
    else:
        with pytest.raises(ValueError, match="causal"):
            build(name, True)
    assert not build(name, False).causal


def test_a_mixer_must_declare_its_capabilities():
    with pytest.raises(TypeError, match="linear_time"):
        type("Undeclared", (Mixer,), {"causal_capable": True})


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", CONFIGS)
def test_forward_backward_every_shape(name, shape):
    causal, grid = SHAPES[shape]
    mixer = build_or_refuse(name, causal)
    length = grid[0] * grid[1] if grid else L
    x = torch.randn(2, length, DIM, requires_grad=True)
    y, aux = mixer(x, None, grid)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert isinstance(aux, MixerAux)
    y.square().sum().backward()
    assert x.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in mixer.parameters()) or not list(mixer.parameters())


VARIANTS = {f"infomamba-{v}": ("infomamba", {"variant": v}) for v in ("no_imf", "no_ssm", "no_filter", "static_rr",
                                                                        "no_mix")}


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("name", CONFIGS | VARIANTS)
def test_every_parameter_learns(name, causal):
    """Every parameter gets a non-zero gradient from the output and the aux terms the losses train (a parameter
    with no path to them is dead weight that the size-matched counts still include)."""
    mixer_name, options = {**CONFIGS, **VARIANTS}[name]
    try:
        mixer = build(mixer_name, causal, **options).train()
    except ValueError:
        pytest.skip(f"{name} refuses causal mode")
    y, aux = mixer(torch.randn(2, L, DIM), None, None)
    streams = [t.square().sum() for t in (aux.h_pool, aux.r_pool, aux.mi_hash) if t is not None]
    sum(streams, y.square().sum()).backward()
    assert [n for n, p in mixer.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0] == []


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("name", CONFIGS)
def test_padding_invariance(name, causal):
    """A right-padded sample gives, at its real positions, the output it gives alone."""
    mixer = build_or_refuse(name, causal).eval()
    real = 31
    x = torch.randn(2, L, DIM)
    mask = torch.zeros(2, L, dtype=torch.bool)
    mask[1, real:] = True
    with torch.no_grad():
        y, _ = mixer(x, mask, None)
        alone, _ = mixer(x[1:, :real], None, None)
        full, _ = mixer(x[:1], None, None)
    torch.testing.assert_close(y[1, :real], alone[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(y[0], full[0], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", CONFIGS)
def test_causality(name):
    """Outputs before t0 ignore inputs from t0 on, exactly (in float64: not even through rounding, e.g. of a sum
    that adds and takes back a later token); outputs from t0 on do depend on them. t0 lies inside a chunk of the
    causal concept filter."""
    mixer = build_or_refuse(name, True).eval().double()
    t0 = 29
    x = torch.randn(1, L, DIM, dtype=torch.float64)
    x2 = x.clone()
    x2[:, t0:] = torch.randn(1, L - t0, DIM, dtype=torch.float64)
    with torch.no_grad():
        y, _ = mixer(x, None, None)
        y2, _ = mixer(x2, None, None)
    assert torch.equal(y[:, :t0], y2[:, :t0])
    assert (y[:, t0:] - y2[:, t0:]).abs().max() > 1e-3


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("name", CONFIGS)
def test_linear_time_mixers_never_build_an_L_by_L_tensor(name, causal):
    mixer = build_or_refuse(name, causal)
    if not mixer.linear_time:
        pytest.skip(f"{name} is quadratic by design")
    x = torch.randn(2, L, DIM, requires_grad=True)
    mask = torch.zeros(2, L, dtype=torch.bool)
    mask[1, 40:] = True
    with ShapeAudit() as audit:
        y, _ = mixer(x, mask, None)
        y.sum().backward()
    assert audit.records, "the audit saw no ops"
    assert audit.quadratic(L) == []


def test_audit_catches_a_dense_token_product():
    """The audit itself flags a naive softmax(Q K^T) V (SDPA's fused CPU kernel materialises no L x L)."""
    q = torch.randn(2, L, DIM)
    with ShapeAudit() as audit:
        (q @ q.transpose(1, 2)).softmax(-1) @ q
    assert audit.quadratic(L)


@pytest.fixture
def own_registry(monkeypatch):
    """Mixers registered by a test leave the registry with it."""
    import infomamba.mixers as mixers

    list_mixers()
    monkeypatch.setattr(mixers, "_REGISTRY", dict(mixers._REGISTRY))


def test_a_mixer_that_breaks_the_contract_is_named_by_the_encoder(own_registry):
    """A bare tensor would be unpacked along the batch, a (B, 1, D) output broadcast, a dict taken for the aux:
    each a silently wrong model, stopped at the first forward with the mixer named."""
    from infomamba import Encoder, EncoderConfig
    from infomamba.mixers import Mixer, register_mixer

    class Broken(Mixer):
        causal_capable = linear_time = True

        def __init__(self, dim, *, causal=False, layer_idx=0, depth=1, returns="tensor"):
            super().__init__()
            self.causal, self.returns, self.proj = causal, returns, torch.nn.Linear(dim, dim)

        def forward(self, x, padding_mask=None, grid=None):
            y = self.proj(x)
            return {"tensor": y, "pooled": (y[:, :1], MixerAux()), "dict": (y, {})}[self.returns]

    register_mixer("broken_for_contract_test")(Broken)
    x = torch.randn(2, 5, DIM)
    cases = (("tensor", TypeError, "must return \\(y, MixerAux\\), got Tensor"),
             ("pooled", ValueError, "returned y of shape \\(2, 1, 16\\) for an input of shape"),
             ("dict", TypeError, "must return a MixerAux beside y, got dict"))
    for returns, error, words in cases:
        config = EncoderConfig(dim=DIM, depth=1, mixer="broken_for_contract_test", mixer_options={"returns": returns})
        with pytest.raises(error, match=f"mixer Broken {words}"):
            Encoder(config)(x)


def test_a_custom_mixer_that_cannot_be_causal_is_refused(own_registry):
    from infomamba.mixers import Mixer, register_mixer

    class Peek(Mixer):
        causal_capable, linear_time = False, True

        def __init__(self, dim, *, causal=False, layer_idx=0, depth=1):
            super().__init__()
            self.causal = causal

        def forward(self, x, padding_mask=None, grid=None):
            return x.mean(1, keepdim=True).expand_as(x), MixerAux()

    register_mixer("peek_for_contract_test")(Peek)
    with pytest.raises(ValueError, match="mixer 'peek_for_contract_test' cannot be causal"):
        build_mixer("peek_for_contract_test", DIM, causal=True)


def test_a_class_defined_again_replaces_its_registration_and_another_is_refused(own_registry):
    """A notebook cell run twice defines the class again (same module and name): it replaces the first, where it had
    been refused as registered twice; a different class under a taken name still is."""
    from infomamba.mixers import Mixer, register_mixer

    def define():
        class Cell(Mixer):
            causal_capable = linear_time = True

            def __init__(self, dim, *, causal=False, layer_idx=0, depth=1):
                super().__init__()
                self.causal = causal

            def forward(self, x, padding_mask=None, grid=None):
                return x, MixerAux()
        return Cell

    first, again = define(), define()
    register_mixer("cell_for_contract_test")(first)
    register_mixer("cell_for_contract_test")(again)
    assert mixer_class("cell_for_contract_test") is again
    with pytest.raises(ValueError, match="mixer 'attention' registered twice"):
        register_mixer("attention")(again)
