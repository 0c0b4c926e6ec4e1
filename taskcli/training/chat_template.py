"""Hugging Face chat templates: a conversation rendered into token ids and a loss mask exactly as
transformers renders it, for the many models that are fine-tuned from a Hub checkpoint.

**Loading** (``taskcli.training.tokenizer.load_template_tokenizer``, which its `load_tokenizer`
calls):

- a model folder, ``tokenizer.json`` beside ``tokenizer_config.json``: the template is the
  folder's ``chat_template.jinja`` when there is one, else the config's ``chat_template`` (a list
  of named templates gives its ``default``, the one transformers takes when no tools are given);
- a template file beside any tokenizer spec (``tiktoken:NAME``, nanochat's ``tokenizer.pkl``, a
  ``tokenizer.json`` or a model folder); a ``tokenizer_config.json`` beside the tokenizer file
  then gives the special tokens.

The special tokens are the config's, passed to the template as transformers passes them: the
named ones (``bos_token``, ``eos_token``, ``unk_token``, ``sep_token``, ``pad_token``,
``cls_token``, ``mask_token``), every other ``*_token`` key, and ``extra_special_tokens`` given
as a dict of names; each as its string (an AddedToken-style dict gives its ``content``). Where
the config has no ``added_tokens_decoder``, ``special_tokens_map.json`` overrides it, as in
transformers. A special token the vocabulary lacks is an error: transformers would add it as a
new token, one the model never learned.

**Rendering** follows transformers' ``apply_chat_template(messages, tokenize=True,
return_dict=True, return_assistant_tokens_mask=True)``, and tests/test_chat_template.py checks it
against transformers itself:

- Jinja's ImmutableSandboxedEnvironment with ``trim_blocks``, ``lstrip_blocks``, the loopcontrols
  extension and a ``{% generation %}`` block; the globals ``raise_exception``, ``strftime_now``, a
  ``dict`` that is not the class, and a ``namespace`` refusing names that start with ``_``; a
  ``tojson`` filter that escapes no HTML and takes ``ensure_ascii=False``, ``indent``,
  ``separators`` and ``sort_keys``;
- the variables ``messages``, ``tools=None``, ``documents=None``, ``add_generation_prompt=False``
  and the special tokens; a message's keys whose value is None are dropped, and its reasoning
  (``reasoning_content``, ``thinking`` or ``reasoning``) is passed as both ``thinking`` and
  ``reasoning_content``;
- the whole text is encoded at once: special-token strings are tokens wherever they are, in a
  message's content too, as in training (``validate`` warns about such content); the config's
  ``split_special_tokens`` is honoured, and tokenizer.json's truncation and padding are off, as
  transformers turns them off for the call.

**taskcli's conversations** become messages so: a message with string content is passed as it is,
a system message too (the template decides what becomes of it). An assistant message with parts
becomes several: ``text`` parts are the content of an assistant message, a ``python`` part is a
tool call of that message, ``{"type": "function", "function": {"name": "python", "arguments":
{"code": TEXT}}}``, a ``python_output`` part is the tool's answer, ``{"role": "tool", "name":
"python", "content": TEXT}``, and text after a tool call starts the next assistant message.

**The mask** (1: trained) follows one rule, which every result names:

- ``generation``, for a template with ``{% generation %}`` blocks: a token is trained when its
  characters (the tokenizer's offset mapping) overlap the text of a block, computed as
  transformers computes ``assistant_masks``, edge cases included;
- ``assistant`` (``train_on="assistant"``, a template without such blocks): each assistant
  message's content where the template wrote it, and what follows it up to and including the
  first special token before the next message's content: the end-of-turn token, and a tool call
  the template writes in between. Where each content is comes from a second rendering with the
  contents between private-use marks; when a template changes contents so that the marks show
  (it trims them, say), from a third with the marks inside the contents' surrounding
  whitespace; when that shows too, the contents are searched for in order. An assistant message
  whose content is not found is counted in ``missed``. A special-token string inside a tool
  call's code ends the span there, as it would any turn;
- ``all`` (``train_on="all"``): every token.

**Limits.** Templates come from the Hub. A render that runs past `RENDER_SECONDS` or grows past
`MAX_RENDERED_CHARS` characters (checked as the text grows and at each ``+``, ``*`` and ``**``)
is stopped; that, a refusal of the sandbox, ``raise_exception`` and syntax errors are each one
line naming the template and its line. A single huge string built by a filter or string method
in one step is not foreseen: it ends in MemoryError, reported the same way.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import functools
import hashlib
import json
import os
import re
import threading
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from taskcli.errors import InvalidData, one_line
from taskcli.training.tokens import Rendering, TokenBatch

TRAIN_ON = ("assistant", "all")
# Each mask rule (`TemplateRenderer.rule`) as reports name it: ``mask: generation blocks``.
RULE_NAMES = {"generation": "generation blocks", "assistant": "assistant content", "all": "all"}
RENDER_SECONDS = 10.0  # one conversation's render; real templates take well under a millisecond
MAX_RENDERED_CHARS = 64 << 20  # four times the longest line taskcli reads by default
MAX_INT_BITS = 1 << 16  # the largest integer a template may compute with * and **
MAX_TEMPLATE_BYTES = 4 << 20  # real templates are a few KB
REASONING_KEYS = ("reasoning_content", "thinking", "reasoning")
# Marks for the assistant rule: OPEN, a character numbering the message, its content, CLOSE.
OPEN, CLOSE, FIRST_NUMBER = "\U000f0002", "\U000f0003", 0x100000
MAX_MARKED = 0xFFFE  # messages numbered by one private-use character each
MARKS = re.compile("\U000f0002([\U00100000-\U0010fffd])?|\U000f0003")
TEMPLATE_FILENAME = "<template>"  # what Jinja calls a template made from a string


@dataclass(frozen=True, slots=True)
class TemplateRendering(Rendering):
    """A `Rendering` through a chat template, with the mask `rule` used, how many assistant
    messages the ``assistant`` rule `missed`, and whether the conversation trains nothing at all
    (before the cut): under this template, it teaches the model nothing."""

    rule: str
    missed: int
    trains_nothing: bool

    def row(self, index: int) -> dict[str, Any]:
        """`Rendering.row`, with the mask rule, the assistant messages it missed, and whether
        the whole conversation trains nothing."""
        row = Rendering.row(self, index)  # not super(): a slots dataclass is a new class
        row.update(rule=self.rule, missed=self.missed, trains_nothing=self.trains_nothing)
        return row


# ---------------------------------------------------------------- the template


@dataclass(frozen=True, eq=False)
class ChatTemplate:
    """A chat template compiled as transformers compiles it, with the special tokens it is
    rendered with. `name` says where it was read, for messages; `sha256` is that of its text
    (UTF-8, newlines as read), for manifests."""

    name: str
    source: str
    sha256: str
    special_tokens: dict[str, str]
    has_generation: bool
    compiled: Any = field(repr=False)

    def render(self, messages: list[dict[str, Any]]) -> tuple[str, list[tuple[int, int]]]:
        """The text of `messages`, and the character spans of its ``{% generation %}`` blocks,
        as transformers records them; InvalidData, one line, when the template fails."""
        state = _RenderState()
        context = _RENDERING.set(state)
        pieces: list[str] = []
        output = self.compiled.generate(
            messages=messages,
            tools=None,
            documents=None,
            add_generation_prompt=False,
            **self.special_tokens,
        )
        try:
            with _WATCHDOG.limit(RENDER_SECONDS):
                for piece in output:
                    pieces.append(piece)
                    state.length += len(piece)
                    if state.length > MAX_RENDERED_CHARS:
                        raise _TooLarge(self._generator_line(output))
        except Exception as error:
            raise self._error(error) from None
        finally:
            output.close()
            _RENDERING.reset(context)
        return "".join(pieces), state.spans

    def _error(self, error: Exception) -> InvalidData:
        import jinja2

        line = _template_line(error)
        if isinstance(error, _TimeLimit):
            what = f"rendering ran past {RENDER_SECONDS:g} s (a loop that does not end?)"
        elif isinstance(error, _TooLarge):
            what = f"the text grew past {MAX_RENDERED_CHARS:,} characters"
            line = line or error.line
        elif isinstance(error, _Raised):
            what = f"the template raised an error: {one_line(error)}"
        elif isinstance(error, jinja2.exceptions.SecurityError):
            what = f"the sandbox refused: {one_line(error)}"
        elif isinstance(error, jinja2.exceptions.TemplateError):
            what = one_line(error)
        elif isinstance(error, RecursionError):
            what = "recursion too deep"
        elif isinstance(error, MemoryError):
            what = "it ran out of memory"
        else:
            what = f"{type(error).__name__}: {one_line(error)}"
        where = f", line {line}" if line else ""
        return InvalidData(f"chat template {self.name}{where}: {what}")

    def _generator_line(self, output: Any) -> int | None:
        """The template line a suspended render is at (its innermost generator's)."""
        line = None
        while output is not None:
            frame = getattr(output, "gi_frame", None)
            if frame is not None and frame.f_code.co_filename == TEMPLATE_FILENAME:
                line = self.compiled.get_corresponding_lineno(frame.f_lineno)
            output = getattr(output, "gi_yieldfrom", None)
        return line


def compile_template(
    source: str, name: str, special_tokens: dict[str, str] | None = None
) -> ChatTemplate:
    """`source` compiled as transformers compiles a chat template; InvalidData naming `name` and
    the line for a syntax error."""
    import jinja2

    environment_class, generation = _jinja_classes()
    environment = environment_class(
        trim_blocks=True, lstrip_blocks=True, extensions=[generation, "jinja2.ext.loopcontrols"]
    )
    environment.filters["tojson"] = _tojson
    environment.globals["raise_exception"] = _raise_exception
    environment.globals["strftime_now"] = _strftime_now
    environment.globals["dict"] = _TemplateDict()
    environment.globals["namespace"] = _namespace_class()
    try:
        with _WATCHDOG.limit(RENDER_SECONDS):  # constant expressions are computed now
            tree = environment.parse(source)
            compiled = environment.from_string(tree)
    except jinja2.exceptions.TemplateSyntaxError as error:
        where = f", line {error.lineno}" if error.lineno else ""
        raise InvalidData(f"chat template {name}{where}: {error.message}") from None
    except Exception as error:
        what = f"{type(error).__name__}: {one_line(error)}"
        raise InvalidData(f"chat template {name}: {what}") from None
    has_generation = any(
        isinstance(node.call.node, jinja2.nodes.ExtensionAttribute)
        and node.call.node.name == "_generation"
        for node in tree.find_all(jinja2.nodes.CallBlock)
    )
    return ChatTemplate(
        name=name,
        source=source,
        sha256=hashlib.sha256(source.encode()).hexdigest(),
        special_tokens=dict(special_tokens or {}),
        has_generation=has_generation,
        compiled=compiled,
    )


class _RenderState:
    """One render under way: the length of the text so far, the generation blocks' spans."""

    __slots__ = ("length", "spans")

    def __init__(self) -> None:
        self.length = 0
        self.spans: list[tuple[int, int]] = []


_RENDERING: contextvars.ContextVar[_RenderState | None] = contextvars.ContextVar(
    "chat_template_render", default=None
)


class _Raised(Exception):
    """What the template's ``raise_exception(message)`` raises (a jinja2 TemplateError in
    transformers; either way the render stops with the message)."""


class _TooLarge(Exception):
    def __init__(self, line: int | None = None) -> None:
        super().__init__("too large")
        self.line = line


def _raise_exception(message: Any) -> None:
    raise _Raised(message)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    # transformers' own: Jinja's escapes HTML characters and takes only indent.
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _strftime_now(format: str) -> str:
    return datetime.now().strftime(format)


class _TemplateDict:
    """``dict`` for templates: builds dicts, without handing out the class itself."""

    def __call__(self, *args: Any, **kwargs: Any) -> dict:
        return dict(*args, **kwargs)

    def fromkeys(self, *args: Any, **kwargs: Any) -> dict:
        return dict.fromkeys(*args, **kwargs)


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse a ``+``, ``*`` or ``**`` whose result would pass the size limits."""
    sized = (str, list, tuple)
    if operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            too_large = right * left.bit_length() > MAX_INT_BITS
        else:
            too_large = False
    elif isinstance(left, int) and isinstance(right, int):
        too_large = operator == "*" and left.bit_length() + right.bit_length() > MAX_INT_BITS
    elif operator == "+":
        too_large = (
            isinstance(left, sized)
            and isinstance(right, sized)
            and len(left) + len(right) > MAX_RENDERED_CHARS
        )
    else:  # "*": a sequence repeated
        sequence, times = (left, right) if isinstance(right, int) else (right, left)
        too_large = (
            isinstance(sequence, sized)
            and isinstance(times, int)
            and len(sequence) * times > MAX_RENDERED_CHARS
        )
    if too_large:
        raise _TooLarge


@functools.cache
def _jinja_classes() -> tuple[type, type]:
    """The sandboxed environment (with the size checks) and the ``{% generation %}`` extension,
    made when first needed so that jinja2 is imported only then."""
    import jinja2.ext
    import jinja2.nodes
    import jinja2.sandbox

    class Generation(jinja2.ext.Extension):
        """``{% generation %}...{% endgeneration %}``: the text inside is what the model
        generates; while a render records it, its span joins the render's spans."""

        tags = {"generation"}  # noqa: RUF012 (Jinja's own class attribute)

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            call = self.call_method("_generation")
            return jinja2.nodes.CallBlock(call, [], [], body).set_lineno(lineno)

        def _generation(self, caller: Callable[[], str]) -> str:
            text = caller()
            state = _RENDERING.get()
            if state is not None:
                # As transformers: from the length of the text yielded so far, even when the
                # block sits in a macro or a set block whose text is yielded later, or never.
                state.spans.append((state.length, state.length + len(text)))
            return text

    class Environment(jinja2.sandbox.ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"+", "*", "**"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            _check_binop(operator, left, right)
            return self.binop_table[operator](left, right)

    return Environment, Generation


@functools.cache
def _namespace_class() -> type:
    import jinja2.exceptions
    import jinja2.utils

    def check(name: Any) -> None:
        if isinstance(name, str) and name.startswith("_"):
            raise jinja2.exceptions.SecurityError(
                f"a namespace may not hold a name starting with '_': {name!r}"
            )

    class Namespace(jinja2.utils.Namespace):
        """Jinja's namespace, refusing names that start with ``_`` as transformers' does."""

        def __init__(*args: Any, **kwargs: Any) -> None:  # Jinja's signature: self may be a key
            self, args = args[0], args[1:]
            attributes = dict(*args, **kwargs)
            for name in attributes:
                check(name)
            jinja2.utils.Namespace.__init__(self, attributes)

        def __setitem__(self, name: str, value: Any) -> None:
            check(name)
            jinja2.utils.Namespace.__setitem__(self, name, value)

    return Namespace


def _template_line(error: BaseException) -> int | None:
    """The template line an error was raised at: Jinja rewrites tracebacks so that the frames
    of template code carry the template's own line numbers."""
    line = None
    trace = error.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == TEMPLATE_FILENAME:
            line = trace.tb_lineno
        trace = trace.tb_next
    return line


# ---------------------------------------------------------------- the time limit


class _TimeLimit(Exception):
    """Raised by the watchdog inside a thread whose render ran past its deadline."""


def _set_async_exc(ident: int, error: type[BaseException] | None) -> None:
    """Raise `error` in thread `ident` at its next Python instruction; None takes back one that
    has not been raised yet."""
    exc = ctypes.py_object(error) if error is not None else None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), exc)


