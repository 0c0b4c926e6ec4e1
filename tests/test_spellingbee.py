"""SpellingBee and SimpleSpelling: conversations field by field, seeds, counts, and the CLI."""

import json
import random
import re
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskcli.cli import app
from taskcli.conversation import check_messages
from taskcli.errors import InvalidData, UsageError
from taskcli.tasks.registry import describe
from taskcli.tasks.spellingbee import WORD_LIST_URL, SimpleSpelling, SpellingBee

runner = CliRunner()
REPO = Path(__file__).resolve().parent.parent

RAW_WORDS = (
    "  Strawberry\r\n\nMISSISSIPPI\nbookkeeper \n\t\nbanana\nkiwi\nzebra\nxylophone\n"
    "committee\nballoon\nparallel\na\nqueue\nrhythm\nsassafras\n"
)
WORDS = [
    "strawberry",
    "mississippi",
    "bookkeeper",
    "banana",
    "kiwi",
    "zebra",
    "xylophone",
    "committee",
    "balloon",
    "parallel",
    "a",
    "queue",
    "rhythm",
    "sassafras",
]
CALL = re.compile(r"'([a-z]+)'\.count\('([a-z])'\)")


@pytest.fixture
def word_file(tmp_path):
    path = tmp_path / "words.txt"
    path.write_bytes(RAW_WORDS.encode())
    return str(path)


def seed_of(index: int, split: str) -> int:
    return index if split == "train" else index + 10_000_000


def unpack(conversation):
    """(question, word, letter, parts) of a SpellingBee conversation, checking its shape."""
    assert list(conversation) == ["messages"]
    user, assistant = conversation["messages"]
    assert user["role"] == "user" and isinstance(user["content"], str)
    assert assistant["role"] == "assistant"
    parts = assistant["content"]
    assert [p["type"] for p in parts] == ["text", "python", "python_output", "text"]
    assert all(set(p) == {"type", "text"} for p in parts)
    word, letter = CALL.fullmatch(parts[1]["text"]).groups()
    return user["content"], word, letter, parts


def test_word_list_is_stripped_lowercased_and_without_blanks(word_file):
    assert SpellingBee(word_list=word_file).words == WORDS


def test_registry_entry():
    for cls, name in ((SpellingBee, "spellingbee"), (SimpleSpelling, "simplespelling")):
        entry = describe(cls)
        assert entry["name"] == name
        assert entry["source"] == "synthetic"
        assert entry["eval_type"] == "generative"
        assert entry["splits"] == ["train", "test"] and entry["default_split"] == "train"
        params = {p["name"]: (p["type"], p["default"]) for p in entry["params"]}
        assert params == {"size": ("int", 1000), "word_list": ("str", WORD_LIST_URL)}
        assert [p.name for p in cls.params if p.is_path] == ["word_list"]  # specs resolve it
    assert WORD_LIST_URL == (
        "https://raw.githubusercontent.com/dwyl/english-words/refs/heads/master/words_alpha.txt"
    )


@pytest.mark.parametrize("split", ["train", "test"])
def test_spellingbee_every_example_of_a_slice(word_file, split):
    task = SpellingBee(size=400, split=split, word_list=word_file, start=3, stop=303, step=2)
    conversations = list(task)
    assert len(conversations) == 150
    for position, conversation in enumerate(conversations):
        index = 3 + 2 * position
        question, word, letter, (spelled, call, output, final) = unpack(conversation)
        assert word == random.Random(seed_of(index, split)).choice(WORDS)
        count = sum(1 for char in word if char == letter)
        assert output["text"] == str(count)
        assert final["text"].endswith(f"#### {count}")
        assert call["text"] == f"'{word}'.count('{letter}')"
        # the hand count: the word spelled with commas, then one numbered line per letter
        assert f"{word}:{','.join(word)}" in spelled["text"]
        numbered = re.findall(r"^(\d+)\. ([a-z])(.*)$", spelled["text"], re.MULTILINE)
        assert [(int(n), char) for n, char, _ in numbered] == list(enumerate(word, start=1))
        marks = [rest for _, char, rest in numbered if rest]
        assert len(marks) == count
        assert [int(re.search(r"number (\d+)", m).group(1)) for m in marks] == list(
            range(1, count + 1)
        )
        assert word in question.lower() and letter in question.lower()
        assert check_messages(conversation["messages"]) == []


