"""Small local copies of the Hub datasets, in their real layouts and schemas, for tests.

Tests import it directly (pytest puts tests/ on sys.path)::

    from hubdata import write_arc

    def test_something(tmp_path):
        written = write_arc(tmp_path)                      # tmp_path/allenai/ai2_arc/...
        task = ARC(subset="ARC-Easy", split="test", data_dir=tmp_path)
        rows = written["ARC-Easy"]["test"]                 # the rows as written, in file order
        assert task[0] == ...                              # compute it from rows[perm[0]]

Each writer lays out DIR/REPO as ``hf download REPO --repo-type dataset --local-dir DIR/REPO``
leaves it: a README.md whose YAML front matter holds the repository's ``configs:`` block, and
parquet shards ``CONFIG/SPLIT-00000-of-00001.parquet`` (``data/...`` for single-config
repositories) written by pyarrow with the real column types. Each returns ``{config: {split:
rows}}``. Options shared by all writers:

- ``rows_per_split``: how many rows each split gets (rows are realistic, distinct, deterministic);
- ``files_per_split``: shards per split; ``rows_per_group``: parquet row-group size (small by
  default, so reads cross row groups);
- ``readme=False``: leave the README out (the layout taskcli must find without it);
- ``revision``: also write the download notes ``hf download`` leaves, naming that commit.

`write_all(DIR)` writes all five datasets; `write_repo` writes any rows in the same layout.
`write_nanochat_split` writes rows as nanochat's own task cache keeps them
(``DIR/OWNER--NAME/SUBSET/SPLIT/NNNNN.parquet`` and a ``manifest.json`` listing the shards).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

Rows = list[dict[str, Any]]
Written = dict[str, dict[str, Rows]]

STRING_LIST = pa.list_(pa.string())
ARC_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("question", pa.string()),
        ("choices", pa.struct([("text", STRING_LIST), ("label", STRING_LIST)])),
        ("answerKey", pa.string()),
    ]
)
MMLU_SCHEMA = pa.schema(
    [
        ("question", pa.string()),
        ("subject", pa.string()),
        ("choices", STRING_LIST),
        ("answer", pa.int64()),
    ]
)
MMLU_AUX_SCHEMA = pa.schema(
    [
        (
            "train",
            pa.struct(
                [
                    ("answer", pa.int64()),
                    ("choices", STRING_LIST),
                    ("question", pa.string()),
                    ("subject", pa.string()),
                ]
            ),
        )
    ]
)
GSM8K_SCHEMA = pa.schema([("question", pa.string()), ("answer", pa.string())])
HUMANEVAL_SCHEMA = pa.schema(
    [
        ("task_id", pa.string()),
        ("prompt", pa.string()),
        ("canonical_solution", pa.string()),
        ("test", pa.string()),
        ("entry_point", pa.string()),
    ]
)
SMOLTALK_SCHEMA = pa.schema(
    [
        ("messages", pa.list_(pa.struct([("content", pa.string()), ("role", pa.string())]))),
        ("source", pa.string()),
    ]
)


def write_repo(
    data_dir: str | Path,
    repo: str,
    configs: dict[str, dict[str, Rows]],
    schemas: dict[str, pa.Schema],
    *,
    folders: dict[str, str] | None = None,
    readme: bool = True,
    files_per_split: int = 1,
    rows_per_group: int = 4,
    revision: str | None = None,
) -> Path:
    """Write ``{config: {split: rows}}`` as DIR/REPO in the Hub layout; return DIR/REPO.

    `folders` maps a config to the folder of its files (default: the config's own name).
    """
    repo_dir = Path(data_dir) / repo
    repo_dir.mkdir(parents=True, exist_ok=True)
    card: list[dict[str, Any]] = []
    written_files: list[Path] = []
    for config, splits in configs.items():
        folder = (folders or {}).get(config, config)
        card.append(
            {
                "config_name": config,
                "data_files": [{"split": split, "path": f"{folder}/{split}-*"} for split in splits],
            }
        )
        (repo_dir / folder).mkdir(parents=True, exist_ok=True)
        for split, rows in splits.items():
            shards = max(1, min(files_per_split, len(rows)))
            bounds = [len(rows) * k // shards for k in range(shards + 1)]
            for k in range(shards):
                path = repo_dir / folder / f"{split}-{k:05d}-of-{shards:05d}.parquet"
                table = pa.Table.from_pylist(
                    rows[bounds[k] : bounds[k + 1]], schema=schemas[config]
                )
                pq.write_table(table, path, row_group_size=rows_per_group)
                written_files.append(path)
    if readme:
        front = yaml.safe_dump({"configs": card}, sort_keys=False)
        (repo_dir / "README.md").write_text(
            f"---\n{front}---\n\n# {repo}\n\nA small copy for tests.\n", encoding="utf-8"
        )
        written_files.append(repo_dir / "README.md")
    if revision is not None:
        notes = repo_dir / ".cache" / "huggingface" / "download"
        for path in written_files:
            note = notes / (path.relative_to(repo_dir).as_posix() + ".metadata")
            note.parent.mkdir(parents=True, exist_ok=True)
            note.write_text(f"{revision}\n{'0' * 40}\n1712656091.123\n", encoding="utf-8")
    return repo_dir


def _variant(text: str, number: int, base_count: int) -> str:
    """The text itself the first time round, then visibly numbered variants (rows stay distinct)."""
    return text if number < base_count else f"{text} (variant {number // base_count})"


# --- ARC -----------------------------------------------------------------------------------------

ARC_QUESTIONS = [
    (
        "Which gas do plants take in from the air to make their food?",
        ["oxygen", "carbon dioxide", "nitrogen", "helium"],
        1,
    ),
    (
        "A student pushes a box across a rough floor. Which force slows the box down?",
        ["gravity", "magnetism", "friction", "buoyancy"],
        2,
    ),
    ("Which of these is a renewable source of energy?", ["coal", "natural gas", "wind", "oil"], 2),
    (
        "What happens to water when it freezes?",
        ["It expands.", "It turns into a gas.", "It loses mass.", "It becomes denser."],
        0,
    ),
    (
        "Which organ pumps blood through the human body?",
        ["the lungs", "the heart", "the liver", "the stomach"],
        1,
    ),
    (
        "Which tool is best for measuring the mass of a rock?",
        ["a balance", "a thermometer", "a ruler", "a graduated cylinder"],
        0,
    ),
    (
        "Why does the Moon appear to change shape during a month?",
        [
            "Clouds cover part of it.",
            "Earth's shadow moves across it.",
            "We see different parts of its sunlit half.",
            "It shrinks and grows.",
        ],
        2,
    ),
    (
        "Which layer of Earth is made of liquid metal?",
        ["the crust", "the mantle", "the outer core", "the inner core"],
        2,
    ),
    (
        "A seed is planted in dark, moist soil. What does it need first to germinate?",
        ["sunlight", "water", "fertilizer", "wind"],
        1,
    ),
    (
        "Which property of a mineral is tested by scratching it on a porcelain plate?",
        ["luster", "streak", "hardness", "cleavage"],
        1,
    ),
    (
        "What is the main job of the roots of a plant?",
        ["to make seeds", "to take in water", "to catch sunlight", "to attract insects"],
        1,
    ),
    (
        "Sound travels fastest through which of these?",
        ["air", "a vacuum", "steel", "water vapor"],
        2,
    ),
]
ARC_EXTRA_CHOICE = "none of these"


def arc_row(subset: str, split: str, number: int) -> dict[str, Any]:
    """A realistic ARC row: mostly A-D labels, some "1".."4", some with three or five choices."""
    question, texts, answer = ARC_QUESTIONS[number % len(ARC_QUESTIONS)]
    texts = list(texts)
    if number % 7 == 3:  # three choices: drop a wrong one
        drop = (answer + 1) % len(texts)
        texts.pop(drop)
        answer -= drop < answer
    elif number % 11 == 5:  # five choices
        texts.append(ARC_EXTRA_CHOICE)
    labels = (
        [str(k + 1) for k in range(len(texts))]
        if number % 5 == 2
        else ["ABCDE"[k] for k in range(len(texts))]
    )
    return {
        "id": f"{subset}-{split}-{number:04d}",
        "question": _variant(question, number, len(ARC_QUESTIONS)),
        "choices": {"text": texts, "label": labels},
        "answerKey": labels[answer],
    }


def write_arc(data_dir: str | Path, rows_per_split: int = 20, **layout: Any) -> Written:
    """allenai/ai2_arc: subsets ARC-Challenge and ARC-Easy, splits train/test/validation."""
    configs = {
        subset: {
            split: [arc_row(subset, split, n) for n in range(rows_per_split)]
            for split in ("train", "test", "validation")
        }
        for subset in ("ARC-Challenge", "ARC-Easy")
    }
    write_repo(data_dir, "allenai/ai2_arc", configs, dict.fromkeys(configs, ARC_SCHEMA), **layout)
    return configs


# --- MMLU ----------------------------------------------------------------------------------------

MMLU_QUESTIONS = {
    "abstract_algebra": [
        (
            "Find the order of the element 3 in the group Z_7 under multiplication.",
            ["2", "3", "6", "7"],
            2,
        ),
        ("How many elements does the symmetric group S_3 have?", ["3", "6", "9", "12"], 1),
    ],
    "college_mathematics": [
        (
            "What is the derivative of x**3 with respect to x?",
            ["x**2", "3*x**2", "3*x", "x**3 / 3"],
            1,
        ),
        (
            "What is the sum of the interior angles of a hexagon, in degrees?",
            ["540", "620", "720", "900"],
            2,
        ),
    ],
    "high_school_geography": [
        (
            "Which river flows through Cairo?",
            ["the Niger", "the Congo", "the Nile", "the Zambezi"],
            2,
        ),
        (
            "What is the largest ocean on Earth?",
            ["the Atlantic", "the Indian", "the Arctic", "the Pacific"],
            3,
        ),
    ],
    "world_religions": [
        ("In which city is the Kaaba located?", ["Medina", "Mecca", "Jerusalem", "Baghdad"], 1),
        ("How many pillars of Islam are there?", ["three", "four", "five", "six"], 2),
    ],
}
MMLU_AUX_QUESTIONS = [
    (
        "A farmer has 12 cows and buys 5 more. How many cows does he have?",
        ["15", "16", "17", "18"],
        2,
    ),
    ("Which word means the opposite of 'ancient'?", ["old", "modern", "historic", "aged"], 1),
    ("What is the boiling point of water at sea level, in Celsius?", ["90", "95", "100", "110"], 2),
]


def mmlu_row(subject: str, split: str, number: int) -> dict[str, Any]:
    question, choices, answer = MMLU_QUESTIONS[subject][number % len(MMLU_QUESTIONS[subject])]
    variant = _variant(question, number, len(MMLU_QUESTIONS[subject]))
    if split != "test":
        variant = f"[{split}] {variant}"
    return {"question": variant, "subject": subject, "choices": choices, "answer": answer}


def mmlu_aux_row(number: int) -> dict[str, Any]:
    question, choices, answer = MMLU_AUX_QUESTIONS[number % len(MMLU_AUX_QUESTIONS)]
    return {
        "question": _variant(question, number, len(MMLU_AUX_QUESTIONS)),
        "subject": "",
        "choices": choices,
        "answer": answer,
    }


def write_mmlu(
    data_dir: str | Path,
    rows_per_split: int = 5,
    subjects: tuple[str, ...] = tuple(MMLU_QUESTIONS),
    **layout: Any,
) -> Written:
    """cais/mmlu: `all`, `auxiliary_train` and one config per subject.

    Each subject split gets `rows_per_split` rows; `all` holds every subject's rows (subject
    order) plus the split `auxiliary_train`, whose rows the `auxiliary_train` config holds
    wrapped in a struct column ``train``.
    """
    eval_splits = ("test", "validation", "dev")
    per_subject = {
        subject: {
            split: [mmlu_row(subject, split, n) for n in range(rows_per_split)]
            for split in eval_splits
        }
        for subject in subjects
    }
    auxiliary = [mmlu_aux_row(n) for n in range(2 * rows_per_split)]
    configs: Written = {
        "all": {
            **{
                split: [row for subject in subjects for row in per_subject[subject][split]]
                for split in eval_splits
            },
            "auxiliary_train": auxiliary,
        },
        "auxiliary_train": {"train": [{"train": row} for row in auxiliary]},
        **per_subject,
    }
    schemas = {**dict.fromkeys(configs, MMLU_SCHEMA), "auxiliary_train": MMLU_AUX_SCHEMA}
    write_repo(data_dir, "cais/mmlu", configs, schemas, **layout)
    return configs


# --- GSM8K ---------------------------------------------------------------------------------------


def gsm8k_row(number: int, socratic: bool) -> dict[str, str]:
    """A word problem whose answer has calculator calls and ends with '#### N'.

    Numbers come from a generator seeded with `number`, so every row is distinct and correct.
    One kind of problem has a call without '=' (as a few real GSM8K answers do).
    """
    rng = random.Random(number)
    a, b, c = rng.randint(3, 40), rng.randint(2, 12), rng.randint(2, 9)
    kind = number % 5
    if kind == 0:
        question = (
            f"Mia picks {a} apples on Monday and {b} times as many on Tuesday. "
            "How many apples does she pick in total?"
        )
        steps = [
            (
                "How many apples does Mia pick on Tuesday?",
                f"On Tuesday she picks {a}*{b}=<<{a}*{b}={a * b}>>{a * b} apples.",
            ),
            (
                "How many apples does she pick in total?",
                f"In total she picks {a}+{a * b}=<<{a}+{a * b}={a + a * b}>>{a + a * b} apples.",
            ),
        ]
        result = a + a * b
    elif kind == 1:
        price = a + 10
        question = (
            f"A book costs ${price}. Leo has a coupon for ${b} off and buys {c} copies. "
            "How much does he pay?"
        )
        steps = [
            (
                "How much does one copy cost with the coupon?",
                f"One copy costs {price}-{b}=<<{price}-{b}={price - b}>>{price - b} dollars.",
            ),
            (
                "How much does he pay for all the copies?",
                f"He pays {price - b}*{c}=<<{price - b}*{c}={(price - b) * c}>>"
                f"{(price - b) * c} dollars.",
            ),
        ]
        result = (price - b) * c
    elif kind == 2:
        total = a * c
        question = (
            f"A baker shares {total} cookies equally among {c} boxes. "
            "How many cookies go in each box?"
        )
        steps = [
            (
                "How many cookies go in each box?",
                f"Each box gets {total}/{c}=<<{total}/{c}={a}>>{a} cookies.",
            ),
        ]
        result = a
    elif kind == 3:
        question = (
            f"A train travels {a} miles every hour for {c} hours, then {b} more miles. "
            "How far does it travel?"
        )
        steps = [
            (
                "How far does it travel in the first part of the trip?",
                f"First it travels {a}*{c}=<<{a}*{c}={a * c}>>{a * c} miles.",
            ),
            (
                "How far does it travel in all?",
                f"Then {a * c}+{b}=<<{a * c}+{b}={a * c + b}>>{a * c + b} miles in all.",
            ),
        ]
        result = a * c + b
    else:
        question = f"Sam has {a} marbles and wins {b} more, then doubles them. How many now?"
        steps = [
            (
                "How many marbles does Sam have after winning?",
                f"After winning he has {a}+{b}=<<{a}+{b}>>{a + b} marbles.",
            ),
            (
                "How many marbles does he have after doubling?",
                f"Doubling gives 2*{a + b}=<<2*{a + b}={2 * (a + b)}>>{2 * (a + b)} marbles.",
            ),
        ]
        result = 2 * (a + b)
    lines = [f"{ask} ** {say}" if socratic else say for ask, say in steps]
    return {"question": question, "answer": "\n".join([*lines, f"#### {result}"])}


def write_gsm8k(data_dir: str | Path, rows_per_split: int = 20, **layout: Any) -> Written:
    """openai/gsm8k: subsets main and socratic, splits train/test."""
    configs = {
        subset: {
            split: [
                gsm8k_row(n + (1000 if split == "test" else 0), subset == "socratic")
                for n in range(rows_per_split)
            ]
            for split in ("train", "test")
        }
        for subset in ("main", "socratic")
    }
    write_repo(data_dir, "openai/gsm8k", configs, dict.fromkeys(configs, GSM8K_SCHEMA), **layout)
    return configs


# --- HumanEval -----------------------------------------------------------------------------------

HUMANEVAL_PROBLEMS = [
    (
        "from typing import List\n\n\ndef running_max(numbers: List[int]) -> List[int]:\n"
        '    """Return the largest value seen so far at each position of the list.\n'
        "    >>> running_max([1, 3, 2, 5])\n    [1, 3, 3, 5]\n"
        '    """\n',
        "    result = []\n    best = None\n    for n in numbers:\n"
        "        best = n if best is None else max(best, n)\n        result.append(best)\n"
        "    return result\n",
        "\n\ndef check(candidate):\n    assert candidate([]) == []\n"
        "    assert candidate([1, 3, 2, 5]) == [1, 3, 3, 5]\n"
        "    assert candidate([-2, -5, -1]) == [-2, -2, -1]\n",
        "running_max",
    ),
    (
        "\ndef is_palindrome(text: str) -> bool:\n"
        '    """Whether text reads the same backwards, ignoring case.\n'
        "    >>> is_palindrome('Level')\n    True\n"
        '    """\n',
        "    lowered = text.lower()\n    return lowered == lowered[::-1]\n",
        "\n\ndef check(candidate):\n    assert candidate('') is True\n"
        "    assert candidate('Level') is True\n    assert candidate('abc') is False\n",
        "is_palindrome",
    ),
    (
        "import math\n\n\ndef circle_area(radius: float) -> float:\n"
        '    """Area of a circle, rounded to two decimals.\n'
        "    >>> circle_area(1)\n    3.14\n"
        '    """\n',
        "    return round(math.pi * radius * radius, 2)\n",
        "\n\ndef check(candidate):\n    assert candidate(1) == 3.14\n"
        "    assert candidate(0) == 0\n    assert candidate(2) == 12.57\n",
        "circle_area",
    ),
    (
        "\ndef count_vowels(word: str) -> int:\n"
        '    """Number of vowels (a, e, i, o, u) in a lowercase word.\n'
        "    >>> count_vowels('banana')\n    3\n"
        '    """\n',
        "    return sum(1 for letter in word if letter in 'aeiou')\n",
        "\n\ndef check(candidate):\n    assert candidate('banana') == 3\n"
        "    assert candidate('rhythm') == 0\n    assert candidate('queue') == 4\n",
        "count_vowels",
    ),
    (
        "from typing import Dict, List\n\n\ndef word_lengths(words: List[str]) -> Dict[str, int]:\n"
        '    """Map each word to its length.\n'
        "    >>> word_lengths(['hi', 'there'])\n    {'hi': 2, 'there': 5}\n"
        '    """\n',
        "    return {word: len(word) for word in words}\n",
        "\n\ndef check(candidate):\n    assert candidate([]) == {}\n"
        "    assert candidate(['hi', 'there']) == {'hi': 2, 'there': 5}\n",
        "word_lengths",
    ),
    (
        "\ndef fizz(n: int) -> str:\n"
        "    \"\"\"'Fizz' for multiples of 3, 'Buzz' for multiples of 5, 'FizzBuzz' for both,\n"
        "    else the number itself as text.\n    >>> fizz(9)\n    'Fizz'\n"
        '    """\n',
        "    if n % 15 == 0:\n        return 'FizzBuzz'\n"
        "    if n % 3 == 0:\n        return 'Fizz'\n"
        "    if n % 5 == 0:\n        return 'Buzz'\n    return str(n)\n",
        "\n\ndef check(candidate):\n    assert candidate(9) == 'Fizz'\n"
        "    assert candidate(10) == 'Buzz'\n    assert candidate(30) == 'FizzBuzz'\n"
        "    assert candidate(7) == '7'\n",
        "fizz",
    ),
]


