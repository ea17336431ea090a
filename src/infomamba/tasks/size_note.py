"""The note that a fit's mixer is not size-matched to InfoMamba's (DESIGN.md, "Fair comparison": within ±10 % of its
parameters, by inner widths alone). A baseline given only `--model.encoder.mixer=attention` keeps its default inner
widths, so at the text recipes' size (dim 256, depth 4: configs/imdb.yaml) it has 37.7 % fewer encoder parameters than
InfoMamba, a difference a comparison of their metrics would silently count as the mixer's. The fit says so once,
with the options of configs/size_matched.yaml for its size where there is a setting."""
from __future__ import annotations

from dataclasses import replace

import yaml
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from infomamba.config import EncoderConfig
from infomamba.console import say
from infomamba.summary import SIZE_MATCHED, size_matched_options, summarize

TOLERANCE = 0.10  # configs/size_matched.yaml's


def size_note(config: EncoderConfig) -> str | None:
    """The note for an encoder whose mixer is not InfoMamba and whose parameters differ from those of InfoMamba's
    (default options, the same dim, depth and cross-layer connections) by more than `TOLERANCE`; None otherwise.
    The options it names are those of the setting for the sequences its mixer is built for (its max_len, where
    it has one: an image task's grid)."""
    if config.mixer == "infomamba":
        return None
    ours, reference = (summarize(c, 1, flops=False)["params_total"]
                       for c in (config, replace(config, mixer="infomamba", mixer_options={})))
    change = ours / reference - 1
    if abs(change) <= TOLERANCE:
        return None
    size = f"dim {config.dim}, depth {config.depth}"
    matched = size_matched_options(SIZE_MATCHED if SIZE_MATCHED.is_file() else None, config.dim, config.depth,
                                   config.mixer_options.get("max_len"))
    if config.mixer in matched:
        options = yaml.safe_dump(matched[config.mixer], default_flow_style=True).strip()
        hint = f"configs/size_matched.yaml's options for this size: --model.encoder.mixer_options='{options}'"
    else:
        hint = (f"configs/size_matched.yaml has no setting for {size}; `infomamba summary --dim {config.dim} "
                f"--depth {config.depth} --mixers infomamba {config.mixer}` counts both")
    return (f"[infomamba] note: the {config.mixer} encoder has {abs(change):.1%} {'more' if change > 0 else 'fewer'} "
            f"parameters than InfoMamba's at {size} ({ours / 1e6:.2f} M against {reference / 1e6:.2f} M), so it is "
            f"not size-matched to it; {hint}")


@rank_zero_only
def note_size(config: EncoderConfig) -> None:
    """Say `size_note` where it applies: on rank 0, the only one that counts the two encoders."""
    line = size_note(config)
    if line is not None:
        say(line)