def test_spellingbee_varies_letters_languages_and_quoting(word_file):
    conversations = list(SpellingBee(size=400, word_list=word_file))
    unpacked = [unpack(c) for c in conversations]
    questions = [question for question, *_ in unpacked]
    in_word = sum(letter in word for _, word, letter, _ in unpacked) / len(unpacked)
    assert 0.8 < in_word < 0.99  # usually a letter of the word, sometimes any letter
    assert any(re.search("[\u4e00-\u9fff]", q) for q in questions)  # Chinese
    assert any(q.startswith("¿") for q in questions)  # Spanish
    assert any("lettre" in q or " dans " in q for q in questions)  # French
    assert any("Buchstabe" in q or "Wie " in q for q in questions)  # German
    assert any("many" in q for q in questions)  # English
    assert len({q.split()[0] for q in questions}) > 10
    for quote in ("'", '"', "“"):
        assert any(quote in q for q in questions)
    shouted = [
        q
        for q, _, letter, _ in unpacked
        if re.search(rf"(?<![A-Za-z]){letter.upper()}(?![A-Za-z])", q)
    ]
    assert 0 < len(shouted) < len(questions)  # the letter is sometimes asked in capitals


def test_any_index_is_reproducible_alone(word_file):
    everything = list(SpellingBee(size=200, word_list=word_file))
    for index in (0, 1, 57, 199):
        alone = SpellingBee(size=200, word_list=word_file)
        assert alone[index] == everything[index]
        assert SpellingBee(size=200, word_list=word_file, start=index)[0] == everything[index]
    assert list(SpellingBee(size=200, word_list=word_file)) == everything


