"""Where the rows of one Hub dataset split come from: a local copy first, else the Hub.

A local copy is a folder laid out as ``hf download REPO --repo-type dataset --local-dir DIR/REPO``
leaves it::

    DIR/allenai/ai2_arc/README.md                              # YAML front matter with `configs:`
    DIR/allenai/ai2_arc/ARC-Easy/test-00000-of-00001.parquet

or as nanochat's own task cache (``$NANOCHAT_BASE_DIR/task_data``, nanochat commit 92d63d4)
leaves it: one folder per split, the Hub's parquet export of it in numbered shards, and a
``manifest.json`` listing them, written last::

    DIR/allenai--ai2_arc/ARC-Easy/test/00000.parquet
    DIR/allenai--ai2_arc/ARC-Easy/test/manifest.json           # ["00000.parquet"]

Its parquet files are read with Arrow directly (`taskcli.files.parquet`). Without a local copy,
`datasets.load_dataset` reads the Hub or its cache (HF_HOME), whose uncompressed Arrow files are
memory-mapped. Either way the caller gets `Rows`: a row count, reads in bulk, and the files behind
them for the manifest.

When the data cannot be had, `DataUnavailable` says so within seconds and says how to get it:
without network `load_dataset` would otherwise retry for ~23 s or hang, so the Hub endpoint is
probed first and, when it does not answer, the Hugging Face libraries are put in offline mode
(which still serves cached copies).
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

from taskcli.errors import DatasetMissing, DataUnavailable, InvalidData
from taskcli.files.parquet import DataFile, ParquetRows, Rows, TableRows

DATA_DIR_ENV = "TASKCLI_DATA_DIR"
DEFAULT_ENDPOINT = "https://huggingface.co"
REACHABILITY_TIMEOUT = 3.0  # seconds to wait for a TCP connection to the Hub before going offline
_TRUE = {"1", "ON", "YES", "TRUE"}  # what the Hugging Face libraries accept as "set"
MAX_README_BYTES = 8 << 20  # a dataset card; the largest on the Hub are a few hundred kB


def open_rows(
    repo: str, config: str, split: str, data_dir: str | os.PathLike[str] | None = None
) -> Rows:
    """The rows of `split` of `config` of `repo`: from DIR/REPO when it exists, else the Hub.

    `data_dir` defaults to the TASKCLI_DATA_DIR environment variable.
    """
    if data_dir is None or str(data_dir) == "":
        data_dir = os.environ.get(DATA_DIR_ENV) or None
    folder = data_root(Path(data_dir), repo) if data_dir is not None else None
    if folder is not None and (folder / repo).is_dir():
        return local_rows(folder, repo, config, split)
    cached = nanochat_copy(Path(data_dir), repo) if data_dir is not None else None
    if cached is not None:
        return nanochat_rows(cached, config, split)
    missing = ""
    if folder is not None:
        slug = repo.replace("/", "--")
        missing = (
            f"there is no local copy at {folder / repo}{_misplaced(folder)} (nor nanochat's "
            f"{Path(data_dir) / slug}), and "
        )
    return hub_rows(repo, config, split, folder, missing)


def data_root(folder: Path, repo: str) -> Path:
    """The data dir `folder` stands for: itself, or, when it is the dataset's own folder
    (``DIR/openai/gsm8k``) or its organisation's (``DIR/openai``), the DIR above them. People
    point at the folder they downloaded into; the layout wants the one above."""
    org, _, name = repo.rpartition("/")
    if (folder / repo).is_dir():
        return folder
    if folder.name == name and folder.parent.name == org and folder.is_dir():
        return folder.parent.parent
    if org and folder.name == org and (folder / name).is_dir():
        return folder.parent
    return folder


def _misplaced(folder: Path) -> str:
    """A note when `folder` looks like one dataset's folder rather than a data dir."""
    if (folder / "README.md").is_file() or any(folder.glob("*/*.parquet")):
        return (
            f" ({folder} looks like a dataset's own folder; the data dir is the folder that "
            "holds ORG/NAME folders)"
        )
    return ""


# --- local copies ------------------------------------------------------------------------------


