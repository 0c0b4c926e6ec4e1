"""SmolTalk (smol): everyday chat conversations for supervised fine-tuning of small models.

A row of `HuggingFaceTB/smol-smoltalk` (one config, files under ``data/``, splits train/test)::

    {"messages": [{"content": "You are a helpful assistant.", "role": "system"},
                  {"content": "Name a fruit that is yellow.", "role": "user"},
                  {"content": "A banana.", "role": "assistant"}],
     "source": "smol-magpie-ultra"}

The conversation is the row's messages (role first), checked against the conversation rules of
`taskcli.conversation`: a row that breaks one is an error naming the row, never silently dropped
(`HubChatTask`).
"""

from __future__ import annotations

from taskcli.tasks.hub import HubChatTask


class SmolTalk(HubChatTask):
    name = "smoltalk"
    description = "General chat conversations for SFT of small models (smol-smoltalk)."
    repo = dataset = "HuggingFaceTB/smol-smoltalk"
    splits = ("train", "test")
    default_split = "train"
