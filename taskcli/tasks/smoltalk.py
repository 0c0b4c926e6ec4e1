"""SmolTalk (smol): everyday chat conversations for supervised fine-tuning of small models.

A row of `HuggingFaceTB/smol-smoltalk` (one config, files under ``data/``, splits train/test)::

    {"messages": [{"content": "You are a helpful assistant.", "role": "system"},
                  {"content": "Name a fruit that is yellow.", "role": "user"},
                  {"content": "A banana.", "role": "assistant"}],
     "source": "smol-magpie-ultra"}

The conversation is the row's messages (role first), checked against the conversation rules of
`taskcli.conversation`: a row that breaks one is an error naming the row, never silently dropped.
"""

from __future__ import annotations

from typing import Any

from taskcli.conversation import check_messages, first_error
from taskcli.errors import InvalidData
from taskcli.tasks.common import Conversation
from taskcli.tasks.hub import HubTask


class SmolTalk(HubTask):
    name = "smoltalk"
    description = "General chat conversations for SFT of small models (smol-smoltalk)."
    repo = dataset = "HuggingFaceTB/smol-smoltalk"
    splits = ("train", "test")
    default_split = "train"
    checks_messages = True  # row_to_conversation raises on the first broken rule
    messages_column = "messages"

    def row_to_conversation(self, row: dict[str, Any]) -> Conversation:
        try:
            messages = [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
        except (TypeError, KeyError):  # not a list of full messages: the rules say what is wrong
            messages = row["messages"]
        error = first_error(check_messages(messages))
        if error is not None:
            where = f" (at {error.path})" if error.path else ""
            raise InvalidData(f"[{error.rule}] {error.message}{where}")
        return {"messages": messages}
