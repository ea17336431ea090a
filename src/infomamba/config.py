"""EncoderConfig: every encoder option in one dataclass, validated when the encoder is built."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class EncoderConfig:
    """Options of the shared backbone. Everything but the mixer is identical across mixers (fair comparison).

    Args:
        dim: token width D.
        depth: number of blocks (norm -> mixer -> residual -> norm -> MLP -> residual).
        mixer: registered token-mixer name (see `infomamba.list_mixers()`).
        causal: every path of every block sees positions <= t only (streaming ASR, language modelling).
        mlp_ratio: MLP hidden width / dim.
        dropout: dropout after the mixer and inside the MLP.
        drop_path: stochastic-depth rate, linearly increasing over depth up to this value.
        norm: "layernorm" or "rmsnorm".
        mixer_options: mixer-specific options (e.g. {"k_max": 50, "variant": "no_mix"} for infomamba);
            unknown keys are rejected with the mixer's accepted list.
        cross_layer: None or "sparx" (SparX sparse cross-layer connections around the block stack).
        cross_layer_options: options of the cross-layer scheme (e.g. {"stride": 2, "window": 2}).
    """

    dim: int = 256
    depth: int = 6
    mixer: str = "infomamba"
    causal: bool = False
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    drop_path: float = 0.0
    norm: str = "layernorm"
    mixer_options: dict[str, Any] = field(default_factory=dict)
    cross_layer: Optional[str] = None
    cross_layer_options: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise ValueError naming the key and what was expected."""
        from .mixers import list_mixers

        for key, kind in (("dim", int), ("depth", int), ("causal", bool), ("mlp_ratio", (int, float)),
                          ("dropout", (int, float)), ("drop_path", (int, float)), ("mixer_options", dict),
                          ("cross_layer_options", dict)):
            value = getattr(self, key)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                expected = getattr(kind, "__name__", "a number")
                raise ValueError(f"encoder.{key} must be {expected}, got {value!r} ({type(value).__name__})")
        if self.dim <= 0 or self.depth <= 0 or self.mlp_ratio <= 0:
            raise ValueError(f"encoder.dim, encoder.depth and encoder.mlp_ratio must be positive, got dim={self.dim} "
                             f"depth={self.depth} mlp_ratio={self.mlp_ratio}")
        if int(self.dim * self.mlp_ratio) < 1:
            raise ValueError(f"encoder.mlp_ratio={self.mlp_ratio} leaves the MLP no hidden unit at dim={self.dim} "
                             "(hidden width int(dim * mlp_ratio) = 0)")
        if self.mixer not in list_mixers():
            raise ValueError(f"encoder.mixer={self.mixer!r} is not registered; available: {', '.join(list_mixers())} "
                             "(a mixer of your own registers when its module is imported: name the module in "
                             "INFOMAMBA_PLUGINS or an infomamba.plugins entry point)")
        contract = [key for key in ("dim", "causal", "layer_idx", "depth") if key in self.mixer_options]
        if contract:
            raise ValueError(f"encoder.mixer_options cannot set {contract}: the encoder passes them to every mixer "
                             "(set encoder.dim, encoder.causal or encoder.depth; layer_idx is each block's own)")
        if self.norm not in ("layernorm", "rmsnorm"):
            raise ValueError(f"encoder.norm must be 'layernorm' or 'rmsnorm', got {self.norm!r}")
        if not 0.0 <= self.drop_path < 1.0 or not 0.0 <= self.dropout < 1.0:
            raise ValueError("encoder.dropout and encoder.drop_path must lie in [0, 1)")
        if self.cross_layer not in (None, "sparx"):
            raise ValueError(f"encoder.cross_layer must be null or 'sparx', got {self.cross_layer!r}")
        if self.cross_layer is None and self.cross_layer_options:
            raise ValueError(f"encoder.cross_layer_options {self.cross_layer_options} without encoder.cross_layer: "
                             "set cross_layer: sparx, or drop the options")
