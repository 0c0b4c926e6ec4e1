"""SpellingBee and SimpleSpelling: synthetic letter-counting and spelling drills over a word list.

Tokenizers hide the letters inside a word, so small models cannot see them; these tasks teach
a model to spell a word out first and then count, checking itself with a tool call. An example::

    user:      How many times does the letter 'r' appear in strawberry?
    assistant: [text]   I'll spell "strawberry" out and count the letter 'r' as I go. ...
               [python] 'strawberry'.count('r')
               [python_output] 3
               [text]   Python agrees: ... #### 3

SimpleSpelling is the plain drill: "Spell the word: apple" -> "apple:a,p,p,l,e".

Example i is built from ``random.Random(i)`` (train) or ``random.Random(i + 10_000_000)`` (test),
so any index can be rebuilt on its own and the two splits never share a seed. The word list is
a local path or a URL (downloaded once into the cache, see `taskcli.files.download`).
"""

from __future__ import annotations

import random
import string
import threading
from functools import cached_property
from pathlib import Path
from typing import ClassVar

from taskcli.errors import DataUnavailable, InvalidData, UsageError
from taskcli.tasks.capabilities import ReadsInThreads
from taskcli.tasks.common import Conversation, Param, Task, extract_answer

WORD_LIST_URL = (
    "https://raw.githubusercontent.com/dwyl/english-words/refs/heads/master/words_alpha.txt"
)
TEST_SEED_OFFSET = 10_000_000  # train seeds are 0 .. size-1, so the splits never overlap
MAX_WORD_LIST_BYTES = 16 << 20  # the default list is 4 MB; loaded, a byte costs about 15
MAX_WORD_CHARS = 100  # the longest English words have 45 letters
LETTER_FROM_WORD = 0.9  # otherwise any letter, so that "zero" is a possible answer too

# How the question is asked. {letter} and {word} arrive already quoted and cased.
QUESTION_TEMPLATES = (
    # English
    "How many times does the letter {letter} appear in {word}?",
    "How many {letter} are there in the word {word}?",
    "Count the occurrences of {letter} in {word}.",
    "In {word}, how often does the letter {letter} occur?",
    "Can you tell me how many times {letter} shows up in the word {word}?",
    "What is the number of {letter} letters in {word}?",
    "how many {letter} in {word}",
    "{word}: how many times is {letter} in it?",
    # Spanish
    "¿Cuántas veces aparece la letra {letter} en la palabra {word}?",
    "¿Cuántas {letter} tiene {word}?",
    "Cuenta cuántas veces está la letra {letter} en {word}.",
    # French
    "Combien de fois la lettre {letter} apparaît-elle dans le mot {word} ?",
    "Combien y a-t-il de {letter} dans {word} ?",
    # German
    "Wie oft kommt der Buchstabe {letter} im Wort {word} vor?",
    "Wie viele {letter} stecken in {word}?",
    # Chinese
    "单词{word}中有几个字母{letter}？",
    "字母{letter}在{word}里出现了多少次？",
    # Italian, Portuguese, Russian, Japanese
    "Quante volte compare la lettera {letter} nella parola {word}?",
    "Quantas vezes a letra {letter} aparece na palavra {word}?",
    "Сколько раз буква {letter} встречается в слове {word}?",
    "{word}という単語に{letter}はいくつありますか？",
)
QUOTES = (("", ""), ("'", "'"), ('"', '"'), ("“", "”"))


class _WordListTask(Task, ReadsInThreads):
    """What both spelling tasks share: the size, the split seeds and the word list.

    Each thread draws with a generator of its own (`rng`), so it may be read in threads.
    """

    dataset: ClassVar[str] = "synthetic"
    eval_type: ClassVar[str | None] = "generative"
    splits: ClassVar[tuple[str, ...]] = ("train", "test")
    default_split: ClassVar[str | None] = "train"
    params: ClassVar[tuple[Param, ...]] = (
        Param("size", int, 1000, "How many examples to generate."),
        Param(
            "word_list",
            str,
            WORD_LIST_URL,
            "Word list, one word per line: a local path, or an http(s) URL downloaded on first "
            "use and then cached.",
            is_path=True,
        ),
    )

    def __init__(
        self,
        size: int = 1000,
        split: str = "train",
        word_list: str = WORD_LIST_URL,
        **slice_args: int | None,
    ) -> None:
        super().__init__(**slice_args)
        _, split = self.choose_subset_split(None, split)
        if not 0 <= size <= TEST_SEED_OFFSET:
            raise UsageError(f"size must be between 0 and {TEST_SEED_OFFSET:,}, got {size}.")
        self.size, self.split, self.word_list = size, split, word_list
        self._generators = threading.local()

    def num_examples(self) -> int:
        return self.size

    def rng(self, index: int) -> random.Random:
        """The generator example `index` is built from, alone, whatever was built before it.

        It is this thread's one generator, seeded anew: seeding costs half of creating one, and
        an export builds hundreds of thousands of examples. Use it before asking for the next.
        """
        generator = getattr(self._generators, "rng", None)
        if generator is None:
            generator = self._generators.rng = random.Random()
        generator.seed(index + (TEST_SEED_OFFSET if self.split == "test" else 0))
        return generator

    @cached_property
    def words(self) -> list[str]:
        return read_word_list(self.word_list)


