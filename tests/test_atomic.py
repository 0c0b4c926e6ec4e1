"""`taskcli.files.atomic`: outputs appear whole or not at all, and big ones reach the disk early."""

import gzip
import threading
import time

import pytest

from taskcli.files import atomic
from taskcli.files.atomic import atomic_output


@pytest.fixture
def flushes(monkeypatch):
    """The flushes to disk asked for while writing, with a tiny threshold to make them happen."""
    calls = []
    monkeypatch.setattr(atomic, "WRITEBACK_BYTES", 1000)
    monkeypatch.setattr(atomic, "_fdatasync", lambda fd: calls.append(fd))
    return calls


def writeback_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "taskcli-writeback"]


def wait_for(calls: list) -> None:
    deadline = time.monotonic() + 10
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.mark.parametrize("name", ["out.jsonl", "out.jsonl.gz"])
def test_a_large_output_is_flushed_to_disk_while_it_is_written(tmp_path, flushes, name):
    chunks = [bytes([65 + n]) * 700 + b"\n" for n in range(20)]
    with atomic_output(tmp_path / name) as out:
        for chunk in chunks:
            out.write(chunk)
        if not name.endswith(".gz"):  # compressed, 14 kB stays under the threshold
            wait_for(flushes)
            assert flushes
    data = (tmp_path / name).read_bytes()
    assert (gzip.decompress(data) if name.endswith(".gz") else data) == b"".join(chunks)
    assert writeback_threads() == []
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_a_failure_while_flushing_keeps_the_old_file_and_leaves_nothing(tmp_path, flushes):
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_output(target) as out:
        for _ in range(10):
            out.write(b"x" * 700)
        wait_for(flushes)
        raise RuntimeError("disk on fire")
    assert flushes
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]
    assert writeback_threads() == []


def test_small_outputs_start_no_thread(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(atomic.threading.Thread, "start", lambda t: started.append(t))
    with atomic_output(tmp_path / "small.json") as out:
        out.write(b"{}\n")
    assert (tmp_path / "small.json").read_bytes() == b"{}\n"
    assert started == []
