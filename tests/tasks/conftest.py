"""Task tests never write into the real user cache: each test gets its own `INFOMAMBA_CACHE`."""
import pytest


@pytest.fixture(autouse=True)
def _own_user_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("INFOMAMBA_CACHE", str(tmp_path_factory.mktemp("infomamba_cache")))
