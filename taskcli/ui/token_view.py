"""A conversation as the tokens the model trains on: trained and untrained runs told apart by
colour, or by brackets and dots where there is none; a packed row as its conversations' tokens,
one after the other, with where each begins marked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.text import Text

if TYPE_CHECKING:
    from taskcli.pack import RowDetail
    from taskcli.show import Row, Shown
    from taskcli.training.tokenizer import Tokenizer
    from taskcli.training.tokens import Rendering

from taskcli.ui import console
from taskcli.ui.conversation_view import header, source_line

# Tokens alternate between two backgrounds so their boundaries show; without colour they are
# separated by a dot, and untrained runs are bracketed.
TRAINED_STYLES = ("green on grey15", "green on grey27")


UNTRAINED_STYLES = ("bright_black on grey11", "bright_black on grey19")


def print_tokens(
    shown: Shown,
    renderings: list[tuple[Row, Rendering]],
    tokenizer: Tokenizer,
    *,
    max_tokens: int,
    show_ids: bool = False,
) -> None:
    """Each conversation as the tokens the model trains on, under a header of counts."""
    plain = console.stdout.no_color or console.stdout.color_system is None
    for row, rendering in renderings:
        console.stdout.rule(header(shown, row))
        console.stdout.print(token_view(row, rendering, tokenizer, max_tokens, plain, show_ids))


def print_rendering_warnings(row: Row, rendering: Rendering) -> None:
    """On stderr, what a chat template's rendering of `row` should not leave unsaid: that it
    trains nothing (the whole conversation, before any cut), and the assistant contents the
    ``assistant`` rule did not find in the rendered text."""
    name = f"{'row' if row.origin is not None else 'example'} {row.index}"
    rule = getattr(rendering, "rule", None)
    if rule is None:
        return
    if getattr(rendering, "trains_nothing", False):
        console.print_warning(
            f"{name}: the chat template trains none of its tokens (mask: {_rule_name(rule)}): "
            "in training, it would teach the model nothing."
        )
    missed = getattr(rendering, "missed", 0)
    if missed:
        messages = "message's content was" if missed == 1 else "messages' contents were"
        console.print_note(
            f"note: {name}: {missed} assistant {messages} not found in the text the template "
            "wrote (it changes them), so not trained; --train-on all, or a template with "
            "{% generation %} blocks, says what to train."
        )


def _rule_name(rule: str) -> str:
    """A chat template's mask rule as reports name it (the template module is loaded already:
    only its renderings have a rule)."""
    from taskcli.training.chat_template import RULE_NAMES

    return RULE_NAMES[rule]


def token_view(
    row: Row,
    rendering: Rendering,
    tokenizer: Tokenizer,
    max_tokens: int,
    plain: bool,
    show_ids: bool = False,
) -> RenderableType:
    """One conversation as the tokens the model trains on, under a line of counts; `plain`
    marks untrained runs and token boundaries with characters instead of colour."""
    legend = "untrained in ⟦ ⟧, tokens split by ·" if plain else "trained in green"
    pieces: list[RenderableType] = []
    if row.origin is not None:
        pieces.append(source_line(row))
    cut = f" at {max_tokens:,}" if rendering.truncated else ""
    rule = getattr(rendering, "rule", None)  # a chat template's rendering names its rule
    mask = f" · mask: {_rule_name(rule)}" if rule else ""
    pieces.append(
        Text(
            f"{rendering.num_tokens:,} tokens · {rendering.num_trained:,} trained · "
            f"{rendering.tokens_cut:,} cut off{cut}{mask}  ({legend})"
        )
    )
    pieces.append(_token_text(rendering, tokenizer, plain, show_ids))
    if rendering.truncated:
        dropped = f"✂ cut here: {rendering.tokens_cut:,} more tokens never trained on"
        pieces.append(Text(dropped, "bold red"))
    return Group(*pieces)


def _token_text(rendering: Rendering, tokenizer: Tokenizer, plain: bool, show_ids: bool) -> Text:
    specials = set(tokenizer.special_ids.values())
    text = Text()
    previous = None
    for position, (token, trained) in enumerate(zip(rendering.ids, rendering.mask, strict=True)):
        shown = tokenizer.token_text(token)
        if plain:
            if previous is not None and trained != previous:
                text.append("⟧" if previous == 0 else "⟦")
            elif previous is not None:
                text.append("·")
            if previous is None and not trained:
                text.append("⟦")
        previous = trained
        styles = TRAINED_STYLES if trained else UNTRAINED_STYLES
        if token in specials:
            text.append(shown, style="bold reverse green" if trained else "bold reverse")
        else:
            text.append(shown.replace("\n", "↵\n"), style=styles[position % 2])
        if show_ids:
            text.append(f":{token}", style="dim")
    if plain and previous == 0:
        text.append("⟧")
    return text


def print_packed_row(
    detail: RowDetail, tokenizer: Tokenizer, *, max_tokens: int, show_ids: bool = False
) -> None:
    """A packed row as the model reads it: each conversation's tokens under a rule that marks
    where it begins in the row, then the padding."""
    from rich.rule import Rule

    from taskcli.targets import Row

    plain = console.stdout.no_color or console.stdout.color_system is None
    for number, segment in enumerate(detail.segments):
        end = segment.offset + segment.length - 1
        console.stdout.print(
            Rule(
                f"[bold]segment {number}[/]  ·  row tokens {segment.offset:,} to {end:,}  ·  "
                f"mixture row {segment.index:,}",
                align="left",
                style="cyan",
            )
        )
        row = Row(
            segment.index,
            segment.conversation or {},
            origin=segment.origin,
            entry=segment.entry_label,
        )
        assert segment.rendering is not None, "row_detail(with_tokens=True) renders each segment"
        console.stdout.print(
            token_view(row, segment.rendering, tokenizer, max_tokens, plain, show_ids)
        )
    if detail.padding:
        console.stdout.print(
            Rule(
                f"[bold]padding[/]  ·  row tokens {detail.content_len:,} to "
                f"{detail.capacity - 1:,}",
                align="left",
                style="dim",
            )
        )
        bos = tokenizer.token_text(tokenizer.padding_id)
        console.stdout.print(
            Text(f"{bos} × {detail.padding:,}, masked: their targets are -1", style="dim")
        )
