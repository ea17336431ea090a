"""PatchEmbed: grids at many resolutions, row-major order, positional resampling, errors, grads."""

import pytest
import torch

from infomamba.tasks.image.frontend import PatchEmbed, resample_pos_embed, sincos_pos_embed

POS = ["learned", "sincos"]
SIZES = [(32, 32), (64, 48), (16, 80), (8, 8)]


@pytest.mark.parametrize("pos", POS)
@pytest.mark.parametrize("size", SIZES)
def test_grid_and_token_count(pos, size):
    embed = PatchEmbed(in_chans=3, dim=16, patch_size=8, pos=pos, img_size=32)
    tokens, grid = embed(torch.randn(2, 3, *size))
    assert grid == (size[0] // 8, size[1] // 8)
    assert tokens.shape == (2, grid[0] * grid[1], 16)
    assert torch.isfinite(tokens).all()


@pytest.mark.parametrize("pos", POS)
def test_pixel_change_moves_only_its_token(pos):
    """Perturbing the pixels of patch (r, c) changes token r * W + c and no other (row-major)."""
    torch.manual_seed(0)
    embed = PatchEmbed(in_chans=1, dim=8, patch_size=4, pos=pos, img_size=16)
    images = torch.randn(1, 1, 12, 20)  # grid (3, 5): H != W, so row-/column-major differ
    base, (h, w) = embed(images)
    for r, c in [(0, 0), (0, 4), (1, 2), (2, 0), (2, 4)]:
        changed = images.clone()
        changed[..., 4 * r + 1, 4 * c + 2] += 5.0
        tokens, _ = embed(changed)
        moved = (tokens - base).abs().sum(-1)[0].nonzero().flatten().tolist()
        assert moved == [r * w + c]


def test_learned_position_is_row_major():
    """With the conv zeroed, token r * W + c is exactly the table entry (r, c) at the base grid."""
    embed = PatchEmbed(in_chans=3, dim=4, patch_size=4, pos="learned", img_size=(8, 12))
    with torch.no_grad():
        embed.proj.weight.zero_()
        embed.proj.bias.zero_()
        table = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)
        embed.pos_embed.copy_(table)
    tokens, grid = embed(torch.randn(1, 3, 8, 12))
    assert grid == (2, 3)
    for r in range(2):
        for c in range(3):
            assert torch.equal(tokens[0, r * 3 + c], table[r, c])


def test_sincos_rows_then_columns():
    """First half of each sin-cos token depends on the row only, second half on the column only."""
    pe = sincos_pos_embed((3, 5), dim=8).reshape(3, 5, 8)
    assert torch.allclose(pe[:, :1, :4].expand(3, 5, 4), pe[..., :4])  # same row -> same 1st half
    assert torch.allclose(pe[:1, :, 4:].expand(3, 5, 4), pe[..., 4:])  # same col -> same 2nd half
    assert not torch.allclose(pe[0, 0, :4], pe[1, 0, :4])
    assert not torch.allclose(pe[0, 0, 4:], pe[0, 1, 4:])
    embed = PatchEmbed(in_chans=1, dim=8, patch_size=2, pos="sincos")
    with torch.no_grad():
        embed.proj.weight.zero_()
        embed.proj.bias.zero_()
    tokens, _ = embed(torch.randn(1, 1, 6, 10))
    assert torch.allclose(tokens[0], pe.reshape(15, 8))


def test_resample_identity_at_base_grid():
    table = torch.randn(4, 6, 8)
    assert resample_pos_embed(table, (4, 6)) is table
    embed = PatchEmbed(in_chans=3, dim=8, patch_size=4, pos="learned", img_size=(16, 24))
    assert embed.base_grid == (4, 6)
    with torch.no_grad():
        embed.proj.weight.zero_()
        embed.proj.bias.zero_()
    tokens, _ = embed(torch.randn(1, 3, 16, 24))
    assert torch.equal(tokens[0], embed.pos_embed.reshape(24, 8))


