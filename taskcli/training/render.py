"""The training view: a conversation as the token ids and loss mask nanochat's SFT trains on.

`render` follows nanochat's ``render_conversation`` (early November 2025):

- ``<|bos|>`` first; a leading system message is joined to the first user message as
  system + ``"\\n\\n"`` + user;
- a user message is ``<|user_start|>`` text ``<|user_end|>``, none of it trained;
- an assistant message is ``<|assistant_start|>`` (not trained), then its content trained -- a
  string, or parts: ``text`` trained, ``python`` as ``<|python_start|>`` code ``<|python_end|>``
  trained, ``python_output`` as ``<|output_start|>`` output ``<|output_end|>`` not trained --
  then ``<|assistant_end|>`` trained;
- text is encoded as ordinary text (a special-token string in content stays text);
- ids and mask are cut at `max_tokens` (0: no cut).

A tokenizer with a chat template (`taskcli.training.chat_template`) renders through the template
instead, with its own mask rule; `render` and `render_batches` take either.

`render_batches` renders a stream of conversations in worker processes, in input order, into
flat `TokenBatch` buffers (what token statistics and token exports need, without a Python list
per conversation); `render_many` unpacks them into one `Rendering` per conversation. Both give
exactly what `render` gives, through the same `_render_into`.
"""

from __future__ import annotations

import os
import signal
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator, MutableSequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import replace
from itertools import chain, islice
from multiprocessing import get_all_start_methods, get_context
from typing import Any

from taskcli.conversation import fold_system
from taskcli.errors import InvalidData, TaskcliError, UsageError
from taskcli.training.tokenizer import CHAT_TOKENS, Tokenizer, from_recipe
from taskcli.training.tokens import Rendering, TokenBatch

DEFAULT_MAX_TOKENS = 2048  # nanochat's SFT cut
CHUNK_SIZE = 256  # conversations per task sent to a worker process


def render(
    conversation: dict[str, Any], tokenizer: Tokenizer, max_tokens: int = DEFAULT_MAX_TOKENS
) -> Rendering:
    """Render one conversation into ids and mask, cut at `max_tokens` (0: no cut).

    Raises InvalidData (one line) for a conversation nanochat could not render.
    """
    _check_max_tokens(max_tokens)
    if tokenizer.template is not None:
        return tokenizer.template.render(conversation, max_tokens)
    ids: list[int] = []
    mask: list[int] = []
    _render_into(conversation, tokenizer.encode, _chat_ids(tokenizer), ids, mask)
    length = len(ids)
    if max_tokens and length > max_tokens:
        del ids[max_tokens:], mask[max_tokens:]
    return Rendering(ids, mask, length)


def render_many(
    conversations: Iterable[dict[str, Any]],
    tokenizer: Tokenizer,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    workers: int = 1,
) -> Iterator[Rendering]:
    """`render` each conversation, in order, in `workers` processes (see `render_batches`)."""
    for batch in render_batches(conversations, tokenizer, max_tokens, workers):
        yield from batch


