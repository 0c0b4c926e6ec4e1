"""MMLU: four-choice questions on 57 subjects, from elementary mathematics to professional law.

A row of `cais/mmlu`::

    {"question": "What is the derivative of x**3?", "subject": "college_mathematics",
     "choices": ["x**2", "3*x**2", "3*x", "x**3 / 3"], "answer": 1}

becomes a multiple-choice prompt (`multiple_choice_prompt`) with letters A-D, answered by the letter
of `answer`. Subsets: `all` (every subject, plus the `auxiliary_train` split), each subject alone,
and `auxiliary_train`, whose rows are wrapped in a single struct column ``train``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from taskcli.errors import InvalidData
from taskcli.tasks.common import Conversation, multiple_choice_prompt
from taskcli.tasks.hub import MultipleChoiceTask

LETTERS = ("A", "B", "C", "D")

SUBJECTS = (
    "abstract_algebra",
    "anatomy",
    "astronomy",
    "business_ethics",
    "clinical_knowledge",
    "college_biology",
    "college_chemistry",
    "college_computer_science",
    "college_mathematics",
    "college_medicine",
    "college_physics",
    "computer_security",
    "conceptual_physics",
    "econometrics",
    "electrical_engineering",
    "elementary_mathematics",
    "formal_logic",
    "global_facts",
    "high_school_biology",
    "high_school_chemistry",
    "high_school_computer_science",
    "high_school_european_history",
    "high_school_geography",
    "high_school_government_and_politics",
    "high_school_macroeconomics",
    "high_school_mathematics",
    "high_school_microeconomics",
    "high_school_physics",
    "high_school_psychology",
    "high_school_statistics",
    "high_school_us_history",
    "high_school_world_history",
    "human_aging",
    "human_sexuality",
    "international_law",
    "jurisprudence",
    "logical_fallacies",
    "machine_learning",
    "management",
    "marketing",
    "medical_genetics",
    "miscellaneous",
    "moral_disputes",
    "moral_scenarios",
    "nutrition",
    "philosophy",
    "prehistory",
    "professional_accounting",
    "professional_law",
    "professional_medicine",
    "professional_psychology",
    "public_relations",
    "security_studies",
    "sociology",
    "us_foreign_policy",
    "virology",
    "world_religions",
)

EVAL_SPLITS = ("test", "validation", "dev")


class MMLU(MultipleChoiceTask):
    name = "mmlu"
    description = "Four-choice questions on 57 subjects (Massive Multitask Language Understanding)."
    repo = dataset = "cais/mmlu"
    subsets = ("all", "auxiliary_train", *SUBJECTS)
    splits: ClassVar[dict[str, tuple[str, ...]]] = {
        "all": (*EVAL_SPLITS, "auxiliary_train"),
        "auxiliary_train": ("train",),
        **dict.fromkeys(SUBJECTS, EVAL_SPLITS),
    }
    default_subset = "all"
    default_split = "test"

    def row_to_conversation(self, row: dict[str, Any]) -> Conversation:
        if "train" in row and "question" not in row:
            row = row["train"]  # the auxiliary_train config wraps each row in a struct
        choices = row["choices"]
        if len(choices) != len(LETTERS) or row["answer"] not in range(len(LETTERS)):
            raise InvalidData(
                f"expected 4 choices and an answer 0-3, got {len(choices)} choices "
                f"and answer {row['answer']!r}"
            )
        user = multiple_choice_prompt(row["question"], LETTERS, choices)
        return {
            "messages": [
                {"role": "user", "content": user},
                {"role": "assistant", "content": LETTERS[row["answer"]]},
            ],
            "subject": row["subject"],
            "letters": list(LETTERS),
        }
