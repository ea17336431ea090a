"""InfoMamba: one modality-agnostic encoder with swappable token mixers."""
from .config import EncoderConfig
from .encoder import Encoder, EncoderOutput
from .mixers import Mixer, MixerAux, build_mixer, list_mixers, register_mixer

__all__ = ["Encoder", "EncoderConfig", "EncoderOutput", "Mixer", "MixerAux", "build_mixer", "list_mixers",
           "list_tasks", "register_mixer"]


def list_tasks() -> list[str]:
    """Names `infomamba --task` accepts (built-in and registered). The registry is imported on the first
    call, not with the package, so that `import infomamba` loads no part of `infomamba.tasks`."""
    from .tasks.registry import list_tasks as registered

    return registered()