class _Watchdog:
    """Stops renders that run past their deadline, in whatever thread they run.

    A template's loops are Python bytecode that no hook of the sandbox need ever see (nested
    ``for`` loops over a long list call nothing), so the limit is an exception raised inside the
    rendering thread (CPython's ``PyThreadState_SetAsyncExc``) by a watch thread that looks at
    the deadlines ten times a second, and stops after a second without any.
    """

    POLL = 0.1
    IDLE = 1.0

    def __init__(self) -> None:
        self._lock = threading.Lock()  # a C lock: no Python code runs while it is taken
        self._deadlines: dict[int, float] = {}
        self._watching = False
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        """A forked child has none of the parent's threads: it starts its own watch."""
        self._lock = threading.Lock()
        self._deadlines = {}
        self._watching = False

    @contextlib.contextmanager
    def limit(self, seconds: float) -> Iterator[None]:
        ident = threading.get_ident()
        with self._lock:
            self._deadlines[ident] = time.monotonic() + seconds
            if not self._watching:
                self._watching = True
                watch = threading.Thread(target=self._watch, name="template-watchdog", daemon=True)
                watch.start()
        try:
            yield
        finally:
            with self._lock:
                if self._deadlines.pop(ident, None) is None:  # the watchdog fired meanwhile
                    _set_async_exc(ident, None)

    def _watch(self) -> None:
        idle_since = time.monotonic()
        while True:
            time.sleep(self.POLL)
            with self._lock:
                now = time.monotonic()
                for ident, deadline in list(self._deadlines.items()):
                    if deadline <= now:
                        del self._deadlines[ident]
                        _set_async_exc(ident, _TimeLimit)
                if self._deadlines:
                    idle_since = now
                elif now - idle_since > self.IDLE:
                    self._watching = False
                    return