@pytest.mark.parametrize("grid", [(8, 8), (2, 3), (7, 5)])
def test_resample_keeps_constants_and_is_smooth(grid):
    """Bicubic resampling reproduces a constant table and keeps a ramp monotone and row-constant."""
    constant = torch.full((4, 4, 3), 0.7)
    expected = torch.full((*grid, 3), 0.7)
    assert torch.allclose(resample_pos_embed(constant, grid), expected, atol=1e-6)
    ramp = torch.linspace(0, 1, 4).reshape(4, 1, 1).expand(4, 4, 2).contiguous()
    out = resample_pos_embed(ramp, grid)
    assert out.shape == (*grid, 2)
    rows = out[:, 0, 0]
    assert (rows[1:] >= rows[:-1] - 1e-6).all()  # still increasing down the rows
    assert torch.allclose(out[:, :1], out)  # still constant along each row


@pytest.mark.parametrize("size", [(30, 32), (32, 30), (31, 31)])
def test_indivisible_size_raises(size):
    embed = PatchEmbed(in_chans=3, dim=8, patch_size=16, pos="sincos")
    label = f"{size[0]}x{size[1]}"
    with pytest.raises(ValueError, match=f"{label} is not divisible by patch_size 16"):
        embed(torch.randn(1, 3, *size))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="divisible by 4"):
        PatchEmbed(in_chans=3, dim=10, patch_size=4, pos="sincos")
    with pytest.raises(ValueError, match="pos must be one of"):
        PatchEmbed(in_chans=3, dim=8, patch_size=4, pos="rope")
    with pytest.raises(ValueError, match="img_size 30x30 is not divisible by patch_size 4"):
        PatchEmbed(in_chans=3, dim=8, patch_size=4, img_size=30)
    with pytest.raises(ValueError, match=r"expected images \(B, 3, H, W\)"):
        PatchEmbed(in_chans=3, dim=8, patch_size=4)(torch.randn(1, 1, 8, 8))


@pytest.mark.parametrize("pos", POS)
@pytest.mark.parametrize("size", [(16, 16), (24, 32)])  # base grid and a resampled one
def test_gradients_reach_every_parameter_and_input(pos, size):
    embed = PatchEmbed(in_chans=3, dim=8, patch_size=4, pos=pos, img_size=16)
    images = torch.randn(2, 3, *size, requires_grad=True)
    tokens, _ = embed(images)
    (tokens * torch.randn_like(tokens)).sum().backward()
    grads = [images.grad] + [p.grad for p in embed.parameters()]
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)
    assert len(list(embed.parameters())) == (3 if pos == "learned" else 2)


@pytest.mark.parametrize("patch", [2, 4, 8])
def test_conv_stem_keeps_the_patch_grid_and_sees_only_nearby_pixels(patch):
    """stem='conv' gives the patchify's grid; a pixel moves only tokens within the stem's receptive field."""
    torch.manual_seed(0)
    embed = PatchEmbed(in_chans=1, dim=16, patch_size=patch, pos="sincos", stem="conv").eval()
    images = torch.randn(2, 1, 8 * patch, 6 * patch)
    base, grid = embed(images)
    assert grid == (8, 6) and base.shape == (2, 48, 16)
    assert sum(isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2) for m in embed.proj) == patch.bit_length() - 1
    changed = images.clone()
    changed[0, 0, 4 * patch - 1, 3 * patch - 1] += 5.0  # the bottom-right pixel of patch (3, 2)
    moved = (embed(changed)[0] - base).abs().sum(-1)
    assert moved[1].max() == 0  # samples stay independent in eval mode (BatchNorm running stats)
    hit = moved[0].nonzero().flatten()
    rows, cols = hit // 6, hit % 6
    assert moved[0, 3 * 6 + 2] > 0 and len(hit) > 1  # overlapping: the neighbours see it too
    assert rows.min() >= 3 and rows.max() <= 4 and cols.min() >= 2 and cols.max() <= 3


def test_conv_stem_rejects_patch_sizes_it_cannot_build():
    with pytest.raises(ValueError, match="power-of-two patch_size"):
        PatchEmbed(in_chans=3, dim=16, patch_size=6, stem="conv")
    with pytest.raises(ValueError, match="stem must be one of"):
        PatchEmbed(in_chans=3, dim=16, patch_size=4, stem="overlap")


@pytest.mark.parametrize("stem", ["patch", "conv"])
def test_tokens_are_row_major_in_memory(stem):
    """The residual stream starts contiguous (B, L, dim): a transposed view of the conv output would make every
    residual add keep its strides and every LayerNorm of the encoder copy it."""
    embed = PatchEmbed(3, 32, 8, pos="learned", img_size=32, stem=stem)
    tokens, _ = embed(torch.randn(2, 3, 32, 48))
    assert tokens.is_contiguous()
    assert (tokens + torch.randn_like(tokens)).is_contiguous()