def local_rows(data_dir: Path, repo: str, config: str, split: str) -> ParquetRows:
    repo_dir = data_dir / repo
    patterns = split_patterns(repo_dir, config, split)
    paths = matching_files(repo_dir, patterns)
    if not paths:
        raise DatasetMissing(
            f"{repo_dir} has no data files for subset {config!r}, split {split!r} "
            f"(looked for {', '.join(patterns) or 'an entry in its README'}).",
            repo,
            hint=how_to_get([repo], data_dir),
            params=("data_dir",),
        )
    return ParquetRows(paths, local_revision(repo_dir, paths))


def split_patterns(repo_dir: Path, config: str, split: str) -> list[str]:
    """The file patterns of one split: from the README's `configs:` block, else the usual layout."""
    configs = readme_configs(repo_dir / "README.md")
    if config in configs:
        return configs[config].get(split, [])
    return [f"{config}/{split}-*.parquet", f"data/{split}-*.parquet"]


def matching_files(repo_dir: Path, patterns: Sequence[str]) -> list[Path]:
    """The files the first pattern with any matches matches, sorted (shard order)."""
    for pattern in patterns:
        found = sorted(path for path in repo_dir.glob(pattern) if path.is_file())
        if found:
            return found
    return []


def readme_configs(readme: Path) -> dict[str, dict[str, list[str]]]:
    """``{config: {split: [patterns]}}`` from a dataset card's YAML front matter.

    A config's ``data_files`` is a pattern, a list of patterns (both meaning split "train"), a
    list of ``{split, path}`` entries whose path is a pattern or a list, or a split -> path map.
    The card comes with the download, so it is read as untrusted: its size capped, its YAML
    read by `taskcli.files.safe_yaml`, every pattern kept inside the dataset's folder; anything
    malformed is `InvalidData` naming the file.
    """
    try:
        with readme.open("rb") as file:
            data = file.read(MAX_README_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise InvalidData(f"{readme}: cannot be read ({error.strerror}).") from None
    if len(data) > MAX_README_BYTES:
        raise InvalidData(f"{readme}: larger than {MAX_README_BYTES:,} bytes; not a dataset card.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidData(
            f"{readme}: not UTF-8 text ({error.reason} at byte {error.start})."
        ) from None
    if not text.startswith("---"):
        return {}
    end = text.find("\n---", 3)
    import yaml

    from taskcli.files import safe_yaml

    try:
        front = safe_yaml.load(text[3 : end if end != -1 else len(text)]) or {}
    except yaml.YAMLError as error:
        where, why = safe_yaml.explain(error)
        raise InvalidData(
            f"{readme}{where}: its YAML front matter does not parse: {why}."
        ) from None
    entries = front.get("configs") if isinstance(front, dict) else None
    configs: dict[str, dict[str, list[str]]] = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict):
            name = str(entry.get("config_name", "default"))
            try:
                configs[name] = _patterns_by_split(entry.get("data_files"))
            except ValueError as error:
                raise InvalidData(f"{readme}: config {name!r}: {error}") from None
    return configs


def _patterns_by_split(data_files: Any) -> dict[str, list[str]]:
    def as_list(paths: Any) -> list[str]:
        if paths is None:
            return []
        if isinstance(paths, str):
            paths = [paths]
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise ValueError(f"data_files must be paths (text), got {paths!r:.60}")
        return [_inside(p) for p in paths]

    if isinstance(data_files, dict):
        return {str(split): as_list(paths) for split, paths in data_files.items()}
    if data_files is None:
        return {}
    if isinstance(data_files, str) or (
        isinstance(data_files, list) and all(isinstance(p, str) for p in data_files)
    ):
        return {"train": as_list(data_files)}
    if not isinstance(data_files, list):
        raise ValueError(f"data_files must be a path, a list or a mapping, got {data_files!r:.60}")
    by_split: dict[str, list[str]] = {}
    for entry in data_files:
        if isinstance(entry, dict) and "path" in entry:
            by_split.setdefault(str(entry.get("split", "train")), []).extend(as_list(entry["path"]))
    return by_split


def _inside(pattern: str) -> str:
    """`pattern`, if it can only match files inside the dataset's folder."""
    parts = PurePosixPath(pattern.replace("\\", "/")).parts
    if not pattern or pattern.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
        raise ValueError(f"data_files path {pattern!r} leads outside the dataset's folder")
    return pattern