def write_humaneval(data_dir: str | Path, **layout: Any) -> Written:
    """openai/openai_humaneval: config openai_humaneval, split test; every solution passes."""
    rows = [
        {
            "task_id": f"HumanEval/{number}",
            "prompt": prompt,
            "canonical_solution": solution,
            "test": test,
            "entry_point": entry_point,
        }
        for number, (prompt, solution, test, entry_point) in enumerate(HUMANEVAL_PROBLEMS)
    ]
    configs = {"openai_humaneval": {"test": rows}}
    write_repo(
        data_dir,
        "openai/openai_humaneval",
        configs,
        {"openai_humaneval": HUMANEVAL_SCHEMA},
        **layout,
    )
    return configs


# --- SmolTalk ------------------------------------------------------------------------------------

SMOLTALK_CONVERSATIONS = [
    [
        ("user", "Name a fruit that is yellow when ripe."),
        ("assistant", "A banana is yellow when it is ripe."),
    ],
    [
        ("system", "You are a concise assistant."),
        ("user", "What is the capital of Canada?"),
        ("assistant", "Ottawa."),
    ],
    [
        ("user", "Can you suggest a name for a grey cat?"),
        ("assistant", "How about Smokey, Ash or Pebble?"),
        ("user", "Something more unusual, please."),
        ("assistant", "Try Nimbus, Graphite or Mistral."),
    ],
    [
        ("user", "Rewrite this more formally: 'gonna be late, sorry'"),
        ("assistant", "I apologise, but I will be arriving late."),
    ],
    [
        ("system", "You help people write Python."),
        ("user", "How do I reverse a list in Python?"),
        ("assistant", "Use `items[::-1]` for a reversed copy, or `items.reverse()` in place."),
    ],
    [
        ("user", "Summarise the water cycle in one sentence."),
        (
            "assistant",
            "Water evaporates, condenses into clouds, falls as precipitation and "
            "collects again in oceans, lakes and soil.",
        ),
    ],
    [
        ("user", "Is 17 a prime number?"),
        ("assistant", "Yes: 17 has no divisors other than 1 and itself."),
    ],
    [
        ("user", "Give me a synonym for 'happy'."),
        ("assistant", "Cheerful."),
        ("user", "And an antonym?"),
        ("assistant", "Sad."),
    ],
]
SMOLTALK_SOURCES = ["smol-magpie-ultra", "smol-rewrite", "everyday-conversations"]