@pytest.mark.parametrize("chans", [1, 3])
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
def test_patchify_is_the_strided_conv(chans, channels_last):
    """The patch stem's matmul gives the conv of kernel = stride = patch over a non-square image, token r * W + c from
    patch row r, column c (a permute that swaps the patch's rows and columns, or the grid's, fails this)."""
    from infomamba.tasks.image.frontend import patchify
    g = torch.Generator().manual_seed(0)
    images = torch.randn(2, chans, 24, 40, generator=g)
    if channels_last:
        images = images.to(memory_format=torch.channels_last)
    weight, bias = torch.randn(16, chans, 8, 8, generator=g), torch.randn(16, generator=g)
    want = torch.nn.functional.conv2d(images, weight, bias, stride=8).flatten(2).transpose(1, 2)
    torch.testing.assert_close(patchify(images, weight, bias, 8), want, rtol=1e-5, atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = patchify(images, weight, bias, 8)
    assert got.dtype == torch.bfloat16
    assert (got.float() - want).abs().max() < 1e-2 * want.abs().max()  # bf16 operands, fp32 sums


@pytest.mark.parametrize("pos", POS)
def test_an_image_size_the_patches_do_not_divide_is_refused_when_the_model_is_built(pos):
    """With sin-cos positions such a model had been built, and the fit stopped with a traceback in its first batch."""
    from infomamba import EncoderConfig
    from infomamba.tasks.image.module import ImageClassifier

    with pytest.raises(ValueError, match=r"image_size 30 is not divisible by patch_size 4: .* \(e\.g\. 28\)"):
        ImageClassifier(num_classes=2, encoder=EncoderConfig(dim=16, depth=1), image_size=30, patch_size=4, pos=pos)


@pytest.mark.parametrize("option", ["patch_size", "image_size", "in_chans"])
@pytest.mark.parametrize("value", [0, -4])
def test_a_size_below_one_is_refused_naming_the_option(option, value):
    """model.patch_size=0 had ended the fit in a ZeroDivisionError (the grid's side image_size // patch_size)."""
    from infomamba.tasks.image.module import ImageClassifier

    sizes = {"in_chans": 1, "image_size": 8, "patch_size": 4, option: value}
    with pytest.raises(ValueError, match=rf"^model: {option} must be > 0, got {value}$"):
        ImageClassifier(num_classes=2, **sizes)


@pytest.mark.parametrize("mixer, options", [("linformer", {"max_len": 15, "proj_len": 4}), ("vmisa", {"max_len": 15})])
def test_a_grid_longer_than_the_mixers_max_len_is_refused_when_the_model_is_built(mixer, options):
    """Linformer's E and F and VMI-SA's alpha and beta have max_len rows: a 4 x 4 grid of 16 patches had stopped the
    fit with a traceback in its first batch; 16 rows take it."""
    from infomamba import EncoderConfig
    from infomamba.tasks.image.module import ImageClassifier

    def build(max_len):
        encoder = EncoderConfig(dim=16, depth=1, mixer=mixer, mixer_options={**options, "max_len": max_len})
        return ImageClassifier(num_classes=2, encoder=encoder, in_chans=1, image_size=16, patch_size=4)

    with pytest.raises(ValueError, match=rf"^the {mixer} mixer's max_len=15 is shorter than the 4 x 4 = 16 patches "
                                         r"of data.image_size 16 in model.patch_size 4: set max_len >= 16"):
        build(15)
    assert build(16)(torch.randn(2, 1, 16, 16))[0].shape == (2, 2)


def test_top5_accuracy_is_logged_only_where_it_can_be_below_one():
    """Of 5 classes or fewer every label is among the top 5: `acc5` had been logged as a constant 1."""
    from infomamba.tasks.image.module import ImageClassifier, accuracies

    assert accuracies(2) == accuracies(5) == {"acc": 1} and accuracies(10) == {"acc": 1, "acc5": 5}
    assert set(ImageClassifier(num_classes=3, in_chans=1, image_size=8, patch_size=4).metrics) == {
        "train_acc", "val_acc", "test_acc"}