def render_batches(
    conversations: Iterable[dict[str, Any]],
    tokenizer: Tokenizer,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    workers: int = 1,
    key: Callable[[dict[str, Any]], Any] | None = None,
    measure_cut: bool = True,
) -> Iterator[TokenBatch]:
    """Render a stream in batches of `CHUNK_SIZE`, in order, in `workers` forked processes
    (1: in this one). With `key`, each batch's `keys` holds ``key(conversation)`` for each of
    its conversations (a source name, say), taken in this process as they are read.

    With `measure_cut` False, a conversation's messages and parts that start past the cut are
    checked but not encoded: each is encoded on its own, so the ids and mask kept are the same,
    for less work (a twelfth of the tokens of SmolTalk-like data at 2,048). Its length before
    the cut is then not known: `lengths` holds what was encoded, at least `max_tokens`.

    Memory stays bounded: at most two chunks per worker are in flight. Workers start from a
    process that runs no threads (`START_METHOD`), each loads the tokenizer (and compiles its
    chat template) once from its files (`Tokenizer.recipe`), and they ignore Ctrl-C, which the
    caller handles; as in any program whose workers are not forked, a script that calls this
    with workers keeps its top level under ``if __name__ == "__main__":``. A stream that fits
    in one chunk is rendered in this process: workers would take longer to start. A
    conversation that cannot be rendered raises InvalidData naming its position in the stream.
    """
    _check_max_tokens(max_tokens)
    iterator = iter(conversations)
    chunks = iter(lambda: list(islice(iterator, CHUNK_SIZE)), [])
    first = next(chunks, None)
    if first is None:
        return
    chunks = chain([first], chunks)
    if workers <= 1 or len(first) < CHUNK_SIZE:  # one chunk is all: workers cost more to start
        position = 0
        for chunk in chunks:
            batch = _render_batch(position, chunk, tokenizer, max_tokens, measure_cut)
            yield replace(batch, keys=list(map(key, chunk))) if key else batch
            position += len(chunk)
        return
    pool = ProcessPoolExecutor(
        workers,
        get_context(START_METHOD),
        initializer=_start_worker,
        initargs=(tokenizer.recipe(), max_tokens, measure_cut, dict(os.environ)),
    )
    try:
        pending: deque[tuple[Future[TokenBatch], list[Any] | None]] = deque()
        position = 0
        for chunk in chunks:
            keys = list(map(key, chunk)) if key else None
            pending.append((pool.submit(_render_in_worker, position, chunk), keys))
            position += len(chunk)
            if len(pending) >= 2 * workers:
                yield _with_keys(*pending.popleft())
        while pending:
            yield _with_keys(*pending.popleft())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _with_keys(future: Future[TokenBatch], keys: list[Any] | None) -> TokenBatch:
    batch = future.result()
    return replace(batch, keys=keys) if keys is not None else batch


