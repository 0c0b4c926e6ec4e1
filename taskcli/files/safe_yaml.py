"""YAML from files taskcli did not write (mixture specs people share, READMEs of datasets), read
with bounded cost.

PyYAML's safe loader builds no arbitrary objects, but it still expands aliases (a few hundred
bytes of nested ``&a [*a, *a, ...]`` become gigabytes and minutes), recurses once per level of
nesting (100,000 levels is a RecursionError) and parses a 5000-digit number by raising
ValueError. This loader refuses aliases (neither specs nor dataset cards need them), stops at
`MAX_DEPTH` levels and at integers of more than `MAX_INT_DIGITS` digits, each with the line and
column; the callers cap the text's size. Every refusal is a `yaml.MarkedYAMLError`, reported like
any other YAML mistake.
"""

from __future__ import annotations

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