def test_each_thread_builds_the_same_examples(word_file):
    task = SpellingBee(size=300, word_list=word_file)
    expected = [task[i] for i in range(300)]
    built = {}

    def build(first: int) -> None:
        built[first] = [task[i] for i in range(first, 300, 3)]

    threads = [threading.Thread(target=build, args=(first,)) for first in range(3)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, in the middle of examples
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert [built[i % 3][i // 3] for i in range(300)] == expected


def test_train_and_test_differ(word_file):
    train = list(SpellingBee(size=50, split="train", word_list=word_file))
    test = list(SpellingBee(size=50, split="test", word_list=word_file))
    assert sum(a == b for a, b in zip(train, test, strict=True)) < 5
    assert unpack(test[0])[1] == random.Random(10_000_000).choice(WORDS)


def test_size_slicing_and_out_of_range(word_file):
    task = SpellingBee(size=37, word_list=word_file)
    assert len(task) == 37
    assert len(SpellingBee(size=37, word_list=word_file, start=30)) == 7
    with pytest.raises(IndexError, match="37 examples"):
        task[37]


def test_word_list_is_read_once(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("apple\nlemon\n")
    task = SpellingBee(word_list=str(path))
    first = task[0]
    path.unlink()
    assert task[0] == first and task[1]


def test_spellingbee_evaluate(word_file):
    task = SpellingBee(size=20, word_list=word_file)
    for conversation in task:
        count = int(unpack(conversation)[3][2]["text"])
        assert task.evaluate(conversation, f"Let me count.\n\n#### {count}")
        assert task.evaluate(conversation, f"#### {count} letters")
        assert not task.evaluate(conversation, f"#### {count + 1}")
        assert not task.evaluate(conversation, str(count))  # no final-answer marker


def test_simplespelling_conversations(word_file):
    shuffled = list(WORDS)
    random.Random(42).shuffle(shuffled)
    for split in ("train", "test"):
        task = SimpleSpelling(size=100, split=split, word_list=word_file)
        for index, conversation in enumerate(task):
            word = random.Random(seed_of(index, split)).choice(shuffled)
            assert conversation == {
                "messages": [
                    {"role": "user", "content": f"Spell the word: {word}"},
                    {"role": "assistant", "content": f"{word}:{','.join(word)}"},
                ]
            }
            assert check_messages(conversation["messages"]) == []
    assert SimpleSpelling(word_list=word_file)[3]["messages"][1]["content"] == (
        f"{random.Random(3).choice(shuffled)}:" + ",".join(random.Random(3).choice(shuffled))
    )


def test_simplespelling_evaluate(word_file):
    task = SimpleSpelling(word_list=word_file)
    conversation = next(c for c in task if len(c["messages"][0]["content"]) > 20)  # a long word
    reference = conversation["messages"][1]["content"]
    assert task.evaluate(conversation, f"  {reference}\n")
    assert not task.evaluate(conversation, reference.replace(",", ", "))
    assert not task.evaluate(conversation, reference + ",s")


def test_bad_requests_are_clear_errors(tmp_path, word_file):
    with pytest.raises(UsageError, match="not found"):
        _ = SpellingBee(word_list=str(tmp_path / "nope.txt")).words
    (tmp_path / "blank.txt").write_text("\n  \n\n")
    with pytest.raises(InvalidData, match="holds no words"):
        _ = SimpleSpelling(word_list=str(tmp_path / "blank.txt")).words
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(InvalidData, match="not valid UTF-8"):
        _ = SpellingBee(word_list=str(tmp_path / "latin1.txt")).words
    with pytest.raises(UsageError, match="size must be"):
        SpellingBee(size=-1, word_list=word_file)
    with pytest.raises(UsageError, match="Valid splits: train, test"):
        SpellingBee(split="validation", word_list=word_file)


def test_cli_show_renders_the_tool_call(word_file):
    result = runner.invoke(app, ["show", "spellingbee", "-p", f"word_list={word_file}", "-n", "2"])
    assert result.exit_code == 0, result.output
    assert "spellingbee / train" in result.output
    assert "example 0 of 1000" in result.output and "example 1 of 1000" in result.output
    assert "python ▶" in result.output and "output ◀" in result.output
    assert "#### " in result.output


def test_cli_json_matches_the_library(word_file):
    args = ["show", "spellingbee", "-p", f"word_list={word_file}", "-p", "size=50"]
    result = runner.invoke(app, [*args, "--split", "test", "--index", "47", "-n", "5", "--json"])
    assert result.exit_code == 0, result.output
    shown = [json.loads(line) for line in result.stdout.splitlines()]
    task = SpellingBee(size=50, split="test", word_list=word_file)
    assert shown == [{**task[i], "index": i} for i in (47, 48, 49)]
    # Fewer rows than asked for: a note on stderr says so, and why.
    assert "showing 3 of 5: spellingbee / test has 50 examples." in result.stderr

    simple = runner.invoke(
        app, ["show", "simplespelling", "-p", f"word_list={word_file}", "--json", "-i", "9"]
    )
    assert simple.exit_code == 0, simple.output
    assert json.loads(simple.output) == {**SimpleSpelling(word_list=word_file)[9], "index": 9}


def test_cli_errors_exit_codes(tmp_path, word_file):
    missing = runner.invoke(app, ["show", "spellingbee", "-p", f"word_list={tmp_path}/no.txt"])
    assert missing.exit_code == 2
    assert "not found" in missing.output and "Traceback" not in missing.output

    (tmp_path / "blank.txt").write_text("\n")
    blank = runner.invoke(app, ["show", "spellingbee", "-p", f"word_list={tmp_path}/blank.txt"])
    assert blank.exit_code == 1 and "holds no words" in blank.output

    for bad in ("size=-5", "size=many"):
        result = runner.invoke(
            app, ["show", "spellingbee", "-p", bad, "-p", f"word_list={word_file}"]
        )
        assert result.exit_code == 2 and "size" in result.output

    split = runner.invoke(app, ["show", "simplespelling", "--split", "dev"])
    assert split.exit_code == 2 and "train, test" in split.output


def test_bundled_word_list_previews_offline(monkeypatch):
    words = (REPO / "examples" / "words.txt").read_text().splitlines()
    assert 300 <= len(words) <= 2000
    assert all(re.fullmatch("[a-z]+", word) for word in words)
    assert len(set(words)) == len(words)

    monkeypatch.chdir(REPO)  # the README's command, with its relative path
    result = runner.invoke(app, ["show", "spellingbee", "-p", "word_list=examples/words.txt"])
    assert result.exit_code == 0, result.output
    assert "#### " in result.output
