"""Downloads that misbehave are never cached: too slow, too big, cut short, or not a word list.

Each test serves its own body from a 127.0.0.1 server it starts (no network)."""

import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from taskcli.cli import app
from taskcli.errors import DataUnavailable
from taskcli.files import download
from taskcli.files.download import cache_name, cached_download
from taskcli.tasks.spellingbee import check_word_list

runner = CliRunner()
WORDS = b"apple\nbanana\ncherry\n"


class Server:
    """Serves `routes[path] = (headers, pieces, pause)`: each piece written after `pause` s."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[dict[str, str], list[bytes], float]] = {}
        self.stop = threading.Event()
        routes, stop = self.routes, self.stop

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                headers, pieces, pause = routes[self.path]
                self.send_response(200)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                for piece in pieces:
                    if stop.wait(pause):
                        return
                    self.wfile.write(piece)
                    self.wfile.flush()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def serve(self, path: str, pieces: list[bytes], *, length: bool = True, pause: float = 0):
        headers = {"Content-Length": str(sum(map(len, pieces)))} if length else {}
        self.routes[path] = (headers, pieces, pause)
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def server():
    running = Server()
    yield running
    running.stop.set()
    running.httpd.shutdown()


def not_cached(tmp_path, url) -> bool:
    return not (tmp_path / cache_name(url)).exists() and not list(tmp_path.glob(".*.tmp"))


def test_a_server_trickling_bytes_hits_the_total_deadline(server, tmp_path):
    url = server.serve("/trickle.txt", [b"a"] * 1000, pause=0.1)
    start = time.monotonic()
    with pytest.raises(DataUnavailable, match=r"took more than 0\.5 seconds"):
        cached_download(url, tmp_path, deadline=0.5)
    assert time.monotonic() - start < 5
    assert not_cached(tmp_path, url)


FLOOR = r"only \d+ bytes arrived in 0\.5\d* seconds, under the floor of 1,024 bytes a second"


def test_a_download_under_the_throughput_floor_is_given_up(server, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "SLOW_SECONDS", 0.5)  # the floor's window, 20 s by default
    url = server.serve("/trickle.txt", [b"a"] * 1000, pause=0.05)
    start = time.monotonic()
    with pytest.raises(DataUnavailable, match=FLOOR):
        cached_download(url, tmp_path)
    assert time.monotonic() - start < 3
    assert not_cached(tmp_path, url)


def test_a_slow_download_above_the_floor_completes(server, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "SLOW_SECONDS", 0.2)
    body = [b"word\n" * 200] * 25  # 1,000 bytes every 0.02 s: far above the floor
    url = server.serve("/slow.txt", body, pause=0.02)
    assert cached_download(url, tmp_path).read_bytes() == b"".join(body)


def test_the_cli_says_in_one_line_that_a_trickling_word_list_was_given_up(server, monkeypatch):
    monkeypatch.setattr(download, "SLOW_SECONDS", 0.5)
    url = server.serve("/words.txt", [b"a"] * 1000, pause=0.05)
    start = time.monotonic()
    result = runner.invoke(app, ["show", "spellingbee", "-p", f"word_list={url}"])
    assert time.monotonic() - start < 3
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    error, hint = result.stderr.strip().splitlines()
    assert error.startswith(f"Error: could not download {url}: only ")
    assert re.search(FLOOR, error)
    assert error.endswith("Try again later, or set word_list to a local file to use one instead.")
    assert hint.startswith("Hint: ")


@pytest.mark.parametrize("length", [True, False])
def test_a_body_over_the_size_cap_is_refused(server, tmp_path, length):
    url = server.serve("/big.txt", [b"word\n" * 1000] * 10, length=length)
    with pytest.raises(DataUnavailable, match="over 20,000 bytes"):
        cached_download(url, tmp_path, max_bytes=20_000)
    assert not_cached(tmp_path, url)


def test_a_body_cut_mid_line_without_content_length_is_not_cached(server, tmp_path):
    url = server.serve("/cut.txt", [WORDS + b"dam"], length=False)
    with pytest.raises(DataUnavailable, match="ends mid-line"):
        cached_download(url, tmp_path)
    assert not_cached(tmp_path, url)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<!DOCTYPE html>\n<html><body>Rate limited</body></html>\n", "an HTML or XML page"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\n", "not UTF-8 text"),
        (b"apple\x00banana\n", "binary data"),
        (b"x" * 500 + b"\n", "not one word per line"),
        (b"\n\n\n", "empty of words"),
    ],
)
def test_a_body_that_is_not_a_word_list_is_not_cached(server, tmp_path, body, reason):
    url = server.serve("/words.txt", [body])
    with pytest.raises(DataUnavailable, match=reason):
        cached_download(url, tmp_path, check=check_word_list)
    assert not_cached(tmp_path, url)


def test_the_cli_reports_an_html_word_list_in_one_line(server, monkeypatch, tmp_path):
    url = server.serve("/page.txt", [b"<html><body>Sign in</body></html>\n"])
    result = runner.invoke(app, ["show", "spellingbee", "-p", f"word_list={url}"])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    message = result.stderr.strip()
    error, hint = message.splitlines()  # one line each, as every error is said
    assert error.startswith("Error: ") and "an HTML or XML page" in error
    assert hint.startswith("Hint: ")


def test_a_bad_copy_cached_by_an_older_version_is_downloaded_again(server, tmp_path):
    url = server.serve("/words.txt", [WORDS])
    (tmp_path / cache_name(url)).write_bytes(b"<html>old error page</html>\n")
    path = cached_download(url, tmp_path, check=check_word_list)
    assert path.read_bytes() == WORDS


def test_the_limits_have_sane_defaults():
    assert download.TOTAL_SECONDS >= 60 and download.MAX_BYTES >= 16 << 20
    # a trickle is given up within a minute, even one that starts after a fast beginning
    assert 2 * download.SLOW_SECONDS + download.TIMEOUT_SECONDS <= 60
    assert 0 < download.SLOW_BYTES_PER_SECOND <= 10_000  # a slow but working link still gets it


def test_a_local_word_list_over_the_cap_is_refused_unread(tmp_path, monkeypatch):
    from taskcli.tasks import spellingbee

    monkeypatch.setattr(spellingbee, "MAX_WORD_LIST_BYTES", 1000)
    words = tmp_path / "words.txt"
    words.write_bytes(b"word\n" * 1000)
    result = runner.invoke(app, ["show", "spellingbee", "-p", f"word_list={words}"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "is over 1,000 bytes" in result.stderr
