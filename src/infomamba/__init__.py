"""InfoMamba: one modality-agnostic encoder with swappable token mixers."""
from .config import EncoderConfig
from .encoder import Encoder
from .mixers import list_mixers

__all__ = ["Encoder", "EncoderConfig", "list_mixers", "list_tasks"]


def list_tasks() -> list[str]:
    """Names `infomamba --task` accepts (built-in and registered). The registry is imported on the first
    call, not with the package, so that `import infomamba` loads no part of `infomamba.tasks`."""
    from .tasks.registry import list_tasks as registered

    return registered()
