from infomamba.tasks.cache import user_cache_dir


def test_user_cache_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("INFOMAMBA_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_cache_dir() == tmp_path / "home" / ".cache" / "infomamba"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir() == tmp_path / "xdg" / "infomamba"
    monkeypatch.setenv("INFOMAMBA_CACHE", str(tmp_path / "mine"))
    assert user_cache_dir() == tmp_path / "mine"
