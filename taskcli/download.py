"""Fetching a file once into taskcli's cache, safely when several processes ask at the same time.

Used for the SpellingBee word list (a few megabytes from GitHub)::

    path = cached_download("https://example.org/words.txt")  # ~/.cache/taskcli/words-1a2b….txt

The cache folder is ``$TASKCLI_CACHE_DIR``, else ``$XDG_CACHE_HOME/taskcli``, else
``~/.cache/taskcli``. A download holds a file lock, so concurrent processes fetch the file once;
it streams to a temporary name and is renamed only when complete (`taskcli.atomic`), so a cut
connection never leaves a truncated file that later runs would trust.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from filelock import FileLock

from taskcli import __version__
from taskcli.atomic import atomic_output
from taskcli.errors import DataUnavailable

TIMEOUT_SECONDS = 10.0  # per connect / read; a stalled server fails quickly instead of hanging
CHUNK_BYTES = 1 << 16
DEFAULT_HINT = "check the network connection, or download the file yourself and use its path"


def default_cache_dir() -> Path:
    """Where downloads are kept: $TASKCLI_CACHE_DIR, else the XDG cache folder."""
    configured = os.environ.get("TASKCLI_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "taskcli"


def cache_name(url: str) -> str:
    """A file name for `url` that keeps its readable stem and cannot collide with another URL."""
    stem, dot, suffix = Path(urlsplit(url).path).name.rpartition(".")
    if not dot:
        stem, suffix = suffix, ""
    digest = hashlib.sha256(url.encode()).hexdigest()[:12]
    readable = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)[:60] or "download"
    return f"{readable}-{digest}" + (f".{suffix}" if suffix.isalnum() else "")


def download_file(url: str, path: str | os.PathLike[str], *, hint: str = DEFAULT_HINT) -> Path:
    """Stream `url` into `path`; `path` appears only once every byte has arrived.

    Any network failure (unreachable host, HTTP error, timeout, a connection cut before
    Content-Length bytes arrived) raises `DataUnavailable` naming the URL and `hint`.
    """
    target = Path(path)
    request = urllib.request.Request(url, headers={"User-Agent": f"taskcli/{__version__}"})
    try:
        with (
            urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response,
            atomic_output(target, compress=False) as out,
        ):
            expected = response.headers.get("Content-Length")
            received = 0
            while chunk := response.read(CHUNK_BYTES):
                out.write(chunk)
                received += len(chunk)
            if expected is not None and expected.isdigit() and received != int(expected):
                raise DataUnavailable(
                    f"could not download {url}: the connection closed after {received} of "
                    f"{expected} bytes. Try again, or {hint}."
                )
    except urllib.error.HTTPError as error:
        raise _unavailable(url, f"HTTP {error.code} {error.reason}", hint) from None
    except urllib.error.URLError as error:
        raise _unavailable(url, str(error.reason), hint) from None
    except (OSError, http.client.HTTPException) as error:
        raise _unavailable(url, str(error) or type(error).__name__, hint) from None
    return target


def _unavailable(url: str, reason: str, hint: str) -> DataUnavailable:
    return DataUnavailable(f"could not download {url}: {reason}. {hint[:1].upper()}{hint[1:]}.")


def cached_download(
    url: str, cache_dir: str | os.PathLike[str] | None = None, *, hint: str = DEFAULT_HINT
) -> Path:
    """The local copy of `url`, downloading it first if no complete copy is cached yet."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataUnavailable(
            f"cannot create the cache folder {folder}: {error.strerror}. "
            "Set TASKCLI_CACHE_DIR to a writable folder."
        ) from None
    target = folder / cache_name(url)
    if target.is_file():
        return target
    with FileLock(str(target) + ".lock"):
        if not target.is_file():  # another process may have finished while we waited
            download_file(url, target, hint=hint)
    return target