_WATCHDOG = _Watchdog()


# ---------------------------------------------------------------- conversations as messages


def template_messages(messages: Any) -> list[dict[str, Any]]:
    """A conversation's messages as a chat template takes them (the mapping is in the module's
    docstring); InvalidData when they are not a non-empty list of messages."""
    if type(messages) is not list or not messages:
        raise InvalidData("the conversation has no messages")
    converted: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if type(message) is not dict:
            raise InvalidData(f"message {i} is not an object")
        content = message.get("content")
        if type(content) is list:
            if message.get("role") != "assistant":
                raise InvalidData(f"message {i}: only an assistant's content may be parts")
            converted.extend(_from_parts(message, content, i))
        else:
            converted.append(_as_transformers_passes(message))
    return converted


def _as_transformers_passes(message: dict[str, Any]) -> dict[str, Any]:
    """Without the keys whose value is None, with the reasoning under both of its names."""
    message = {key: value for key, value in message.items() if value is not None}
    reasoning = next((message[key] for key in REASONING_KEYS if key in message), None)
    if reasoning is not None:
        message = {"thinking": reasoning, **message, "reasoning_content": reasoning}
    return message


def _from_parts(message: dict[str, Any], parts: list, i: int) -> list[dict[str, Any]]:
    """An assistant message with parts as assistant messages with tool calls, and tool
    messages; the message's other keys go with the first assistant message."""
    extra = {k: v for k, v in message.items() if k not in ("role", "content")}
    converted: list[dict[str, Any]] = []
    text: list[str] = []
    calls: list[dict[str, Any]] = []

    def close_message() -> None:
        if text or calls:
            assistant = {**extra, "role": "assistant", "content": "".join(text)}
            if calls:
                assistant["tool_calls"] = list(calls)
            converted.append(_as_transformers_passes(assistant))
            extra.clear()
            text.clear()
            calls.clear()

    for j, part in enumerate(parts):
        if type(part) is not dict or type(part.get("text")) is not str:
            raise InvalidData(f"message {i}, part {j}: a part is an object with a string 'text'")
        kind, value = part.get("type"), part["text"]
        if kind == "text":
            if calls:
                close_message()
            text.append(value)
        elif kind == "python":
            call = {"name": "python", "arguments": {"code": value}}
            calls.append({"type": "function", "function": call})
        elif kind == "python_output":
            close_message()
            converted.append({"role": "tool", "name": "python", "content": value})
        else:
            raise InvalidData(f"message {i}, part {j}: unknown part type {kind!r}")
    close_message()
    if not converted:  # no parts at all: nanochat renders an empty assistant turn
        converted.append(_as_transformers_passes({**extra, "role": "assistant", "content": ""}))
    return converted


