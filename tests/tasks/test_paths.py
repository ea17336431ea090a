"""A path the user gave that is not there is named with the folder a relative one was read from."""
from infomamba.tasks.paths import missing


def test_a_relative_path_names_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert missing("data.root", "../data/x") == (f"data.root ../data/x does not exist (relative to the working "
                                                   f"folder {tmp_path})")
    assert missing("data.root", tmp_path / "x", "is not a folder") == f"data.root {tmp_path / 'x'} is not a folder"
