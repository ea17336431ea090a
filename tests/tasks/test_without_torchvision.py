"""Text and speech run where torchvision is broken, as after `pip install` pulled a torchvision built for
another torch: a `torchvision` package first on PYTHONPATH whose import raises what that one raises.
The image task then stops with one line naming the fix, and its frontend still imports (bench uses it)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tiny_data import TINY_MODEL, write_librispeech

FEW_STEPS = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1"]
PROBES = """
import importlib.metadata, importlib.util
import pytest
from infomamba.tasks.optional_deps import hide_broken_torchvision
hide_broken_torchvision()
assert importlib.util.find_spec("torchvision") is None
with pytest.raises(ModuleNotFoundError):
    import torchvision
with pytest.raises(importlib.metadata.PackageNotFoundError):
    importlib.metadata.version("torchvision")
print("not installed")
"""


@pytest.fixture
def broken_torchvision(tmp_path) -> dict[str, str]:
    """Environment whose `import torchvision` raises RuntimeError."""
    package = tmp_path / "shadow" / "torchvision"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('raise RuntimeError("operator torchvision::nms does not exist")\n')
    path = os.pathsep.join(filter(None, [str(package.parent), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_text_fits(tmp_path, broken_torchvision):
    done = run(["-m", "infomamba.cli", "fit", "--task", "text", "--data.listops_size=32", "--data.batch_size=8",
                *TINY_MODEL, *FEW_STEPS], broken_torchvision, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert list(tmp_path.glob("runs/text/version_0/checkpoints/last.ckpt"))


def test_asr_fits(tmp_path, broken_torchvision):
    write_librispeech(tmp_path / "LibriSpeech", utterances=3)
    done = run(["-m", "infomamba.cli", "fit", "--task", "asr", f"--data.root={tmp_path / 'LibriSpeech'}",
                "--data.test_splits=[]", "--data.batch_size=3", *TINY_MODEL, *FEW_STEPS], broken_torchvision, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert list(tmp_path.glob("runs/asr/version_0/checkpoints/last.ckpt"))


def test_availability_probes_find_it_not_installed(tmp_path, broken_torchvision):
    """As transformers does on import (torchmetrics imports it where it is installed): `find_spec` says None, as for a
    package that is not installed, rather than raising."""
    done = run(["-c", PROBES], broken_torchvision, tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "not installed", done.stderr[-3000:]


def test_image_names_the_fix_in_one_line(tmp_path, broken_torchvision):
    done = run(["-m", "infomamba.cli", "fit", "--task", "image", f"--data.root={tmp_path}"], broken_torchvision,
               tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "--task image is not available: the image task needs a torchvision that works with this torch: "
        "pip install 'infomamba[image]' (RuntimeError: operator torchvision::nms does not exist)"]
    done = run(["-c", "from infomamba.tasks.image.frontend import PatchEmbed; print(PatchEmbed.__name__)"],
               broken_torchvision, tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "PatchEmbed", done.stderr[-3000:]
