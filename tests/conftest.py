"""Shared test setup: every test runs offline, with its own caches, away from the user's data."""

import pytest


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path_factory, monkeypatch):
    """No Hub, no user caches: HF_HOME and taskcli's cache live in a fresh folder per test."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("TASKCLI_CACHE_DIR", str(home / "taskcli-cache"))
    monkeypatch.delenv("TASKCLI_DATA_DIR", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "120")