def default_workers() -> int:
    """Worker processes for `render_batches` by default: one per core this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _check_max_tokens(max_tokens: int) -> None:
    if max_tokens < 0:
        raise UsageError(f"max_tokens must be 0 (no cut) or more, got {max_tokens}")


def _chat_ids(tokenizer: Tokenizer) -> tuple[int, ...]:
    return tuple(tokenizer.special_ids[name] for name in CHAT_TOKENS)


def _render_batch(
    position: int,
    chunk: list[dict[str, Any]],
    tokenizer: Tokenizer,
    max_tokens: int,
    measure_cut: bool = True,
) -> TokenBatch:
    if tokenizer.template is not None:  # all of a template's text is rendered, cut or not
        return tokenizer.template.render_batch(position, chunk, max_tokens)
    encode, chat_ids = tokenizer.encode, _chat_ids(tokenizer)
    # Each conversation's ids go through a list (it takes tiktoken's lists fastest) into one
    # packed array: a chunk's ids never live as Python ints together, whose memory the
    # allocator would hand back and fault in again, chunk after chunk (a tenth of the time).
    ids: list[int] = []
    packed = array("i")
    mask = bytearray()
    offsets, lengths = [0], []
    trains_nothing = 0
    stop_at = 0 if measure_cut else max_tokens
    for k, conversation in enumerate(chunk):
        try:
            _render_into(conversation, encode, chat_ids, ids, mask, stop_at)
        except InvalidData as error:
            raise InvalidData(f"conversation {position + k}: {error}") from None
        # Exact past `stop_at` too: what is trained there beyond content is <|assistant_end|>.
        trains_nothing += mask.find(1, len(packed)) < 0
        length = len(ids)
        if max_tokens and length > max_tokens:
            del ids[max_tokens:], mask[len(packed) + max_tokens :]
        packed.fromlist(ids)
        ids.clear()
        offsets.append(len(packed))
        lengths.append(length)
    return TokenBatch(position, packed, bytes(mask), offsets, lengths, trains_nothing)


_UNTRAINED, _TRAINED = b"\x00", b"\x01"


def _render_into(
    conversation: dict[str, Any],
    encode: Callable[[str], list[int]],
    chat_ids: tuple[int, ...],
    ids: MutableSequence[int],
    mask: MutableSequence[int],
    stop_at: int = 0,
) -> None:
    """Append one conversation's ids and mask, uncut, to `ids` (empty when called) and `mask`
    (the rule is in the module doc). The mask is a list for `render`, a bytearray for batches:
    both take ``extend`` with bytes of 0s and 1s, so one function serves both.

    With `stop_at`, a text that starts once `stop_at` ids are there is checked, not encoded:
    nothing before that point changes, so a cut at `stop_at` keeps the same ids and mask.
    """
    (bos, user_start, user_end, assistant_start, assistant_end) = chat_ids[:5]
    (python_start, python_end, output_start, output_end) = chat_ids[5:]
    add_ids, add_mask = ids.extend, mask.extend

    def encode_text(text: str) -> list[int]:
        if not stop_at or len(ids) < stop_at:
            return encode(text)
        if not isinstance(text, str):  # what encoding it would have raised
            raise TypeError(f"expected a string, got {type(text).__name__}")
        return []

    try:
        messages = conversation["messages"]
        if not messages:
            raise InvalidData("the conversation has no messages")
        if messages[0]["role"] == "system":
            if len(messages) < 2 or messages[1]["role"] != "user":
                raise InvalidData("a system message must be followed by a user message")
            messages = fold_system(messages)
        ids.append(bos)
        mask.append(0)
        for i, message in enumerate(messages):
            role, content = message["role"], message["content"]
            if role != ("assistant" if i & 1 else "user"):
                raise InvalidData(f"message {i} is from {role!r}: roles must alternate from user")
            if role == "user":
                if not isinstance(content, str):
                    raise InvalidData(f"message {i}: a user message must be a string")
                tokens = encode_text(content)
                ids.append(user_start)
                add_ids(tokens)
                ids.append(user_end)
                add_mask(_UNTRAINED * (len(tokens) + 2))
                continue
            ids.append(assistant_start)
            mask.append(0)
            if isinstance(content, str):
                tokens = encode_text(content)
                add_ids(tokens)
                add_mask(_TRAINED * len(tokens))
            elif isinstance(content, list):
                for part in content:
                    kind, tokens = part["type"], encode_text(part["text"])
                    if kind == "text":
                        add_ids(tokens)
                        add_mask(_TRAINED * len(tokens))
                    elif kind == "python":
                        ids.append(python_start)
                        add_ids(tokens)
                        ids.append(python_end)
                        add_mask(_TRAINED * (len(tokens) + 2))
                    elif kind == "python_output":
                        ids.append(output_start)
                        add_ids(tokens)
                        ids.append(output_end)
                        add_mask(_UNTRAINED * (len(tokens) + 2))
                    else:
                        raise InvalidData(f"message {i}: unknown part type {kind!r}")
            else:
                raise InvalidData(f"message {i}: content must be a string or a list of parts")
            ids.append(assistant_end)
            mask.append(1)
    except (KeyError, IndexError, TypeError, AttributeError) as error:
        raise InvalidData(
            f"not a renderable conversation ({type(error).__name__}: {error})"
        ) from None


# ---------------------------------------------------------------- worker processes

# Workers are never forked from this process, which may run threads (pyarrow's, a progress
# bar's), whose locks a fork could copy held: Python 3.12+ warns of the deadlock, 3.14 no longer
# forks by default. A forkserver is a small process that runs none, started once; where there is
# none (Windows), workers are spawned.
START_METHOD = "forkserver" if "forkserver" in get_all_start_methods() else "spawn"

_worker_job: tuple[Tokenizer, int, bool] | None = None  # set in each worker process
_worker_error: TaskcliError | None = None  # why the worker could not load the tokenizer


def _start_worker(
    recipe: tuple[Any, ...], max_tokens: int, measure_cut: bool, environment: dict[str, str]
) -> None:
    """Load the tokenizer once, in this worker, with the parent's environment (a forkserver's
    children would have the server's, from when it started); leave Ctrl-C to the parent, which
    stops the pool."""
    global _worker_job, _worker_error
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.clear()
    os.environ.update(environment)
    try:
        _worker_job = (from_recipe(recipe), max_tokens, measure_cut)
    except TaskcliError as error:  # raised by each task instead, as one line
        _worker_error = error


def _render_in_worker(position: int, chunk: list[dict[str, Any]]) -> TokenBatch:
    if _worker_error is not None:  # a tokenizer this worker could not load fails its tasks
        raise _worker_error
    assert _worker_job is not None, "render_batches starts its workers with _start_worker"
    return _render_batch(position, chunk, *_worker_job)
