"""One dt_rank rule for every SSM mixer: `dt_rank_auto(D)` of the block width unless `dt_rank` is given."""
import pytest

from infomamba.layers.ssm import SelectiveSSM, dt_rank_auto
from infomamba.mixers import build_mixer

DIM = 48  # ceil(D / 16) = 3, while ceil(E / 16) of the inner width E = 2 D would be 6
SSM_MIXERS = {"infomamba": {"k_max": 8, "d_concept": 8}, "infomamba-no_filter": {"variant": "no_filter"},
              "infomamba-ssd": {"k_max": 8, "d_concept": 8, "ssm_heads": 4}, "mamba-ssd": {"ssm_heads": 4},
              "mamba": {}, "vmamba": {}, "localmamba": {}, "mambavision": {},
              "vmamba-ssd": {"ssm_heads": 4}, "localmamba-ssd": {"ssm_heads": 4}, "mambavision-ssd": {"ssm_heads": 4}}


def ssms(name, **options):
    mixer = build_mixer(name.split("-")[0], DIM, layer_idx=0, depth=2, **{**SSM_MIXERS[name], **options})
    found = [m for m in mixer.modules() if isinstance(m, SelectiveSSM)]
    assert found, f"{name} holds no SelectiveSSM"
    return found


def test_auto_rank_is_ceil_of_the_block_width_over_16():
    assert [dt_rank_auto(d) for d in (1, 16, 17, 48, 384)] == [1, 1, 2, 3, 24]


@pytest.mark.parametrize("name", SSM_MIXERS)
def test_every_ssm_mixer_uses_the_one_rule(name):
    assert {ssm.dt_rank for ssm in ssms(name)} == {dt_rank_auto(DIM)}
    assert {ssm.dt_rank for ssm in ssms(name, dt_rank=5)} == {5}