def local_revision(repo_dir: Path, paths: Sequence[Path]) -> str | None:
    """The Hub commit the files were downloaded at, from the notes `hf download` leaves."""
    notes = repo_dir / ".cache" / "huggingface" / "download"
    revisions = set()
    for path in paths:
        note = notes / (path.relative_to(repo_dir).as_posix() + ".metadata")
        try:
            revisions.add(note.read_text(encoding="utf-8").split("\n", 1)[0].strip())
        except OSError:
            continue
    return revisions.pop() if len(revisions) == 1 else None


# --- nanochat's task cache ---------------------------------------------------------------------

NANOCHAT_MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 1 << 20  # a list of shard names; nanochat's hold a few


def nanochat_copy(folder: Path, repo: str) -> Path | None:
    """The folder nanochat's task cache keeps `repo` in (``OWNER--NAME``), under `folder` or
    under its ``task_data`` (a user may point at ``$NANOCHAT_BASE_DIR`` itself), or None."""
    slug = repo.replace("/", "--")
    for candidate in (folder / slug, folder / "task_data" / slug):
        if candidate.is_dir():
            return candidate
    return None


def nanochat_rows(repo_dir: Path, config: str, split: str) -> ParquetRows:
    """The rows of one split from nanochat's task cache: the shards its ``manifest.json`` lists,
    in that order (nanochat concatenates them so). nanochat writes the manifest after the last
    shard, so a split folder without one is a download that did not finish."""
    split_dir = repo_dir / config / split
    if not split_dir.is_dir():
        raise DataUnavailable(
            f"{repo_dir} (nanochat's task cache) has no copy of subset {config!r}, split "
            f"{split!r}: nanochat downloads only the splits its scripts read.",
            hint="use a data dir that has it (an `hf download` copy), or run without --data-dir "
            "to read the Hugging Face Hub.",
            params=("data_dir",),
        )
    manifest = split_dir / NANOCHAT_MANIFEST
    if not manifest.is_file():
        raise DataUnavailable(
            f"{split_dir} has no {NANOCHAT_MANIFEST}: nanochat writes it after the last shard, "
            "so this copy is incomplete (its download was interrupted).",
            hint="run the nanochat script that reads it again to finish the download, or delete "
            f"{split_dir} and download it again.",
            params=("data_dir",),
        )
    names = _manifest_names(manifest)
    paths = [split_dir / name for name in names]
    missing = [name for name, path in zip(names, paths, strict=True) if not path.is_file()]
    if missing:
        raise DataUnavailable(
            f"{manifest} lists {', '.join(missing[:3])}"
            f"{f' and {len(missing) - 3} more' if len(missing) > 3 else ''}, which "
            f"{'is' if len(missing) == 1 else 'are'} not there: the copy is incomplete.",
            hint=f"delete {split_dir} and let nanochat download it again.",
            params=("data_dir",),
        )
    return ParquetRows(paths)


def _manifest_names(manifest: Path) -> list[str]:
    """The shard names a nanochat manifest lists, read as untrusted: a JSON list of plain
    ``.parquet`` file names in the same folder, at most `MAX_MANIFEST_BYTES`."""
    import json

    try:
        with manifest.open("rb") as file:
            data = file.read(MAX_MANIFEST_BYTES + 1)
    except OSError as error:
        raise InvalidData(f"{manifest}: cannot be read ({error.strerror}).") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise InvalidData(f"{manifest}: larger than {MAX_MANIFEST_BYTES:,} bytes; not a manifest.")
    try:
        names = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise InvalidData(f"{manifest}: not a JSON list of shard names ({error}).") from None
    if not isinstance(names, list) or not names:
        raise InvalidData(f"{manifest}: expected a non-empty JSON list of shard names.")
    for name in names:
        plain = isinstance(name, str) and name == Path(name).name and name not in ("", ".", "..")
        if not plain or not name.endswith(".parquet") or "\\" in name:
            raise InvalidData(
                f"{manifest}: {name!r:.80} is not a parquet file name in the manifest's folder."
            )
    return names


# --- the Hub -----------------------------------------------------------------------------------


