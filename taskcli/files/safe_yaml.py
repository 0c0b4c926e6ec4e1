"""YAML from files taskcli did not write (mixture specs people share, READMEs of datasets), read
with bounded cost.

PyYAML's safe loader builds no arbitrary objects, but it still expands aliases (a few hundred
bytes of nested ``&a [*a, *a, ...]`` become gigabytes and minutes), recurses once per level of
nesting (100,000 levels is a RecursionError) and parses a 5000-digit number by raising
ValueError. This loader refuses aliases (neither specs nor dataset cards need them), stops at
`MAX_DEPTH` levels and at integers of more than `MAX_INT_DIGITS` digits, each with the line and
column; the callers cap the text's size. Every refusal is a `yaml.MarkedYAMLError`, reported like
any other YAML mistake.

`explain` says what is wrong in the words of the person who wrote the file, where it is: PyYAML
speaks of its parser ("expected <block end>, but found '<block mapping start>'").
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

MAX_DEPTH = 64  # mappings and lists inside each other
MAX_INT_DIGITS = 40  # an unsigned 128-bit integer has 39 digits


class _BoundedLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` without aliases, with nesting and integer sizes capped."""

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ComposerError(
                None, None, f"aliases (*{event.anchor}) are not allowed", event.start_mark
            )
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise ComposerError(
                    None,
                    None,
                    f"nested deeper than {MAX_DEPTH} levels",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_yaml_int(self, node: Any) -> int:
        digits = sum(c.isdigit() for c in str(node.value))
        if digits > MAX_INT_DIGITS:
            raise ConstructorError(
                None, None, f"a number of {digits} digits is too large", node.start_mark
            )
        return super().construct_yaml_int(node)


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)


def load(text: str) -> Any:
    """The document in `text`; a `yaml.YAMLError` for invalid or refused YAML."""
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


# PyYAML's names for what it found, as the writer of the file sees them.
_TOKENS = {
    "<stream end>": "the end of the file",
    "<document start>": "'---'",
    "<block end>": "the end of the block",
    "<block mapping start>": "'key: value'",
    "<block sequence start>": "'- item'",
    "<scalar>": "a value",
    "?": "'key: value'",
}


def explain(error: yaml.YAMLError) -> tuple[str, str]:
    """Where the mistake is (``:LINE:COL``, or "" when PyYAML does not say) and what it is,
    in a sentence, for ``FILE:LINE:COL: what is wrong``.

    The place is the one to fix: where an unclosed quote or bracket opened, where a line
    without ':' starts; otherwise where PyYAML stopped. Mistakes it names in its own terms are
    put in people's; others pass through with its token names translated.
    """
    if not isinstance(error, yaml.MarkedYAMLError):
        return "", str(error)
    context, problem = error.context or "", error.problem or ""
    mark, why = error.problem_mark, None
    flow = re.fullmatch(r"expected ',' or '(.)', but got '(.+)'", problem)
    found = re.fullmatch(r"expected <block end>, but found '(.+)'", problem)
    character = re.fullmatch(r"found character '(.+)' that cannot start any token", problem)
    if character and character.group(1) == "\\t":
        why = "a tab; YAML indents and separates with spaces, not tabs"
    elif character:
        why = f"a value cannot start with {character.group(1)!r}: put it in quotes"
    elif problem == "mapping values are not allowed here":
        why = "a ':' inside a value: put a value that holds ': ' in quotes"
    elif problem == "could not find expected ':'":
        mark, why = error.context_mark, "a line without ':' where 'key: value' was expected"
    elif "quoted scalar" in context and "end of stream" in problem:
        mark, why = error.context_mark, "this quote is never closed"
    elif flow:
        closing = flow.group(1)
        opening = "[" if closing == "]" else "{"
        if flow.group(2) == "<stream end>":
            mark, why = error.context_mark, f"this {opening!r} is never closed with {closing!r}"
        else:
            got = _TOKENS.get(flow.group(2), repr(flow.group(2)))
            line = f" of line {error.context_mark.line + 1}" if error.context_mark else ""
            why = f"{got} where ',' or {closing!r} was expected, in the {opening!r}{line}"
    elif escape := re.fullmatch(r"found unknown escape character '(.+)'", problem):
        why = (
            f"'\\{escape.group(1)}' is no escape in double quotes: write '\\\\' for a "
            "backslash, or use single quotes"
        )
    elif found and found.group(1) in ("]", "}"):
        why = f"a {found.group(1)!r} that closes nothing"
    elif found:
        why = "this line is not indented like the lines above it"
        if error.context_mark is not None:
            why += f" (the block from line {error.context_mark.line + 1})"
    elif problem == "but found another document":
        why = "a second document: a spec is one YAML document, and '---' starts another"
    if why is None:
        why = ": ".join(part for part in (context, problem) if part)
        for token, words in _TOKENS.items():
            why = why.replace(f"'{token}'", words)
    where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
    return where, why