# ---------------------------------------------------------------- the mask


def overlap_mask(offsets: np.ndarray, spans: list[tuple[int, int]]) -> np.ndarray:
    """1 for each token whose characters (`offsets`, one ``(start, end)`` row per token)
    overlap a span, 0 elsewhere, exactly as transformers computes ``assistant_masks``.

    transformers walks tokens and spans together: a token moves the walk past every span that
    ends at or before the token's start, stops it for good past the last span, and is trained
    when it ends after the start of the span the walk is at. With span ends in order (the
    usual case) the span a token stops at is found by binary search on the running maximum of
    token starts, which gives the same answer; otherwise the walk itself runs.
    """
    mask = np.zeros(len(offsets), dtype=np.uint8)
    if not spans or not len(offsets):
        return mask
    starts = np.fromiter((start for start, _ in spans), dtype=np.int64, count=len(spans))
    ends = np.fromiter((end for _, end in spans), dtype=np.int64, count=len(spans))
    if np.all(ends[1:] >= ends[:-1]):
        reached = np.maximum.accumulate(offsets[:, 0])
        which = np.searchsorted(ends, reached, side="right")
        inside = which < len(spans)
        mask[inside] = offsets[inside, 1] > starts[which[inside]]
        return mask
    span = 0
    for i, (start, end) in enumerate(offsets.tolist()):
        while span < len(spans) and start >= spans[span][1]:
            span += 1
        if span == len(spans):
            break
        if end > spans[span][0]:
            mask[i] = 1
    return mask


