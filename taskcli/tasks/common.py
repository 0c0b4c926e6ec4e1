"""What every task shares: slicing, mixing, sequencing, and the multiple-choice prompt.

A task is a sequence of conversations (see `taskcli.conversation`) plus the rule that scores a
model's answer. Subclasses say how many examples they have and how to build example i; the base
class turns that into a sliceable sequence::

    task = GSM8K(split="train", start=100, stop=200, step=2)   # 50 conversations
    task[0]                                                  # example 100
    for conversation in task: ...

What only some tasks can do (Arrow bulk export, running code, ...) is in
`taskcli.tasks.capabilities`.
"""

from __future__ import annotations

import copy
import random
import re
from array import array
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, overload

from taskcli.errors import UsageError, suggest

Conversation = dict[str, Any]
SCAN_CHUNK = 1024  # examples read at a time by `Task.iter_examples`


@dataclass(frozen=True)
class Param:
    """A task parameter as the registry, `--param key=value` and mixture specs see it."""

    name: str
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    is_path: bool = False  # a local file (or URL): mixture specs resolve it against their folder


def _parse_value(kind: type, raw: Any) -> Any:
    """`raw` as a value of `kind`; strings are parsed, others must match."""
    if isinstance(raw, str):
        if kind is bool:
            return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}[
                raw.lower()
            ]
        return kind(raw)
    if type(raw) is kind or (kind is float and type(raw) is int):
        return raw
    raise ValueError(raw)


