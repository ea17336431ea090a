"""InfoMamba: one modality-agnostic encoder with swappable token mixers."""
from .config import EncoderConfig
from .encoder import Encoder
from .mixers import list_mixers

__all__ = ["Encoder", "EncoderConfig", "list_mixers"]
