"""GSM8K: grade-school math word problems whose worked answers use a calculator.

A row of `openai/gsm8k` (subsets `main` and `socratic`)::

    {"question": "Ann buys 3 boxes of 12 pencils and gives away 10. How many are left?",
     "answer": "She buys 3*12=<<3*12=36>>36 pencils.\\n36-10=<<36-10=26>>26 are left.\\n#### 26"}

The answer becomes a list of parts: the text between calculator calls as ``text`` parts (empty
ones included, so the answer flattens back to its exact original), and each ``<<expr=result>>``
as a ``python`` part (expr, split at the last '=') followed by a ``python_output`` part (result,
empty when there is no '='). A response is correct when its number after ``#### `` matches.
"""

from __future__ import annotations

import re
from typing import Any

from taskcli.conversation import flatten_content
from taskcli.tasks.common import Conversation, extract_answer
from taskcli.tasks.hub import HubTask

CALCULATOR_CALL = re.compile(r"<<(.*?)>>", re.DOTALL)


def answer_parts(answer: str) -> list[dict[str, str]]:
    """A GSM8K answer as text, python and python_output parts."""
    parts = []
    for position, piece in enumerate(CALCULATOR_CALL.split(answer)):
        if position % 2 == 0:  # split() alternates: text, call, text, call, ..., text
            parts.append({"type": "text", "text": piece})
            continue
        expression, equals, result = piece.rpartition("=")
        if not equals:
            expression, result = piece, ""
        parts.append({"type": "python", "text": expression})
        parts.append({"type": "python_output", "text": result})
    return parts


class GSM8K(HubTask):
    name = "gsm8k"
    description = "Grade-school math word problems with calculator calls in the worked answers."
    repo = dataset = "openai/gsm8k"
    eval_type = "generative"
    subsets = ("main", "socratic")
    splits = ("train", "test")
    default_subset = "main"
    default_split = "test"

    def row_to_conversation(self, row: dict[str, Any]) -> Conversation:
        return {
            "messages": [
                {"role": "user", "content": row["question"]},
                {"role": "assistant", "content": answer_parts(row["answer"])},
            ]
        }

    def evaluate(self, conversation: Conversation, response: str) -> bool:
        """Whether the response's number after '#### ' equals the reference's."""
        reference = extract_answer(flatten_content(conversation["messages"][-1]["content"]))
        return reference is not None and extract_answer(response) == reference