def _mark(content: str, number: int, inside: bool) -> str:
    """`content` between the marks of message `number`; with `inside`, the marks go inside its
    leading and trailing whitespace, which a template's ``trim`` then removes as it would."""
    start = OPEN + chr(FIRST_NUMBER + number)
    if not inside:
        return start + content + CLOSE
    core = content.strip()
    lead = content[: len(content) - len(content.lstrip())] if core else content
    trail = content[len(content.rstrip()) :] if core else ""
    return lead + start + core + CLOSE + trail


def _marked_contents(
    template: ChatTemplate, messages: list[dict[str, Any]], text: str, inside: bool
) -> list[tuple[int, int, int]] | None:
    """``(message, start, end)`` of each message content the template wrote into `text`, in
    text order, found by rendering with marked contents (see `_mark`); None when that
    rendering is not `text` once the marks are taken out (the template changes contents in a
    way the marks change) or fails."""
    if len(messages) > MAX_MARKED:
        return None
    marked = [
        {**m, "content": _mark(m["content"], k, inside)} if type(m.get("content")) is str else m
        for k, m in enumerate(messages)
    ]
    try:
        marked_text, _ = template.render(marked)
    except InvalidData:
        return None
    found: list[tuple[int, int, int]] = []
    removed = 0
    opened: tuple[int, int] | None = None
    for match in MARKS.finditer(marked_text):
        at = match.start() - removed
        removed += match.end() - match.start()
        if match.group(0) == CLOSE:
            if opened is None:
                return None
            found.append((*opened, at))
            opened = None
        elif match.group(1) is None or opened is not None:
            return None
        else:
            opened = (ord(match.group(1)) - FIRST_NUMBER, at)
    if opened is not None or MARKS.sub("", marked_text) != text:
        return None
    return found