def smoltalk_row(number: int) -> dict[str, Any]:
    turns = SMOLTALK_CONVERSATIONS[number % len(SMOLTALK_CONVERSATIONS)]
    messages = [{"content": text, "role": role} for role, text in turns]
    if number >= len(SMOLTALK_CONVERSATIONS):
        first_user = next(i for i, m in enumerate(messages) if m["role"] == "user")
        messages[first_user]["content"] = _variant(
            messages[first_user]["content"], number, len(SMOLTALK_CONVERSATIONS)
        )
    return {"messages": messages, "source": SMOLTALK_SOURCES[number % len(SMOLTALK_SOURCES)]}


def write_smoltalk(data_dir: str | Path, rows_per_split: int = 20, **layout: Any) -> Written:
    """HuggingFaceTB/smol-smoltalk: config default, files under data/, splits train/test."""
    configs = {
        "default": {
            "train": [smoltalk_row(n) for n in range(rows_per_split)],
            "test": [smoltalk_row(n + 1000) for n in range(rows_per_split)],
        }
    }
    write_repo(
        data_dir,
        "HuggingFaceTB/smol-smoltalk",
        configs,
        {"default": SMOLTALK_SCHEMA},
        folders={"default": "data"},
        **layout,
    )
    return configs


def write_all(data_dir: str | Path, **layout: Any) -> dict[str, Written]:
    """Every dataset the built-in Hub tasks read, by repository."""
    return {
        "allenai/ai2_arc": write_arc(data_dir, **layout),
        "cais/mmlu": write_mmlu(data_dir, **layout),
        "openai/gsm8k": write_gsm8k(data_dir, **layout),
        "openai/openai_humaneval": write_humaneval(data_dir, **layout),
        "HuggingFaceTB/smol-smoltalk": write_smoltalk(data_dir, **layout),
    }


def write_nanochat_split(
    task_data: str | Path,
    repo: str,
    config: str,
    split: str,
    rows: Rows,
    schema: pa.Schema,
    *,
    shards: int = 2,
    manifest: bool = True,
) -> Path:
    """`rows` as nanochat's task cache (commit 92d63d4) holds one split: numbered shards
    (the Hub's parquet export of it) and, written last, ``manifest.json``: the shard names in
    order. Returns the split's folder."""
    import json

    folder = Path(task_data) / repo.replace("/", "--") / config / split
    folder.mkdir(parents=True, exist_ok=True)
    shards = max(1, min(shards, len(rows)))
    bounds = [len(rows) * k // shards for k in range(shards + 1)]
    names = []
    for k in range(shards):
        name = f"{k:05d}.parquet"
        table = pa.Table.from_pylist(rows[bounds[k] : bounds[k + 1]], schema=schema)
        pq.write_table(table, folder / name, row_group_size=4)
        names.append(name)
    if manifest:
        (folder / "manifest.json").write_text(json.dumps(names))
    return folder
