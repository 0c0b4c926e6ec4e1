"""The word-list download against a real HTTP server on 127.0.0.1 that the tests start.

The server counts the GET requests it answers, so "downloaded once" is what the server saw,
and it can misbehave on demand: cut the connection mid-file, stall, or answer 404.
"""

import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskcli.cli import app
from taskcli.errors import DataUnavailable
from taskcli.files import download
from taskcli.files.download import cache_name, cached_download, default_cache_dir, download_file
from taskcli.tasks.spellingbee import SpellingBee

runner = CliRunner()

WORDS = "".join(f"{word}\n" for word in ["strawberry", "banana", "Bookkeeper", "", " kiwi "] * 200)
BODY = WORDS.encode()


class WordServer:
    """A 127.0.0.1 HTTP server whose behaviour each test can change."""

    def __init__(self) -> None:
        self.gets: Counter[str] = Counter()
        self.cut = True  # /flaky.txt cuts the connection while this is set
        self.release = threading.Event()  # lets /stall.txt finish at teardown
        state = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                state.gets[self.path] += 1
                if self.path == "/missing.txt":
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                if self.path != "/no-length.txt":
                    self.send_header("Content-Length", str(len(BODY)))
                self.end_headers()
                if self.path == "/slow.txt":  # long enough for every process to be waiting
                    for start in range(0, len(BODY), len(BODY) // 4):
                        time.sleep(0.15)
                        self.wfile.write(BODY[start : start + len(BODY) // 4])
                elif self.path == "/flaky.txt" and state.cut:
                    self.wfile.write(BODY[: len(BODY) // 3])  # then the connection closes
                elif self.path == "/stall.txt":
                    state.release.wait(10)
                else:
                    self.wfile.write(BODY)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def server():
    words = WordServer()
    words.thread.start()
    yield words
    words.release.set()
    words.httpd.shutdown()
    words.httpd.server_close()


def leftovers(folder: Path) -> list[str]:
    """Files in the cache folder other than lock files."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


def test_downloads_once_then_serves_the_cache(server, tmp_path):
    url = server.url("/words.txt")
    first = cached_download(url, tmp_path)
    assert first.parent == tmp_path
    assert first.read_bytes() == BODY
    assert server.gets["/words.txt"] == 1

    second = cached_download(url, tmp_path)
    assert second == first
    assert server.gets["/words.txt"] == 1  # no second request

    server.httpd.shutdown()  # the cache alone is enough now
    assert cached_download(url, tmp_path).read_bytes() == BODY
    assert leftovers(tmp_path) == [first.name]


def test_default_cache_folder_is_taskcli_cache_dir(server):
    path = cached_download(server.url("/words.txt"))
    assert path.parent == Path(os.environ["TASKCLI_CACHE_DIR"])


def test_cache_folder_follows_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.delenv("TASKCLI_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "taskcli"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "taskcli"


def test_cache_names_are_readable_and_distinct():
    a = cache_name("https://example.org/lists/words_alpha.txt")
    b = cache_name("https://mirror.example.org/lists/words_alpha.txt")
    assert a.startswith("words_alpha-") and a.endswith(".txt")
    assert b.startswith("words_alpha-") and a != b
    assert "/" not in cache_name("https://example.org/") and cache_name("https://example.org/")


def test_body_without_content_length_is_read_to_the_end(server, tmp_path):
    assert cached_download(server.url("/no-length.txt"), tmp_path).read_bytes() == BODY


def test_concurrent_processes_download_once(server, tmp_path):
    url = server.url("/slow.txt")
    script = (
        "import sys; from taskcli.files.download import cached_download as c; print(c(sys.argv[1]))"
    )
    env = {**os.environ, "TASKCLI_CACHE_DIR": str(tmp_path)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, url], env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    outputs = [process.communicate(timeout=60)[0].strip() for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0, 0]
    assert server.gets["/slow.txt"] == 1
    assert len(set(outputs)) == 1
    assert Path(outputs[0]).read_bytes() == BODY
    assert leftovers(tmp_path) == [Path(outputs[0]).name]


def test_cut_connection_leaves_no_cache_entry_and_the_next_call_retries(server, tmp_path):
    url = server.url("/flaky.txt")
    with pytest.raises(DataUnavailable, match=r"closed after \d+ of \d+ bytes") as error:
        cached_download(url, tmp_path)
    assert url in str(error.value)
    assert leftovers(tmp_path) == []  # neither the file nor its temporary name

    server.cut = False
    path = cached_download(url, tmp_path)
    assert path.read_bytes() == BODY
    assert server.gets["/flaky.txt"] == 2


def test_http_404_is_data_unavailable_with_url_and_hint(server, tmp_path):
    url = server.url("/missing.txt")
    with pytest.raises(DataUnavailable) as error:
        cached_download(url, tmp_path, hint="pass -p word_list=PATH to use a local word list")
    message = str(error.value)
    assert url in message and "HTTP 404" in message
    assert "Pass -p word_list=PATH to use a local word list." in message
    assert leftovers(tmp_path) == []


def test_failed_download_keeps_an_existing_file(server, tmp_path):
    target = tmp_path / "words.txt"
    target.write_text("old\n")
    with pytest.raises(DataUnavailable):
        download_file(server.url("/missing.txt"), target)
    assert target.read_text() == "old\n"
    assert leftovers(tmp_path) == ["words.txt"]


def test_unreachable_host_fails_at_once(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/words.txt"
    began = time.monotonic()
    with pytest.raises(DataUnavailable, match="could not download") as error:
        cached_download(url, tmp_path)
    assert time.monotonic() - began < 5
    assert url in str(error.value)


def test_stalled_server_times_out(server, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "TIMEOUT_SECONDS", 0.3)
    began = time.monotonic()
    with pytest.raises(DataUnavailable, match="timed out"):
        cached_download(server.url("/stall.txt"), tmp_path)
    assert time.monotonic() - began < 3
    assert leftovers(tmp_path) == []


def test_spellingbee_reads_a_word_list_url(server):
    task = SpellingBee(word_list=server.url("/words.txt"), size=30)
    assert task.words[:5] == ["strawberry", "banana", "bookkeeper", "kiwi", "strawberry"]
    for conversation in task:
        word = conversation["messages"][1]["content"][1]["text"].split("'")[1]
        assert word in {"strawberry", "banana", "bookkeeper", "kiwi"}
    assert server.gets["/words.txt"] == 1


def test_cli_show_spellingbee_from_a_url(server):
    url = server.url("/words.txt")
    result = runner.invoke(app, ["show", "spellingbee", "-p", f"word_list={url}", "-n", "2"])
    assert result.exit_code == 0, result.output
    assert "spellingbee / train" in result.output
    assert "example 1 of 1000" in result.output
    assert ".count(" in result.output and "#### " in result.output

    again = runner.invoke(app, ["show", "spellingbee", "-p", f"word_list={url}", "--index", "5"])
    assert again.exit_code == 0, again.output
    assert server.gets["/words.txt"] == 1


def test_cli_bad_url_exits_1_with_a_clear_message(server):
    url = server.url("/missing.txt")
    result = runner.invoke(app, ["show", "spellingbee", "-p", f"word_list={url}"])
    assert result.exit_code == 1
    assert "Error:" in result.output and url in result.output
    assert "Set word_list to a local file" in result.output
    assert "Hint: Set it with -p word_list=…." in result.output  # the CLI names the flag
    assert "Traceback" not in result.output