def _searched_contents(messages: list[dict[str, Any]], text: str) -> list[tuple[int, int, int]]:
    """``(message, start, end)`` of each message content found in `text`, searched for in
    order (as it is, else stripped of surrounding whitespace)."""
    found: list[tuple[int, int, int]] = []
    cursor = 0
    for k, message in enumerate(messages):
        content = message.get("content")
        if type(content) is not str:
            continue
        for wanted in (content, content.strip()):
            at = text.find(wanted, cursor) if wanted else -1
            if at >= 0:
                found.append((k, at, at + len(wanted)))
                cursor = at + len(wanted)
                break
    return found


# ---------------------------------------------------------------- rendering


@dataclass(frozen=True, eq=False)
class TemplateRenderer:
    """Renders conversations through a chat template into ids and mask: what a `Tokenizer`
    with a chat template holds as its ``template``. `encode` gives a rendered text's ids and
    their character offsets; `special_ids` are the ids that can end an assistant's turn for the
    ``assistant`` rule (the tokenizer's special tokens)."""

    template: ChatTemplate
    train_on: str
    encode: Callable[[str], tuple[list[int], np.ndarray]] = field(repr=False)
    special_ids: np.ndarray = field(repr=False)

    @property
    def rule(self) -> str:
        """The mask rule: ``generation``, ``assistant`` or ``all`` (see the module docstring)."""
        if self.train_on == "all":
            return "all"
        return "generation" if self.template.has_generation else "assistant"

    def describe(self) -> dict[str, Any]:
        """What manifests and ``--json`` outputs record of the template."""
        return {
            "name": self.template.name,
            "sha256": self.template.sha256,
            "rule": self.rule,
            "special_tokens": dict(self.template.special_tokens),
        }

    def render(self, conversation: dict[str, Any], max_tokens: int) -> TemplateRendering:
        """One conversation's ids and mask, cut at `max_tokens` (0: no cut); InvalidData, one
        line, for a conversation the template cannot render."""
        ids, mask, missed = self.ids_and_mask(conversation)
        length = len(ids)
        trains_nothing = not mask.any()
        if max_tokens and length > max_tokens:
            del ids[max_tokens:]
            mask = mask[:max_tokens]
        return TemplateRendering(ids, mask.tolist(), length, self.rule, missed, trains_nothing)

    def render_batch(
        self, position: int, chunk: list[dict[str, Any]], max_tokens: int
    ) -> TokenBatch:
        """The conversations of `chunk`, number `position` on in their stream, as one
        `TokenBatch`, as ``taskcli.training.render.render_batches`` makes them."""
        packed = array("i")
        masks: list[np.ndarray] = []
        offsets, lengths = [0], []
        trains_nothing = 0
        for k, conversation in enumerate(chunk):
            try:
                ids, mask, _ = self.ids_and_mask(conversation)
            except InvalidData as error:
                raise InvalidData(f"conversation {position + k}: {error}") from None
            trains_nothing += not mask.any()
            lengths.append(len(ids))
            if max_tokens and len(ids) > max_tokens:
                del ids[max_tokens:]
                mask = mask[:max_tokens]
            packed.fromlist(ids)
            masks.append(mask)
            offsets.append(len(packed))
        flat = np.concatenate(masks).tobytes() if masks else b""
        return TokenBatch(position, packed, flat, offsets, lengths, trains_nothing)

    def ids_and_mask(self, conversation: dict[str, Any]) -> tuple[list[int], np.ndarray, int]:
        """The uncut ids, the mask (uint8), and the assistant messages the rule missed."""
        try:
            messages = template_messages(conversation["messages"])
        except (KeyError, TypeError) as error:
            raise InvalidData(
                f"not a renderable conversation ({type(error).__name__}: {error})"
            ) from None
        rule = self.rule
        text, spans = self.template.render(messages)
        ids, offsets = self.encode(text)
        if rule == "all":
            return ids, np.ones(len(ids), dtype=np.uint8), 0
        if rule == "generation":
            return ids, overlap_mask(offsets, spans), 0
        spans, missed = self._assistant_spans(messages, text, ids, offsets)
        return ids, overlap_mask(offsets, spans), missed

    def _assistant_spans(
        self, messages: list[dict[str, Any]], text: str, ids: list[int], offsets: np.ndarray
    ) -> tuple[list[tuple[int, int]], int]:
        """The ``assistant`` rule's character spans, and the assistant messages not found."""
        found = _marked_contents(self.template, messages, text, inside=False)
        if found is None:  # a template that trims contents, say
            found = _marked_contents(self.template, messages, text, inside=True)
        if found is None:
            found = _searched_contents(messages, text)
        special = np.flatnonzero(np.isin(np.asarray(ids, dtype=np.int64), self.special_ids))
        special_starts = offsets[special, 0]
        spans: list[tuple[int, int]] = []
        located: set[int] = set()
        for n, (k, start, end) in enumerate(found):
            if messages[k].get("role") != "assistant":
                continue
            located.add(k)
            limit = found[n + 1][1] if n + 1 < len(found) else len(text)
            after = special[(special_starts >= end) & (special_starts < limit)]
            spans.append((start, int(offsets[after[0], 1]) if len(after) else end))
        missed = sum(
            1 for k, m in enumerate(messages) if m.get("role") == "assistant" and k not in located
        )
        return spans, missed
