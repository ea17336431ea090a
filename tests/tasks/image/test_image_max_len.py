"""The image task builds a mixer of per-position parameters (Linformer's E, F; VMI-SA's alpha, beta) given no
max_len for its grid: the default 1,024 rows had been built and counted on a 49-token grid, never read. A
checkpoint of a model built with the longer rows loads their first rows, the only ones a grid reads."""
import pytest
import torch

from infomamba.tasks.base import moments_cut_to
from infomamba.tasks.image.module import ImageClassifier

GRID = dict(num_classes=3, in_chans=1, image_size=16, patch_size=4)  # a 4 x 4 grid: 16 tokens


def classifier(mixer: str, **options) -> ImageClassifier:
    return ImageClassifier(encoder={"dim": 16, "depth": 2, "mixer": mixer, "mixer_options": options}, **GRID)


@pytest.mark.parametrize("mixer, table", [("linformer", "E"), ("vmisa", "alpha")])
def test_a_mixer_with_per_position_rows_is_built_for_the_grid(mixer, table):
    model = classifier(mixer)
    axis = 1 if mixer == "linformer" else 0
    assert {getattr(block.mixer, table).shape[axis] for block in model.encoder.stack.blocks} == {16}
    assert model.hparams.encoder["mixer_options"] == {"max_len": 16}  # so a checkpoint rebuilds it so
    assert classifier(mixer, max_len=64).encoder.longest_sequence() == 64  # the user's own is kept
    assert classifier("mamba").hparams.encoder["mixer_options"] == {}


@pytest.mark.parametrize("mixer", ["linformer", "vmisa"])
def test_a_model_built_with_longer_rows_loads_the_rows_its_grid_reads(mixer):
    torch.manual_seed(0)
    before = classifier(mixer, max_len=1024).eval()
    after = classifier(mixer).eval()
    after.load_state_dict(before.state_dict())
    images = torch.randn(2, 1, 16, 16)
    torch.testing.assert_close(after(images)[0], before(images)[0])


def adamw(model: ImageClassifier) -> torch.optim.AdamW:
    return torch.optim.AdamW([{"params": group} for group in model.parameter_groups()])


def test_a_fit_resumed_from_longer_rows_cuts_their_moments_and_steps():
    """`fit --ckpt_path last` of such a run had stopped in AdamW's first step: moments of 1,024 rows, a table of 16."""
    torch.manual_seed(0)
    before = classifier("linformer", max_len=1024)
    optimizer = adamw(before)
    before(torch.randn(2, 1, 16, 16))[0].sum().backward()
    optimizer.step()
    states = [optimizer.state_dict()]
    after = classifier("linformer")
    after.load_state_dict(before.state_dict())
    moments_cut_to(states, [p for group in after.parameter_groups() for p in group])
    resumed = adamw(after)
    resumed.load_state_dict(states[0])
    after(torch.randn(2, 1, 16, 16))[0].sum().backward()
    resumed.step()
    table = after.encoder.stack.blocks[0].mixer.E
    assert resumed.state[table]["exp_avg"].shape == table.shape == (1, 16, 256)
