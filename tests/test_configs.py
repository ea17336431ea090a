"""Every shipped recipe in configs/ parses for the task its header names (`infomamba fit --task T --config ...`):
a renamed or misspelled key fails here, not at a user's first run."""
import re
from pathlib import Path

import pytest

from infomamba.cli import main

CONFIGS = sorted(p for p in (Path(__file__).parents[1] / "configs").glob("*.yaml") if p.name != "size_matched.yaml")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_the_recipe_parses_for_its_task(path, capsys):
    task = re.search(r"--task (\w+) --config configs/" + re.escape(path.name), path.read_text())
    assert task, f"{path.name}: its header names no `infomamba fit --task T --config configs/{path.name}`"
    with pytest.raises(SystemExit) as done:
        main(["fit", "--task", task.group(1), "--config", str(path), "--print_config"])
    assert not done.value.code
    assert "seed_everything: 0" in capsys.readouterr().out
