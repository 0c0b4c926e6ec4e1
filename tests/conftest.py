"""Shared test setup: every test runs offline, with its own caches, away from the user's data."""

import os
import sys

import pytest
from hypothesis import settings

from taskcli.sandbox import execution

# Property tests judge results, not speed: a loaded machine must not fail them on a deadline.
settings.register_profile("taskcli", deadline=None)
settings.load_profile("taskcli")


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


@pytest.fixture(scope="session")
def tokenizer_folders(tmp_path_factory):
    """Small tokenizers made once per session, by name (see tests/tokenizers_data.py)."""
    import tokenizers_data

    root = tmp_path_factory.mktemp("tokenizers")
    return {
        "nanochat": tokenizers_data.write_nanochat_tokenizer(root / "nanochat"),
        "bytes": tokenizers_data.write_bytes_tokenizer(root / "bytes"),
        "bytes-bare": tokenizers_data.write_bytes_tokenizer(root / "bare", chat_tokens=False),
        "hf": tokenizers_data.write_hf_tokenizer(root / "hf"),
        "hf-plain": tokenizers_data.write_hf_tokenizer(
            root / "hf-plain", plain_added=("<|user_start|>", "<|bos|>")
        ),
    }


@pytest.fixture
def hidden_folder(monkeypatch):
    """A folder of /dev, which the sandbox replaces whole, on the sys.path programs get."""
    folders = [e.path for e in os.scandir("/dev") if e.is_dir(follow_symlinks=False)]
    folder = next((f for f in folders if f != "/dev/shm"), None)
    if folder is None:
        pytest.skip("no folder in /dev but /dev/shm")
    found = execution.site_packages(sys.executable)
    monkeypatch.setattr(execution, "site_packages", lambda python: (*found, folder))
    execution._probe.cache_clear()  # the probe finds hidden folders, once per interpreter
    yield folder
    execution._probe.cache_clear()
