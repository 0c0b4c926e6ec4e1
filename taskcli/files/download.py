"""Fetching a file once into taskcli's cache, safely when several processes ask at the same time.

Used for the SpellingBee word list (a few megabytes from GitHub)::

    path = cached_download("https://example.org/words.txt")  # ~/.cache/taskcli/words-1a2b….txt

The cache folder is ``$TASKCLI_CACHE_DIR``, else ``$XDG_CACHE_HOME/taskcli``, else
``~/.cache/taskcli``. A download holds a file lock, so concurrent processes fetch the file once;
it streams to a temporary name and is renamed only when complete (`taskcli.files.atomic`) and
checked, so a cut connection, an oversized or endless body, or an error page never leaves a file
that later runs would trust.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from filelock import FileLock

from taskcli import __version__
from taskcli.errors import DataUnavailable
from taskcli.files.atomic import staged_output

TIMEOUT_SECONDS = 10.0  # per connect / read; a stalled server fails quickly instead of hanging
TOTAL_SECONDS = 300.0  # the whole download: a server trickling bytes cannot keep it going forever
# The throughput floor, as curl's --speed-limit/--speed-time: a download that brings fewer than
# SLOW_BYTES_PER_SECOND over SLOW_SECONDS is given up then, not at the total deadline.
SLOW_BYTES_PER_SECOND = 1024
SLOW_SECONDS = 20.0
MAX_BYTES = 64 << 20  # a word list is a few megabytes
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


def download_file(
    url: str,
    path: str | os.PathLike[str],
    *,
    hint: str = DEFAULT_HINT,
    max_bytes: int = MAX_BYTES,
    deadline: float = TOTAL_SECONDS,
    check: Callable[[Path], None] | None = None,
) -> Path:
    """Stream `url` into `path`; `path` appears only once every byte has arrived and passed.

    Any network failure (unreachable host, HTTP error, a read stalled `TIMEOUT_SECONDS`, fewer
    than `SLOW_BYTES_PER_SECOND` arriving over `SLOW_SECONDS`, the whole download past
    `deadline` seconds, a body over `max_bytes`, a connection cut before
    Content-Length bytes arrived) raises `DataUnavailable` naming the URL and `hint`, and so does
    a body that `check` (given the complete temporary file) rejects with a ValueError. Without a
    Content-Length or chunked encoding, a cut connection looks like the end of the body, so the
    body must then end with a newline.
    """
    target = Path(path)
    request = urllib.request.Request(url, headers={"User-Agent": f"taskcli/{__version__}"})
    give_up = time.monotonic() + deadline
    try:
        with (
            urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response,
            staged_output(target, compress=False) as staged,
        ):
            expected = response.headers.get("Content-Length")
            if expected is not None and expected.isdigit() and int(expected) > max_bytes:
                size = f"it is {int(expected):,} bytes, over {max_bytes:,} bytes"
                raise _unavailable(url, size, hint)
            received = 0
            last = b""
            window_start, window_received = time.monotonic(), 0
            # read1 returns what has arrived: a server sending a byte at a time cannot keep one
            # call waiting past the per-read timeout, so the limits are checked between reads.
            while chunk := response.read1(CHUNK_BYTES):
                staged.file.write(chunk)
                received += len(chunk)
                last = chunk[-1:]
                if received > max_bytes:
                    raise _unavailable(url, f"it is over {max_bytes:,} bytes", hint)
                now = time.monotonic()
                if now > give_up:
                    raise _unavailable(url, f"it took more than {deadline:g} seconds", hint)
                if now - window_start >= SLOW_SECONDS:
                    arrived, elapsed = received - window_received, now - window_start
                    if arrived < SLOW_BYTES_PER_SECOND * elapsed:
                        raise DataUnavailable(
                            f"could not download {url}: only {arrived:,} bytes arrived in "
                            f"{elapsed:.3g} seconds, under the floor of "
                            f"{SLOW_BYTES_PER_SECOND:,} bytes a second. Try again later, or "
                            f"{hint}."
                        )
                    window_start, window_received = now, received
            if expected is not None and expected.isdigit() and received != int(expected):
                raise DataUnavailable(
                    f"could not download {url}: the connection closed after {received} of "
                    f"{expected} bytes. Try again, or {hint}."
                )
            if expected is None and not response.chunked and last != b"\n":
                raise _unavailable(
                    url, "the body ends mid-line, as a cut connection leaves it", hint
                )
            staged.finish()
            if check is not None and staged.temp is not None:
                try:
                    check(staged.temp)
                except ValueError as error:
                    raise _unavailable(url, f"what it sent is {error}", hint) from None
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
    url: str,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    hint: str = DEFAULT_HINT,
    check: Callable[[Path], None] | None = None,
    **limits: float,
) -> Path:
    """The local copy of `url`, downloading it first if no complete copy is cached yet.

    `check` and `limits` (`max_bytes`, `deadline`) are those of `download_file`: a body that
    fails them is never cached."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataUnavailable(
            f"cannot create the cache folder {folder}: {error.strerror}. "
            "Set TASKCLI_CACHE_DIR to a writable folder."
        ) from None
    target = folder / cache_name(url)
    if _trusted(target, check):
        return target
    with FileLock(str(target) + ".lock"):
        if not _trusted(target, check):  # another process may have finished while we waited
            download_file(url, target, hint=hint, check=check, **limits)  # type: ignore[arg-type]
    return target


def _trusted(path: Path, check: Callable[[Path], None] | None) -> bool:
    """Whether a cached copy exists and passes `check`; one that fails (cached by an older
    version that did not check) is removed, to be downloaded again."""
    if not path.is_file():
        return False
    if check is None:
        return True
    try:
        check(path)
    except (ValueError, OSError):
        path.unlink(missing_ok=True)
        return False
    return True