def read_word_list(source: str) -> list[str]:
    """The words of a local file or URL: stripped, lower-cased, empty lines dropped.

    A download is checked before it is cached (`check_word_list`); a local file only for its
    size, so that loading it stays within a few hundred megabytes.
    """
    if source.startswith(("http://", "https://")):
        from taskcli.files.download import cached_download

        try:
            path = cached_download(
                source,
                hint="set word_list to a local file to use one instead",
                check=check_word_list,
                max_bytes=MAX_WORD_LIST_BYTES,
            )
        except DataUnavailable as error:
            raise DataUnavailable(str(error), params=("word_list",)) from None
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise UsageError(
                f"word list {source} not found (looked for {path.absolute()}).",
                hint="set word_list to a file of one word per line, or an http(s) URL.",
                params=("word_list",),
            )
    try:
        if path.stat().st_size > MAX_WORD_LIST_BYTES:
            raise InvalidData(
                f"word list {source} is over {MAX_WORD_LIST_BYTES:,} bytes; "
                "a word list is a few megabytes."
            )
        with open(path, encoding="utf-8") as lines:
            words = [word for line in lines if (word := line.strip().lower())]
    except UnicodeDecodeError as error:
        raise InvalidData(f"word list {source} is not valid UTF-8: {error.reason}.") from None
    except OSError as error:
        raise UsageError(f"cannot read word list {source}: {error.strerror}.") from None
    if not words:
        raise InvalidData(f"word list {source} holds no words.")
    return words


def check_word_list(path: Path) -> None:
    """A ValueError unless `path` looks like a word list: UTF-8 text, no NUL, not an HTML page,
    at least one word, lines of at most `MAX_WORD_CHARS` characters (a sign of real words)."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    if "\0" in text:
        raise ValueError("binary data, not text")
    if text.lstrip()[:1] == "<":
        raise ValueError("an HTML or XML page, not a word list")
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise ValueError("empty of words")
    if max(map(len, lines)) > MAX_WORD_CHARS:
        raise ValueError(f"not one word per line (a line of over {MAX_WORD_CHARS} characters)")


def _quoted(text: str, rng: random.Random) -> str:
    opening, closing = rng.choice(QUOTES)
    return f"{opening}{text}{closing}"


class SpellingBee(_WordListTask):
    name: ClassVar[str] = "spellingbee"
    description: ClassVar[str] = "Synthetic: count a letter in a word, spelling it out first."

    def get_example(self, index: int) -> Conversation:
        rng = self.rng(index)
        word = rng.choice(self.words)
        in_word = rng.random() < LETTER_FROM_WORD
        letter = rng.choice(word if in_word else string.ascii_lowercase)
        template = rng.choice(QUESTION_TEMPLATES)
        shown_letter = letter.upper() if rng.random() < 0.25 else letter
        case = rng.random()
        shown_word = word.upper() if case < 0.05 else word.capitalize() if case < 0.2 else word
        question = template.format(letter=_quoted(shown_letter, rng), word=_quoted(shown_word, rng))
        return {"messages": [{"role": "user", "content": question}, _answer(word, letter)]}

    def evaluate(self, conversation: Conversation, response: str) -> bool:
        """Right when the number after '#### ' in the response is the reference count."""
        reference = extract_answer(conversation["messages"][-1]["content"][-1]["text"])
        return reference is not None and extract_answer(response) == reference


def _answer(word: str, letter: str) -> dict:
    """Spell `word`, tally `letter` by hand, confirm with a Python call, then give the count."""
    count = word.count(letter)
    lines = []
    running = 0
    for position, char in enumerate(word, start=1):
        if char == letter:
            running += 1
            lines.append(f"{position}. {char} <- '{letter}' number {running}")
        else:
            lines.append(f"{position}. {char}")
    times = "time" if count == 1 else "times"
    by_hand = (
        f"I'll spell \"{word}\" out and count the letter '{letter}' as I go.\n\n"
        f"{word}:{','.join(word)}\n\n" + "\n".join(lines) + f"\n\nBy hand that makes {count}. "
        "Let me double-check with Python:\n\n"
    )
    conclusion = (
        f"\n\nPython agrees: '{letter}' appears {count} {times} in \"{word}\".\n\n#### {count}"
    )
    return {
        "role": "assistant",
        "content": [
            {"type": "text", "text": by_hand},
            {"type": "python", "text": f"{word!r}.count({letter!r})"},
            {"type": "python_output", "text": str(count)},
            {"type": "text", "text": conclusion},
        ],
    }


class SimpleSpelling(_WordListTask):
    """Words come from a copy of the list shuffled with seed 42, so example i's word differs
    from SpellingBee's example i even though both draw with the same per-index seed."""

    name: ClassVar[str] = "simplespelling"
    description: ClassVar[str] = "Synthetic: spell a word as its letters separated by commas."

    @cached_property
    def shuffled_words(self) -> list[str]:
        words = list(self.words)
        random.Random(42).shuffle(words)
        return words

    def get_example(self, index: int) -> Conversation:
        word = self.rng(index).choice(self.shuffled_words)
        return {
            "messages": [
                {"role": "user", "content": f"Spell the word: {word}"},
                {"role": "assistant", "content": f"{word}:{','.join(word)}"},
            ]
        }

    def evaluate(self, conversation: Conversation, response: str) -> bool:
        """Right when the response, stripped, is exactly the reference spelling."""
        return response.strip() == conversation["messages"][-1]["content"]
