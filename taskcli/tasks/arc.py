"""ARC, the AI2 Reasoning Challenge: grade-school science questions with three to five choices.

A row of `allenai/ai2_arc` (subsets ARC-Easy and ARC-Challenge)::

    {"id": "ARC-0001", "question": "Which gas do plants take in from the air to make food?",
     "choices": {"text": ["oxygen", "carbon dioxide", "nitrogen", "helium"],
                 "label": ["A", "B", "C", "D"]},
     "answerKey": "B"}

becomes a multiple-choice prompt (`multiple_choice_prompt`) answered by the label of the right
choice. Some rows are labelled "1".."4" instead of letters; the labels are kept as they are, in
metadata `letters`.
The row's `id` is kept too, so answers may name a question by it (`taskcli eval arc` takes
``{"id": "ARC-0001", "completion": "B"}`` as well as an index).
"""

from __future__ import annotations

from typing import Any

from taskcli.tasks.capabilities import ExampleIds
from taskcli.tasks.common import Conversation, multiple_choice_prompt
from taskcli.tasks.hub import MultipleChoiceTask


class ARC(MultipleChoiceTask, ExampleIds):
    name = "arc"
    description = "Grade-school science multiple-choice questions (AI2 Reasoning Challenge)."
    repo = dataset = "allenai/ai2_arc"
    subsets = ("ARC-Easy", "ARC-Challenge")
    splits = ("train", "validation", "test")
    default_subset = "ARC-Easy"
    default_split = "test"
    answer_id = "id"

    def row_to_conversation(self, row: dict[str, Any]) -> Conversation:
        letters = list(row["choices"]["label"])
        user = multiple_choice_prompt(row["question"], letters, row["choices"]["text"])
        return {
            "messages": [
                {"role": "user", "content": user},
                {"role": "assistant", "content": row["answerKey"]},
            ],
            "letters": letters,
            "id": row["id"],
        }
