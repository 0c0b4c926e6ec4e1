"""Write examples/chatml-model/: a Hugging Face model folder small enough to bundle, for trying
the chat-template training view offline (`taskcli show examples/identity.jsonl -t
examples/chatml-model`).

Nothing in it comes from a real model. The tokenizer is a byte-level BPE trained here with
Hugging Face ``tokenizers`` on the bundled examples' own text (so their words are few tokens),
with ChatML's special tokens; the template is ChatML as most Hub models write it, without
``{% generation %}`` blocks, so the ``assistant`` mask rule applies. Training is deterministic:
rerunning this script rewrites the same bytes (tests/test_docs.py checks it).

    python scripts/make_example_model.py [FOLDER]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "examples" / "chatml-model"
VOCAB_SIZE = 768
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# GPT-4's split pattern, with numbers in groups of at most two (as nanochat's).
SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]++[\r\n]*|"""
    r"""\s*[\r\n]|\s+(?!\S)|\s+"""
)
CHAT_TEMPLATE = """\
{%- for message in messages %}
{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] | trim + '<|im_end|>\\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""
CONFIG = {
    "tokenizer_class": "PreTrainedTokenizerFast",
    "bos_token": None,
    "eos_token": "<|im_end|>",
    "pad_token": "<|endoftext|>",
    "model_max_length": 2048,
}


def training_text() -> list[str]:
    """The bundled conversations' contents and the word list, one piece per line."""
    pieces = []
    with open(ROOT / "examples" / "identity.jsonl", encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)  # an array of messages, or an object holding them
            messages = record["messages"] if isinstance(record, dict) else record
            for message in messages:
                content = message["content"]  # a string, or the assistant's parts
                parts = [content] if isinstance(content, str) else [p["text"] for p in content]
                pieces += parts
    pieces += (ROOT / "examples" / "words.txt").read_text().splitlines()
    return pieces


def write_model(folder: Path) -> None:
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(byte_fallback=False, unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=SPECIAL_TOKENS,
    )
    tokenizer.train_from_iterator(training_text(), trainer)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"), pretty=False)
    config = json.dumps(CONFIG, indent=2) + "\n"
    (folder / "tokenizer_config.json").write_text(config)
    (folder / "chat_template.jinja").write_text(CHAT_TEMPLATE)


if __name__ == "__main__":
    write_model(Path(sys.argv[1]) if len(sys.argv) > 1 else FOLDER)
