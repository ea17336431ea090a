"""Plugins: a user's module that registers a mixer, found through INFOMAMBA_PLUGINS or an `infomamba.plugins`
entry point of an installed distribution, imported once, its failure one line naming it; and a real fit with it."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import infomamba
from infomamba import mixers, plugins
from infomamba.mixers import build_mixer
from infomamba.plugins import PluginError, load_plugins

# The module docstring's example (the minimal mixer contract), run as written there.
MIXER = textwrap.dedent(plugins.__doc__.split("in the project folder\n\n")[1].split("\n\nis declared")[0])


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """Each test starts with no plugin loaded and leaves the mixer registry, sys.path and sys.modules as they were
    (the modules it wrote, all in tmp_path, are forgotten: the next test writes others of the same names)."""
    infomamba.list_mixers()  # the built-in mixers registered in the real registry, before it is swapped
    monkeypatch.setattr(mixers, "_REGISTRY", dict(mixers._REGISTRY))
    monkeypatch.setattr(plugins, "_LOADED", {})
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delenv(plugins.ENV, raising=False)
    yield
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def on_path(monkeypatch, folder: Path) -> None:
    monkeypatch.syspath_prepend(str(folder))  # also invalidates the import caches


def distribution(folder: Path, name: str, entry_points: str, modules: dict[str, str]) -> Path:
    """An installed distribution as importlib.metadata finds it: its modules and NAME-1.0.dist-info beside them."""
    info = f"{name}-1.0.dist-info"
    return write(folder, {f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
                          f"{info}/entry_points.txt": f"[infomamba.plugins]\n{entry_points}\n", **modules})


def test_a_module_named_in_the_environment_registers_its_mixer(tmp_path, monkeypatch):
    on_path(monkeypatch, write(tmp_path, {"mymixers.py": MIXER}))
    monkeypatch.setenv("INFOMAMBA_PLUGINS", " mymixers, ")
    assert "mlpmix" not in infomamba.list_mixers()
    assert load_plugins() == ["mymixers"]
    assert "mlpmix" in infomamba.list_mixers()
    y, _ = build_mixer("mlpmix", 8)(torch.randn(2, 5, 8))
    assert y.shape == (2, 5, 8)


def test_a_mixer_of_a_plugin_not_loaded_is_refused_saying_how_to_load_it():
    with pytest.raises(ValueError, match=r"^encoder.mixer='mlpmix' is not registered; available: attention, .*"
                                         r"name the module in INFOMAMBA_PLUGINS or an infomamba.plugins entry point"):
        infomamba.EncoderConfig(mixer="mlpmix").validate()


def test_the_working_folder_is_searched_last(tmp_path, monkeypatch):
    """The console script's sys.path lacks the working folder: it is appended, so a plugin file there is found."""
    monkeypatch.chdir(write(tmp_path, {"mymixers.py": MIXER}))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != str(tmp_path)]
    monkeypatch.setenv("INFOMAMBA_PLUGINS", "mymixers")
    assert load_plugins() == ["mymixers"] and sys.path[-1] == str(tmp_path)
    assert "mlpmix" in infomamba.list_mixers()


def test_an_entry_point_of_an_installed_distribution_is_loaded(tmp_path, monkeypatch):
    on_path(monkeypatch, distribution(tmp_path, "mypkg", "mine = mypkg_mixers:MLPMix", {"mypkg_mixers.py": MIXER}))
    assert load_plugins() == ["mypkg_mixers:MLPMix"]
    assert plugins._LOADED["mypkg_mixers:MLPMix"] is mixers.mixer_class("mlpmix")


def test_entry_points_load_before_the_environment_and_each_plugin_once(tmp_path, monkeypatch):
    counted = "from pathlib import Path\nPath(__file__).with_suffix('.count').open('a').write('x')\n"
    on_path(monkeypatch, distribution(tmp_path, "mypkg", "mine = counted", {"counted.py": counted, "other.py": ""}))
    monkeypatch.setenv("INFOMAMBA_PLUGINS", "other,counted,other")
    assert load_plugins() == ["counted", "other"]
    assert load_plugins() == ["counted", "other"]
    assert (tmp_path / "counted.count").read_text() == "x"


def test_a_plugin_that_fails_is_one_line_naming_it_where_it_was_declared_and_the_error(tmp_path, monkeypatch):
    on_path(monkeypatch, distribution(tmp_path, "brokenpkg", "bad = broken_ep", {
        "broken_ep.py": "import no_such_dependency\n", "broken_env.py": "x = 1\ny = x / 0\n"}))
    with pytest.raises(PluginError) as failed:
        load_plugins()
    assert str(failed.value) == (f"plugin broken_ep (entry point 'bad' of distribution brokenpkg) failed to load: "
                                 f"ModuleNotFoundError: No module named 'no_such_dependency' "
                                 f"(at {tmp_path / 'broken_ep.py'}:1)")

    (tmp_path / "brokenpkg-1.0.dist-info" / "entry_points.txt").unlink()
    for declared, error in (("broken_env", f"ZeroDivisionError: division by zero (at {tmp_path / 'broken_env.py'}:2)"),
                            ("absent", "ModuleNotFoundError: No module named 'absent'")):
        monkeypatch.setenv("INFOMAMBA_PLUGINS", declared)
        with pytest.raises(PluginError) as failed:
            load_plugins()
        assert str(failed.value) == f"plugin {declared} (INFOMAMBA_PLUGINS) failed to load: {error}"
        assert isinstance(failed.value, ImportError)


def test_the_cli_fits_and_tests_with_a_plugin_mixer_from_the_working_folder(tmp_path):
    """New processes, the working folder not on sys.path (`-P`, like the console script), the checkpoint tested in
    a process of its own: `infomamba.cli.main` loads the plugins before it looks the mixer up."""
    write(tmp_path, {"mymixers.py": MIXER})
    env = {**os.environ, "INFOMAMBA_PLUGINS": "mymixers", "INFOMAMBA_CACHE": str(tmp_path / "cache"),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    code = "import sys; from infomamba.cli import main; main(sys.argv[1:])"
    args = ["fit", "--task", "text", "--model.encoder.mixer=mlpmix", "--model.encoder.dim=16",
            "--model.encoder.depth=1", "--data.listops_size=64", "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=2", "--trainer.enable_progress_bar=false"]
    done = subprocess.run([sys.executable, "-P", "-c", code, *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[infomamba] plugins: mymixers" in done.stdout and "fit done in" in done.stdout
    run = tmp_path / "runs" / "text" / "version_0"
    assert "mixer: mlpmix" in (run / "config.yaml").read_text()

    test = ["test", "--task", "text", f"--ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
            "--trainer.limit_test_batches=2", "--trainer.enable_progress_bar=false"]
    done = subprocess.run([sys.executable, "-P", "-c", code, *test], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "test/acc" in done.stdout