def _a(noun: str) -> str:
    """`noun` with its indefinite article: "an int", "a str"."""
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def check_slice(start: int, stop: int | None, step: int) -> None:
    """Raise ValueError unless ``start:stop:step`` is a valid slice of a task."""
    for label, value in (("start", start), ("step", step)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{label} must be an integer, got {value!r}")
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    if stop is not None and (not isinstance(stop, int) or isinstance(stop, bool) or stop < start):
        raise ValueError(f"stop must be an integer >= start ({start}), got {stop!r}")
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")


class Task:
    """A logical ``[start:stop:step]`` slice of a task's underlying examples.

    A task implements nanochat's contract: `num_examples`, `get_example`, `evaluate` and
    `eval_type`; this class slices it. Class attributes are the task's registry entry;
    `taskcli list` reads them without loading any data, so they must not need the data to be
    known.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    dataset: ClassVar[str] = ""  # where the examples come from: a Hub id, "local file", ...
    eval_type: ClassVar[str | None] = None  # "categorical", "generative", or None for training data
    subsets: ClassVar[tuple[str, ...]] = ()
    # The splits, either for every subset or per subset where they differ.
    splits: ClassVar[tuple[str, ...] | dict[str, tuple[str, ...]]] = ()
    default_subset: ClassVar[str | None] = None
    default_split: ClassVar[str | None] = None
    params: ClassVar[tuple[Param, ...]] = ()
    uses_data_dir: ClassVar[bool] = False  # whether the constructor takes `data_dir`

    def __init__(self, start: int = 0, stop: int | None = None, step: int = 1) -> None:
        check_slice(start, stop, step)
        self.start, self.stop, self.step = start, stop, step

    # --- what a request may ask of the class, checked without loading any data -----------------

    @classmethod
    def splits_for(cls, subset: str | None) -> tuple[str, ...]:
        """The splits of `subset` (or of the task, when its splits do not depend on the subset)."""
        if isinstance(cls.splits, dict):
            return cls.splits.get(subset, ())
        return cls.splits

    @classmethod
    def choose_subset_split(
        cls, subset: str | None, split: str | None
    ) -> tuple[str | None, str | None]:
        """The subset and split a request means, defaults filled in; UsageError lists valid ones.

        The one home of this rule: the registry, mixture specs and the constructors that take a
        subset or split all call it.
        """
        name = cls.name
        if cls.subsets:
            subset = subset or cls.default_subset
            if subset not in cls.subsets:
                raise UsageError(
                    f"task {name!r} has no subset {subset!r}.{suggest(subset or '', cls.subsets)} "
                    f"Valid subsets: {', '.join(cls.subsets)}."
                )
        elif subset is not None:
            raise UsageError(f"task {name!r} has no subsets (got {subset!r}).")
        valid_splits = cls.splits_for(subset)
        if valid_splits:
            default = cls.default_split if cls.default_split in valid_splits else valid_splits[0]
            split = split or default
            if split not in valid_splits:
                where = f" in subset {subset!r}" if subset else ""
                raise UsageError(
                    f"task {name!r} has no split {split!r}{where}."
                    f"{suggest(split, valid_splits)} Valid splits: {', '.join(valid_splits)}."
                )
        elif split is not None:
            raise UsageError(f"task {name!r} has no splits (got {split!r}).")
        return subset, split

    @classmethod
    def convert_param(cls, key: str, raw: Any) -> Any:
        """Parameter `key` as its declared type: strings (``-p key=value``) are parsed, other
        values (YAML's) must already have the type; UsageError names the valid parameters."""
        spec = next((p for p in cls.params if p.name == key), None)
        if spec is None:
            names = [p.name for p in cls.params]
            known = ", ".join(names) if names else "none"
            raise UsageError(
                f"task {cls.name!r} has no parameter {key!r}.{suggest(key, names)} "
                f"Its parameters: {known}."
            )
        try:
            value = _parse_value(spec.type, raw)
        except (ValueError, KeyError):
            raise UsageError(
                f"parameter {key!r} of {cls.name!r} takes {_a(spec.type.__name__)}, got {raw!r}."
            ) from None
        if spec.choices and value not in spec.choices:
            raise UsageError(
                f"parameter {key!r} of {cls.name!r} must be one of {', '.join(spec.choices)}; "
                f"got {value!r}."
            )
        return value

    # --- what a task implements (nanochat's contract, with `eval_type`) ------------------------

    def num_examples(self) -> int:
        """How many examples the underlying data has, before slicing."""
        raise NotImplementedError

    def get_example(self, index: int) -> Conversation:
        """The conversation at `index` of the underlying data (not of the slice)."""
        raise NotImplementedError

    def evaluate(self, conversation: Conversation, response: str) -> bool:
        """Whether `response` is a correct answer to `conversation`."""
        raise NotImplementedError(f"task {self.name or type(self).__name__!r} has no evaluation")

    # --- batched reads, which every caller uses; a task overrides them only to read faster ---

    def get_examples(self, indices: Sequence[int]) -> list[Conversation]:
        """Several underlying examples at once; Arrow-backed tasks override this to batch reads."""
        return [self.get_example(i) for i in indices]

    def iter_examples(self, indices: Sequence[int]) -> Iterator[tuple[int, Conversation]]:
        """``(i, example indices[i])`` for every i, in whichever order is cheapest to read.

        For whole passes that do not need the task's own order (an export, statistics): memory
        stays bounded however many indices there are. Arrow-backed tasks override it to read
        in storage order, each block once; this default reads a chunk of `indices` at a time.
        """
        for chunk_start in range(0, len(indices), SCAN_CHUNK):
            chunk = indices[chunk_start : chunk_start + SCAN_CHUNK]
            yield from enumerate(self.get_examples(chunk), start=chunk_start)

    def batch(self, start: int, stop: int) -> list[Conversation]:
        """Logical positions ``start .. stop-1`` in one call, so Arrow tasks can read in bulk."""
        return self.get_examples(self.physical_range()[start:stop])

    # --- the sequence protocol ----------------------------------------------------------------

    def physical_range(self) -> range:
        """The underlying examples of the slice, in order: position i is example ``range[i]``.

        The one place the slice arithmetic is written; everything else indexes this range.
        """
        available = self.num_examples()
        bound = available if self.stop is None else min(self.stop, available)
        return range(self.start, bound, self.step)

    def __len__(self) -> int:
        return len(self.physical_range())

    def physical_index(self, index: int) -> int:
        """The underlying example behind logical position `index` (negative counts from the end)."""
        if not isinstance(index, int) or isinstance(index, bool):
            raise TypeError(f"task indices must be integers, got {type(index).__name__}")
        examples = self.physical_range()
        try:
            return examples[index]
        except IndexError:
            raise IndexError(
                f"index {index} is out of range: the task has {len(examples)} examples"
            ) from None

    @overload
    def __getitem__(self, index: int) -> Conversation: ...

    @overload
    def __getitem__(self, index: slice) -> Task: ...

    def __getitem__(self, index: int | slice) -> Conversation | Task:
        """Example `index`, or for a slice (``task[10:20:2]``) the task narrowed to it: a
        shallow copy sharing the data, as the sequence protocol promises. Slices go forward."""
        if isinstance(index, slice):
            return self._sliced(index)
        return self.get_example(self.physical_index(index))

    def _sliced(self, part: slice) -> Task:
        if part.step is not None and part.step < 1:
            raise ValueError(f"a task slice must step forward (step >= 1), got {part.step}")
        examples = self.physical_range()[part]
        narrowed = copy.copy(self)
        narrowed.start, narrowed.step = examples.start, examples.step
        narrowed.stop = max(examples.stop, examples.start)
        return narrowed

    def __iter__(self) -> Iterator[Conversation]:
        examples = self.physical_range()
        for chunk_start in range(0, len(examples), SCAN_CHUNK):
            yield from self.get_examples(examples[chunk_start : chunk_start + SCAN_CHUNK])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(start={self.start}, stop={self.stop}, step={self.step})"


class TaskSequence(Task):
    """Tasks one after another, in order (a curriculum)."""

    def __init__(self, tasks: Sequence[Task], **slice_args: int | None) -> None:
        super().__init__(**slice_args)
        self.tasks = list(tasks)
        self.offsets = [0]
        for task in self.tasks:
            self.offsets.append(self.offsets[-1] + len(task))

    def num_examples(self) -> int:
        return self.offsets[-1]

    def locate(self, index: int) -> tuple[int, int]:
        """(task number, index within that task) of underlying example `index`."""
        task_number = bisect_right(self.offsets, index) - 1
        return task_number, index - self.offsets[task_number]

    def get_example(self, index: int) -> Conversation:
        task_number, local = self.locate(index)
        return self.tasks[task_number][local]

    def get_examples(self, indices: Sequence[int]) -> list[Conversation]:
        located = [self.locate(i) for i in indices]
        wanted: dict[int, list[int]] = {}
        for task_number, local in located:
            wanted.setdefault(task_number, []).append(local)
        fetched = {
            number: iter(
                self.tasks[number].get_examples(
                    [self.tasks[number].physical_index(i) for i in locals_]
                )
            )
            for number, locals_ in wanted.items()
        }
        return [next(fetched[task_number]) for task_number, _ in located]


class TaskMixture(TaskSequence):
    """Tasks interleaved in one deterministic shuffled order.

    The order is nanochat's: the ``(task number, local index)`` pairs listed task by task, then
    shuffled once with ``random.Random(seed).shuffle``. That permutation depends only on the
    list's length, so shuffling the global positions gives the identical order while storing
    8 bytes per row instead of a tuple. Passing a task twice oversamples it.
    """

    def __init__(self, tasks: Sequence[Task], seed: int = 42, **slice_args: int | None) -> None:
        super().__init__(tasks, **slice_args)
        self.seed = seed

    @cached_property
    def order(self) -> array:
        """The shuffled global positions, made on first use: a plan that is only shown (or a
        pass that decodes its first data meanwhile) should not wait for it."""
        order = list(range(self.offsets[-1]))
        random.Random(self.seed).shuffle(order)
        return array("q", order)

    def locate(self, index: int) -> tuple[int, int]:
        return super().locate(self.order[index])


def multiple_choice_prompt(question: str, letters: Sequence[str], choices: Sequence[str]) -> str:
    """The multiple-choice prompt, with the letter after each choice and no spaces around '='.

    nanochat's `render_mc`, byte for byte (here "render" means token rendering only). Small
    models bind the answer better when the letter follows the choice, and "A" and " A" are
    different tokens, so the exact layout matters.
    """
    lines = [f"Multiple Choice question: {question}\n"]
    lines += [f"- {choice}={letter}\n" for letter, choice in zip(letters, choices, strict=True)]
    lines.append("\nRespond only with the letter of the correct answer.")
    return "".join(lines)


def extract_answer(text: str) -> str | None:
    """The number after the first '#### ' (GSM8K's final-answer marker), commas removed.

    None when there is no such number, so a response without a final answer never matches.
    """
    match = re.search(r"#### (-?[0-9.,]+)", text)
    return match.group(1).replace(",", "").strip() if match else None
