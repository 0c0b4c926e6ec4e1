"""A rendered conversation's tokens: its ids and loss mask (`Rendering`), and many conversations
at once in flat buffers (`TokenBatch`), as `taskcli.training.render` and chat templates
(`taskcli.training.chat_template`) make them."""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Rendering:
    """Token ids and mask (1: trained) of one conversation, and its length before the cut.

    Unpacks as ``ids, mask = render(...)``, like nanochat's ``render_conversation``.
    """

    ids: list[int]
    mask: list[int]
    length: int

    def __iter__(self) -> Iterator[list[int]]:
        return iter((self.ids, self.mask))

    @property
    def num_tokens(self) -> int:
        return len(self.ids)

    @property
    def num_trained(self) -> int:
        return sum(self.mask)

    @property
    def tokens_cut(self) -> int:
        """How many tokens the cut dropped."""
        return self.length - len(self.ids)

    @property
    def truncated(self) -> bool:
        return self.length > len(self.ids)

    def row(self, index: int) -> dict[str, Any]:
        """The JSON row ``show --tokens --json`` prints for the conversation at `index`."""
        return {
            "index": index,
            "ids": self.ids,
            "mask": self.mask,
            "num_tokens": len(self.ids),
            "num_trained": sum(self.mask),
            "truncated": self.truncated,
            "tokens_cut": self.tokens_cut,
        }


@dataclass(frozen=True, slots=True)
class TokenBatch:
    """Consecutive conversations of a stream rendered into flat buffers.

    `ids` (int32) holds every kept id, `mask` one byte (0 or 1) per kept id; conversation k of
    the batch is ``ids[offsets[k]:offsets[k + 1]]``, its length before the cut `lengths[k]`, and
    it is number ``start + k`` of the stream. `trains_nothing` counts its conversations that
    have no trained token before the cut (whatever the cut, they teach the model nothing).
    Workers send these back to the parent: a few flat buffers pickle far faster than lists of
    ints, and Parquet takes them as they are.
    """

    start: int
    ids: array
    mask: bytes
    offsets: list[int]
    lengths: list[int]
    trains_nothing: int = 0
    keys: list[Any] | None = None  # `key(conversation)` of each, when render_batches got a key

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[Rendering]:
        ids, mask, offsets = self.ids, self.mask, self.offsets
        for k, length in enumerate(self.lengths):
            start, end = offsets[k], offsets[k + 1]
            yield Rendering(ids[start:end].tolist(), list(mask[start:end]), length)

    def num_tokens(self) -> list[int]:
        """Tokens (after the cut) of each conversation."""
        offsets = self.offsets
        return [offsets[k + 1] - offsets[k] for k in range(len(self.lengths))]

    def num_trained(self) -> list[int]:
        """Trained tokens (after the cut) of each conversation."""
        mask, offsets = self.mask, self.offsets
        return [mask.count(1, offsets[k], offsets[k + 1]) for k in range(len(self.lengths))]