def hub_rows(
    repo: str, config: str, split: str, data_dir: Path | None = None, missing: str = ""
) -> TableRows:
    """The rows through `datasets.load_dataset`, offline at once when the Hub does not answer."""
    endpoint = os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
    variable = offline_variable()
    if variable is not None:
        why = f"offline mode is on ({variable} is set) and it is not in the Hugging Face cache"
    elif not hub_reachable(endpoint):
        use_offline_mode()
        why = f"the Hugging Face Hub ({endpoint}) is unreachable and it is not in its cache"
    else:
        why = "loading it from the Hugging Face Hub failed"

    import datasets

    try:
        dataset = datasets.load_dataset(repo, config, split=split)
    except Exception as error:
        # Offline, `datasets` says it cannot reach the Hub: `why` already says so, better.
        if not isinstance(error, ConnectionError):
            first_line = (str(error).strip().splitlines() or [""])[0]
            why += f" ({type(error).__name__}: {first_line})"
        raise DatasetMissing(
            f"dataset {repo} (subset {config!r}, split {split!r}) is not available: {missing}"
            f"{why}.",
            repo,
            hint=how_to_get([repo], data_dir),
            params=("data_dir",),
        ) from None
    files = [
        DataFile(entry["filename"], os.path.getsize(entry["filename"]))
        for entry in dataset.cache_files
    ]
    folder = Path(files[0].path).parent.name if files else ""
    revision = folder if re.fullmatch(r"[0-9a-f]{40}", folder) else None
    return TableRows(dataset.data.table, files, revision)


def how_to_get(repos: Sequence[str], data_dir: str | os.PathLike[str] | None) -> str:
    """How to make `repos` available without network: one `hf download` command each, into
    the data dir. It ends naming the data dir, where the CLI adds the flag that sets it."""
    folder = Path(data_dir) if data_dir is not None else Path("DIR")
    commands = [
        f"`hf download {repo} --repo-type dataset --local-dir {folder / repo}`" for repo in repos
    ]
    listed = commands[0] if len(commands) == 1 else f"{', '.join(commands[:-1])} and {commands[-1]}"
    return (
        f"run again with network access, or on a machine with network run {listed}, then use "
        f"{folder} as the data dir"
    )


OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
_set_here: set[str] = set()  # the offline variables `use_offline_mode` set, not the user


def offline_variable() -> str | None:
    """The offline variable the user set (not this process, after finding the Hub
    unreachable), or None: messages name only what the user did."""
    return next(
        (
            name
            for name in OFFLINE_VARIABLES
            if name not in _set_here and (os.environ.get(name) or "").strip().upper() in _TRUE
        ),
        None,
    )


def offline_requested() -> bool:
    """Whether the user put the Hugging Face libraries in offline mode."""
    return offline_variable() is not None


@cache
def hub_reachable(endpoint: str = DEFAULT_ENDPOINT, timeout: float = REACHABILITY_TIMEOUT) -> bool:
    """Whether a TCP connection to the endpoint (or the proxy in front of it) opens in time.

    Name resolution can hang as long as a connection, so the whole attempt runs in a thread and
    is abandoned after `timeout` seconds.
    """
    import socket
    import urllib.parse
    import urllib.request

    url = urllib.parse.urlsplit(endpoint)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(url.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        proxy_url = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = proxy_url.hostname or "", proxy_url.port or 80
    outcome: list[bool] = []
    finished = threading.Event()

    def connect() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                outcome.append(True)
        except OSError:
            outcome.append(False)
        finished.set()

    threading.Thread(target=connect, daemon=True).start()
    return finished.wait(timeout) and outcome[0]


def use_offline_mode() -> None:
    """Offline mode for this process, in modules already imported too.

    `huggingface_hub.constants` and `datasets.config` read HF_HUB_OFFLINE / HF_DATASETS_OFFLINE
    once, at import; setting the environment alone would miss modules imported before.
    """
    for name in OFFLINE_VARIABLES:
        if (os.environ.get(name) or "").strip().upper() not in _TRUE:
            os.environ[name] = "1"
            _set_here.add(name)
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True
    config = sys.modules.get("datasets.config")
    if config is not None:
        config.HF_HUB_OFFLINE = True
        config.HF_DATASETS_OFFLINE = True
