"""The Task base class: slicing, indexing, mixtures, sequences, and the multiple-choice prompt."""

import random

import pytest

from taskcli.tasks import Task, TaskMixture, TaskSequence, multiple_choice_prompt


class Numbers(Task):
    """`size` examples; example i is {"messages": [], "n": i, "tag": tag}."""

    def __init__(self, size: int, tag: str = "n", **slice_args):
        super().__init__(**slice_args)
        self.size, self.tag = size, tag
        self.batch_calls = 0

    def num_examples(self):
        return self.size

    def get_example(self, index):
        return {"messages": [], "n": index, "tag": self.tag}

    def get_examples(self, indices):
        self.batch_calls += 1
        return [self.get_example(i) for i in indices]


@pytest.mark.parametrize(
    ("start", "stop", "step"),
    [(0, None, 1), (3, None, 1), (0, 10, 3), (2, 9, 2), (5, 5, 1), (0, 100, 7), (4, None, 5)],
)
def test_slice_length_and_items_match_python_slicing(start, stop, step):
    task = Numbers(20, start=start, stop=stop, step=step)
    expected = list(range(20))[start:stop:step]
    assert len(task) == len(expected)
    assert [c["n"] for c in task] == expected
    assert [task[i]["n"] for i in range(len(task))] == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": -1}, "start must be >= 0"),
        ({"start": 5, "stop": 2}, "stop must be an integer >= start"),
        ({"step": 0}, "step must be >= 1"),
        ({"step": 1.5}, "step must be an integer"),
    ],
)
def test_invalid_slices_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Numbers(10, **kwargs)


def test_out_of_range_index_names_the_size():
    task = Numbers(10, stop=4)
    assert task[-1]["n"] == 3
    with pytest.raises(IndexError, match="the task has 4 examples"):
        task[4]
    with pytest.raises(IndexError):
        task[-5]


def test_batch_reads_a_slice_in_one_call():
    task = Numbers(50, start=10, step=3)
    got = task.batch(2, 6)
    assert [c["n"] for c in got] == [16, 19, 22, 25]
    assert task.batch_calls == 1


def nanochat_mixture_order(sizes, seed):
    """The order as nanochat builds it: (task, local) tuples task by task, shuffled once."""
    pairs = [(t, i) for t, size in enumerate(sizes) for i in range(size)]
    random.Random(seed).shuffle(pairs)
    return pairs


@pytest.mark.parametrize("seed", [42, 0, 7])
def test_mixture_order_matches_nanochat(seed):
    tasks = [Numbers(13, "a"), Numbers(5, "b"), Numbers(8, "c", start=2, step=2)]
    mixture = TaskMixture(tasks, seed=seed)
    expected = nanochat_mixture_order([len(t) for t in tasks], seed)
    assert len(mixture) == len(expected)
    assert "order" not in vars(mixture)  # shuffled on first use: a dry run never waits for it
    got = [(c["tag"], c["n"]) for c in mixture]
    assert got == [("abc"[t], tasks[t][i]["n"]) for t, i in expected]


def test_mixture_oversamples_a_task_passed_twice():
    a = Numbers(4, "a")
    mixture = TaskMixture([a, a, Numbers(2, "b")])
    tags = [c["tag"] for c in mixture]
    assert tags.count("a") == 8 and tags.count("b") == 2
    assert sorted(c["n"] for c in mixture if c["tag"] == "a") == [0, 0, 1, 1, 2, 2, 3, 3]


def test_mixture_batches_reads_per_task():
    tasks = [Numbers(300, "a"), Numbers(200, "b")]
    mixture = TaskMixture(tasks)
    rows = mixture.batch(0, len(mixture))
    assert rows == [mixture[i] for i in range(len(mixture))]
    assert tasks[0].batch_calls == 1 and tasks[1].batch_calls == 1


def test_mixture_is_sliceable_like_any_task():
    mixture = TaskMixture([Numbers(6, "a"), Numbers(6, "b")], seed=3)
    whole = list(mixture)
    part = TaskMixture([Numbers(6, "a"), Numbers(6, "b")], seed=3, start=2, stop=10, step=3)
    assert list(part) == whole[2:10:3]


def test_sequence_concatenates_in_order():
    sequence = TaskSequence([Numbers(3, "a"), Numbers(7, "b", start=5)])
    assert [(c["tag"], c["n"]) for c in sequence] == [
        ("a", 0),
        ("a", 1),
        ("a", 2),
        ("b", 5),
        ("b", 6),
    ]
    assert sequence.locate(3) == (1, 0)


def test_multiple_choice_prompt_exact_layout():
    text = multiple_choice_prompt("What is 2+2?", ["A", "B", "C"], ["3", "4", "five"])
    assert text == (
        "Multiple Choice question: What is 2+2?\n"
        "- 3=A\n"
        "- 4=B\n"
        "- five=C\n"
        "\nRespond only with the letter of the correct answer."
    )


def test_multiple_choice_prompt_rejects_mismatched_letters():
    with pytest.raises(ValueError):
        multiple_choice_prompt("q", "AB", ["x", "y", "z"])


def test_a_slice_of_a_task_is_a_task_over_the_same_examples():
    task = Numbers(50, start=2, stop=40)
    part = task[3:20:4]
    assert isinstance(part, Numbers) and part is not task
    assert len(part) == len(range(38)[3:20:4])
    assert list(part) == [task[i] for i in range(3, 20, 4)]
    assert list(part[1:]) == list(part)[1:]
    assert len(task[30:10]) == 0 and len(task[100:]) == 0
    with pytest.raises(ValueError, match="step forward"):
        task[::-1]
