"""The commands' reports drawn with Rich: the task list, rules, validation, the export plan,
statistics with bar charts, packing, and scores. Each takes the library's data and draws
nothing else."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.markup import escape
from rich.text import Text

if TYPE_CHECKING:
    from rich.measure import Measurement
    from rich.table import Table

    from taskcli.eval import Score
    from taskcli.files.rules import FileReport
    from taskcli.pack import Packed, RowDetail
    from taskcli.stats import SourceStats, Stats, Summary, TokenStats

from taskcli.ui import console


def print_validation_json(reports: list[FileReport], *, strict: bool) -> None:
    """`taskcli validate --json`, written piece by piece: millions of problems are read back
    from their spool files one at a time instead of being gathered into one document."""
    write = sys.stdout.write
    passed = all(report.passes(strict=strict) for report in reports)
    write(f'{{\n  "valid": {"true" if passed else "false"},\n  "files": [\n')
    for number, report in enumerate(reports):
        if number:
            write(",\n")
        for chunk in report.json_chunks(strict=strict):
            write(chunk)
    write("\n  ]\n}\n")


def _marked(names: list[str], default: str | None) -> list[str]:
    return [f"{name}*" if name == default else name for name in names]


def _subsets_summary(entry: dict[str, Any]) -> str:
    """``all* +58``: the default subset, marked, and how many others there are."""
    subsets = entry["subsets"]
    if not subsets:
        return "-"
    default = entry["default_subset"] or subsets[0]
    rest = len(subsets) - 1
    return f"{default}*" + (f" +{rest}" if rest else "")


def _default_splits(entry: dict[str, Any]) -> list[str]:
    """The splits of the default subset (a task's splits when it has no subsets)."""
    if entry["subsets"]:
        return entry["subset_splits"][entry["default_subset"] or entry["subsets"][0]]
    return entry["splits"]


SPLITS_WIDTH = 13


def _splits_summary(entry: dict[str, Any]) -> str:
    """The default subset's splits with the default marked, or ``test* +3`` when they do not
    fit the column."""
    splits = _default_splits(entry)
    if not splits:
        return "-"
    listed = ", ".join(_marked(splits, entry["default_split"]))
    if len(listed) <= SPLITS_WIDTH:
        return listed
    default = entry["default_split"] if entry["default_split"] in splits else splits[0]
    return f"{default}* +{len(splits) - 1}"


# The task table at any width: one line per task. Its columns give way to the description, in
# this order, while it would get fewer than MIN_DESCRIPTION characters; then it is shortened.
OPTIONAL_COLUMNS = ("eval", "subsets", "splits")
MIN_DESCRIPTION = 40


def print_task_table(entries: list[dict[str, Any]]) -> None:
    """One line per task whatever the width: name, kind, subsets summarised, splits with the
    default marked (*), and the description, whole when there is room, else cut at a word.
    The columns give way to the description (`OPTIONAL_COLUMNS`), so at 80 columns it keeps
    enough to say what the task is. Tasks that download a file on first use are named under
    the table, with the parameter that points at a local file instead."""
    from rich import box
    from rich.table import Table

    cells = [
        {
            "task": entry["name"],
            "eval": entry["eval_type"] or "-",
            "subsets": _subsets_summary(entry),
            "splits": _splits_summary(entry),
        }
        for entry in entries
    ]
    columns = ["task", *OPTIONAL_COLUMNS]
    widths = {name: max([len(name)] + [len(row[name]) for row in cells]) for name in columns}
    longest = max([len("description")] + [len(entry["description"]) for entry in entries])

    def room() -> int:  # what the description gets: a space each side, two between columns
        return console.stdout.width - 2 - sum(widths[name] + 2 for name in columns)

    for name in OPTIONAL_COLUMNS:
        if room() >= min(MIN_DESCRIPTION, longest):
            break
        columns.remove(name)
    width = max(min(room(), longest), len("description"))
    table = Table(
        title="Registered tasks",
        title_justify="left",
        caption=_table_caption(entries),
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for name in columns:
        table.add_column(name, style="bold" if name == "task" else None, no_wrap=True)
    table.add_column("description", no_wrap=True, width=width)
    for row, entry in zip(cells, entries, strict=True):
        table.add_row(*(row[name] for name in columns), _shortened(entry["description"], width))
    console.stdout.print(table)


def _shortened(text: str, width: int) -> str:
    """`text` in at most `width` characters: whole, or cut after a word (or a hyphen) with '…'."""
    if len(text) <= width:
        return text
    cut = text[: width - 1]
    end = max(cut.rfind(" "), cut.rfind("-") + 1)
    if end > width // 2:
        cut = cut[:end]
    return cut.rstrip(" ,;:-") + "…"


def _downloaded_params(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The parameters whose default is a URL: the task downloads it on first use."""
    return [
        param
        for param in entry["params"]
        if isinstance(param["default"], str)
        and param["default"].startswith(("http://", "https://"))
    ]


def _table_caption(entries: list[dict[str, Any]]) -> str:
    lines = ["* marks the default. `taskcli list TASK` shows one task in full."]
    by_param: dict[str, list[str]] = {}
    for entry in entries:
        for param in _downloaded_params(entry):
            by_param.setdefault(param["name"], []).append(entry["name"])
    for name, tasks in by_param.items():
        lines.append(f"{', '.join(tasks)} fetch their {name} on first use, then cache it.")
        lines.append(f"-p {name}=FILE uses a local file: no network needed.")
    return "\n".join(lines)


def print_task_details(entry: dict[str, Any]) -> None:
    """One task in full: its source, every subset with its splits, and every parameter.

    A default that is a URL is printed whole on a line of its own, never broken, so it can be
    copied; with it, where the download is kept and how to use a local file instead."""
    from rich.table import Table

    console.stdout.print(Text.assemble((entry["name"], "bold cyan"), "  ", entry["description"]))
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column(overflow="fold")
    facts.add_row("data", entry["source"])
    facts.add_row("evaluation", entry["eval_type"] or "none (training data)")
    if entry["subsets"]:
        for subset in entry["subsets"]:
            splits = _marked(entry["subset_splits"][subset], entry["default_split"])
            name = f"{subset}*" if subset == entry["default_subset"] else subset
            facts.add_row("subset " + name, ", ".join(splits) or "-")
    else:
        facts.add_row("splits", ", ".join(_marked(entry["splits"], entry["default_split"])) or "-")
    downloads = _downloaded_params(entry)
    for param in entry["params"]:
        if param in downloads:
            default = "default: the URL below"
        else:
            default = "required" if param["default"] is None else f"default {param['default']}"
        choices = f"; one of {', '.join(param['choices'])}" if param.get("choices") else ""
        facts.add_row(
            f"-p {param['name']}=", f"{param['help']} ({param['type']}, {default}{choices})"
        )
    console.stdout.print(facts)
    console.stdout.print(Text("* marks the default.", style="dim"))
    for param in downloads:
        _print_download(param)


def _print_download(param: dict[str, Any]) -> None:
    """Where a parameter's default download is kept, its URL and how to do without it: the URL
    and the option on lines of their own, whole, so they can be copied."""
    from pathlib import PurePosixPath
    from urllib.parse import urlsplit

    from taskcli.files.download import default_cache_dir

    name, url = param["name"], param["default"]
    local = PurePosixPath(urlsplit(url).path).name or "FILE"
    prose = (
        f"{name}: the default below is downloaded on first use and cached in "
        f"{default_cache_dir()}; only that first run needs the network. To work without it, "
        "save the file once and give its path:"
    )
    lines = ["", *console.wrap_message(prose, console.stdout.width, 0)]  # a path stays whole
    lines += [f"  {url}", f"  -p {name}={local}   (in a mixture spec: {name}: {local})"]
    for line in lines:
        console.stdout.print(line, soft_wrap=True, highlight=False, markup=False)


def print_rules(entries: list[dict[str, str]]) -> None:
    """The validation rules: id, severity and what breaks it."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("rule", style="bold", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("broken when", ratio=1)
    for entry in entries:
        style = "red" if entry["severity"] == "error" else "yellow"
        table.add_row(entry["rule"], Text(entry["severity"], style), entry["summary"])
    console.stdout.print(table)


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def print_validation(
    reports: list[FileReport],
    *,
    strict: bool,
    per_rule: int,
    chat_template: dict[str, Any] | None = None,
) -> None:
    """`taskcli validate` for people: per file a summary, then problems grouped by rule.

    Each rule shows its first `per_rule` occurrences as ``file:line: [rule] message (at path)``;
    the counts are always complete, and a hint says how to see what was left out. With a
    `chat_template` (as `Tokenizer.describe` gives it), a first line names the template the
    rows were rendered through.
    """
    from taskcli.files.rules import format_problem

    if chat_template is not None:
        console.stdout.print(
            Text(
                f"rows rendered through {_template_line(chat_template)}",
                style="dim",
            ),
            highlight=False,
            soft_wrap=True,
        )
    left_out = False
    for report in reports:
        passed = report.passes(strict=strict)
        summary = Text.assemble(
            ("✓ " if passed else "✗ ", "bold green" if passed else "bold red"),
            (f"{report.path}: ", "bold"),
            _plural(report.conversations, "conversation"),
            f" ({report.rejected:,} invalid)" if report.rejected else "",
            ", ",
            (_plural(len(report.errors), "error"), "red" if report.errors else ""),
            ", ",
            (_plural(len(report.warnings), "warning"), "yellow" if report.warnings else ""),
            ("  valid" if passed else "  invalid", "bold green" if passed else "bold red"),
        )
        console.stdout.print(summary, highlight=False, soft_wrap=True)
        not_json = report.not_json()
        if not_json:
            console.stdout.print(
                Text("  " + not_json, style="bold red"), highlight=False, soft_wrap=True
            )
        for problems, kind, style in (
            (report.errors, "error", "red"),
            (report.warnings, "warning", "yellow"),
        ):
            groups: dict[str, list[Any]] = {}
            for problem in problems:
                groups.setdefault(problem.rule, []).append(problem)
            for rule, group in groups.items():
                count = problems.counts[rule]  # every occurrence, not only those kept
                console.stdout.print(
                    Text.assemble("  ", (rule, f"bold {style}"), f": {_plural(count, kind)}"),
                    highlight=False,
                    soft_wrap=True,
                )
                for problem in group[:per_rule]:
                    console.stdout.print(
                        Text("    " + format_problem(report.path, problem, report.unit)),
                        highlight=False,
                        soft_wrap=True,
                    )
                if count > per_rule:
                    left_out = True
                    console.stdout.print(
                        Text(f"    … and {count - per_rule:,} more", style="dim"),
                        highlight=False,
                        soft_wrap=True,
                    )
    if len(reports) > 1:
        failed = sum(not report.passes(strict=strict) for report in reports)
        console.stdout.print(
            f"{_plural(len(reports), 'file')}: {len(reports) - failed:,} valid, {failed:,} invalid",
            highlight=False,
        )
    if left_out:
        console.stdout.print(
            Text(
                "Not every occurrence is shown: raise --max-errors, or use --json to list all "
                "(--rejects PATH saves the invalid lines or rows with their reasons).",
                style="dim",
            ),
            highlight=False,
            soft_wrap=True,
        )


def print_plan(summary: dict[str, Any]) -> None:
    """The dry-run plan as a Rich table on stdout. The entries' parameters (the files they
    read) follow the table, a line each, so a narrow terminal still shows them whole."""
    from rich import box
    from rich.table import Table

    table = Table(
        title=f"{summary['spec']}  ·  mode {summary['mode']}, seed {summary['seed']}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for column in ("entry", "task", "subset", "split", "slice", "repeat", "rows", "share"):
        numeric = column in ("repeat", "rows", "share")
        table.add_column(column, justify="right" if numeric else "left", overflow="fold")
    for item in summary["entries"]:
        start, stop, step = item["slice"]
        table.add_row(
            f"tasks[{item['entry']}]",
            item["task"],
            item["subset"] or "-",
            item["split"] or "-",
            f"{start}:{'' if stop is None else stop}:{step}",
            str(item["repeat"]),
            f"{item['rows']:,}",
            f"{item['share']:.1%}",
        )
    table.add_section()
    table.add_row("total", "", "", "", "", "", f"{summary['total']:,}", "100.0%")
    console.stdout.print(table)
    for item in summary["entries"]:
        if item["params"]:
            params = " ".join(f"{key}={value}" for key, value in item["params"].items())
            console.stdout.print(
                Text.assemble((f"tasks[{item['entry']}] ", "bold"), params),
                highlight=False,
                soft_wrap=True,
            )
    selected = summary["selected"]
    if selected["rows"] != summary["total"]:
        console.stdout.print(
            f"would write rows {selected['start']:,} to {selected['stop']:,} of the final order "
            f"({selected['rows']:,} rows)"
        )


BAR_WIDTH = 40


_EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar `fraction` (0..1) of `width` cells long, in eighths of a cell."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, rest = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[rest] if rest else "")


class Bar:
    """A bar chart cell: `fraction` of whatever width (up to BAR_WIDTH) its column gets."""

    def __init__(self, fraction: float) -> None:
        self.fraction = fraction

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        from rich.measure import Measurement

        return Measurement(min(10, options.max_width), min(BAR_WIDTH, options.max_width))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Text(bar(self.fraction, options.max_width), style="cyan", no_wrap=True)


def _range_label(low: int, high: int) -> str:
    return f"{low:,}" if low == high else f"{low:,}–{high:,}"


def _summary_row(name: str, summary: Summary) -> list[str]:
    return [
        name,
        f"{summary.count:,}",
        f"{summary.min:,}",
        f"{summary.median:,}",
        f"{summary.p95:,}",
        f"{summary.max:,}",
        f"{summary.mean:,.1f}",
    ]


def _summary_table(title: str, rows: list[list[str]]) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("", style="bold")
    for column in ("conversations", "min", "median", "p95", "max", "mean"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*row)
    return table


def _bar_table(title: str, label: str, extra: tuple[str, ...] = ()) -> Table:
    """A table of name, rows, share and a bar, plus `extra` right-aligned columns."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column(label, style="bold")
    table.add_column("rows", justify="right", no_wrap=True)
    table.add_column("share", justify="right", no_wrap=True)
    table.add_column("", ratio=1)
    for column in extra:
        table.add_column(column, justify="right", no_wrap=True)
    return table


def _histogram_table(stats: Stats, bins: list[Any], title: str, unit: str) -> Table:
    table = _bar_table(title, unit)
    largest = max(b.count for b in bins)
    for b in bins:
        table.add_row(
            _range_label(b.low, b.high),
            f"{b.count:,}",
            f"{stats.share(b.count):.1%}",
            Bar(b.count / largest),
        )
    return table


def _template_line(template: dict[str, Any]) -> str:
    """A chat template as `Tokenizer.describe` gives it, named for a report: its file, the
    start of its sha256 and its mask rule."""
    from taskcli.training.chat_template import RULE_NAMES

    rule = RULE_NAMES[template["rule"]]
    return f"chat template {template['name']} (sha256 {template['sha256'][:12]}) · mask: {rule}"


def _token_pieces(stats: Stats, tokens: TokenStats, show_sources: bool) -> list[RenderableType]:
    """The token figures: per-conversation summaries, what the cut does, the histogram."""
    tokenizer = tokens.tokenizer
    cut = f"cut at {tokens.max_tokens:,}" if tokens.max_tokens else "no cut"
    header = Text.assemble(
        ("Tokens ", "bold"),
        f"({tokenizer['kind']} tokenizer {tokenizer['spec']}, vocabulary "
        f"{tokenizer['vocab_size']:,}, {cut})",
    )
    template = tokenizer.get("chat_template")
    if template is not None:
        header.append(f"\n{_template_line(template)}")
    summaries = _summary_table(
        "Tokens per conversation",
        [
            _summary_row("tokens", tokens.tokens),
            _summary_row("trained tokens", tokens.trained),
            _summary_row("before the cut", tokens.rendered),
        ],
    )
    rendered = tokens.rendered.mean * tokens.rendered.count
    reach = Text(
        f"The cut reaches {tokens.truncated:,} conversations ({stats.share(tokens.truncated):.1%})"
        f" and drops {tokens.tokens_cut:,} tokens "
        f"({tokens.tokens_cut / rendered if rendered else 0.0:.1%} of all rendered).",
        style="yellow" if tokens.truncated else "dim",
    )
    pieces: list[RenderableType] = [header, summaries, reach]
    if tokens.trains_nothing or template is not None:
        pieces.append(_trains_nothing_line(stats, tokens, show_sources))
    pieces.append(
        _histogram_table(
            stats,
            tokens.histogram,
            "Length histogram (tokens per conversation, before the cut)",
            "tokens",
        )
    )
    if show_sources:
        table = _bar_table(
            "Share per source by tokens (after the cut)", "source", ("trained", "share")
        )
        for source in stats.sources:
            table.add_row(
                escape(source.name),
                f"{source.tokens:,}",
                f"{source.token_share:.1%}",
                Bar(source.token_share),
                f"{source.trained:,}",
                f"{source.trained_share:.1%}",
            )
        table.columns[1].header = "tokens"
        pieces.append(table)
    return pieces


def _trains_nothing_line(stats: Stats, tokens: TokenStats, show_sources: bool) -> Text:
    """How many conversations train nothing, judged on their whole rendering (a chat
    template's mask can leave a conversation with none), and from which sources."""
    count = tokens.trains_nothing
    line = Text(
        f"{count:,} conversations ({stats.share(count):.1%}) train nothing: no token of theirs "
        "is trained, even before the cut",
        style="yellow" if count else "dim",
    )
    if count and show_sources:
        named = [f"{s.trains_nothing:,} from {s.name}" for s in stats.sources if s.trains_nothing]
        line.append(f" ({', '.join(named)})")
    line.append(".")
    return line


def _sources_table(sources: list[SourceStats]) -> Table:
    table = _bar_table("Share per source", "source", ("characters", "share"))
    for source in sources:
        table.add_row(
            escape(source.name),
            f"{source.rows:,}",
            f"{source.row_share:.1%}",
            Bar(source.row_share),
            f"{source.characters:,}",
            f"{source.character_share:.1%}",
        )
    return table


def stats_report(stats: Stats, *, show_sources: bool = False) -> RenderableType:
    """The stats as Rich tables with bar charts; `show_sources` adds the share per source."""
    from taskcli.stats import PERCENTILE_METHOD

    header = Text.assemble(
        ("Stats of ", "bold"),
        (stats.label, "bold cyan"),
        f" ({stats.format})" if stats.format else "",
        f"  ·  {stats.conversations:,} conversations  ·  {PERCENTILE_METHOD} percentiles",
    )
    if not stats.conversations:
        return Group(header, Text("No conversations.", style="yellow"))
    from rich.table import Table

    overview = Table(title="Conversations", title_justify="left", show_header=False)
    overview.add_column(style="bold")
    overview.add_column(justify="right")
    overview.add_column(justify="right")
    overview.add_row("conversations", f"{stats.conversations:,}", "")
    for name, count in (
        ("with a system message", stats.with_system),
        ("with tool calls", stats.with_tool_calls),
    ):
        overview.add_row(name, f"{count:,}", f"{stats.share(count):.1%}")
    per_conversation = [_summary_row("messages", stats.messages)] + [
        _summary_row(f"{escape(role)} characters", summary)
        for role, summary in stats.characters.items()
    ]
    pieces: list[RenderableType] = [
        header,
        overview,
        _summary_table("Per conversation", per_conversation),
    ]
    pieces.append(
        _histogram_table(
            stats,
            stats.histogram,
            "Length histogram (total characters per conversation)",
            "characters",
        )
    )
    if show_sources:
        pieces.append(_sources_table(stats.sources))
    if stats.tokens is not None:
        pieces += _token_pieces(stats, stats.tokens, show_sources)
    return Group(*pieces)


def score_report(score: Score) -> RenderableType:
    """The score for people: accuracy with its count and interval, failures, subjects."""
    from rich.table import Table

    label = " / ".join(part for part in (score.task, score.subset, score.split) if part)
    low, high = score.ci95
    headline = Text.assemble(
        (label, "bold"),
        ": accuracy ",
        (f"{score.accuracy:.1%}", "bold"),
        f" ({score.correct}/{score.n} correct), 95% CI {low:.1%} to {high:.1%}",
    )
    pieces: list[RenderableType] = [headline]
    if score.n < score.examples:
        pieces.append(Text(f"answered {score.n} of the task's {score.examples} examples", "dim"))
    if score.failures:
        counts = ", ".join(f"{reason} {count}" for reason, count in sorted(score.failures.items()))
        if score.exceptions:
            types = ", ".join(f"{name} {count}" for name, count in score.exceptions.most_common())
            counts += f" ({types})"
        pieces.append(Text(f"failed programs: {counts}"))
    pieces.extend(Text(f"warning: {warning}", "yellow") for warning in score.warnings)
    if score.by_subject:
        table = Table(title="by subject", title_justify="left")
        table.add_column("subject")
        table.add_column("correct", justify="right")
        table.add_column("n", justify="right")
        table.add_column("accuracy", justify="right")
        for subject, (n, correct) in sorted(score.by_subject.items()):
            table.add_row(subject, str(correct), str(n), f"{correct / n:.1%}")
        pieces.append(table)
    return Group(*pieces)


def pack_report(packed: Packed) -> RenderableType:
    """`taskcli pack` for people: the run, each rank, each source's shares, the conversations
    the loader leaves out or takes twice, and the verdict (bold red when a micro-batch has no
    valid target, the loss then being NaN, or the epoch never ends)."""
    from taskcli.training.packing import NANOCHAT_LOADER

    settings, summary = packed.settings, packed.summary
    tokenizer = packed.tokenizer.describe()
    cut = f"{packed.render_max_tokens:,}" if packed.render_max_tokens else "none"
    header = Text.assemble(
        ("Packing ", "bold"),
        (packed.label, "bold cyan"),
        f"  ·  {summary.conversations:,} conversations  ·  {NANOCHAT_LOADER}",
    )
    if settings.split == "val":
        loop = (
            f"{_plural(settings.eval_micro_batches, 'micro-batch')} per evaluation "
            f"(eval tokens {settings.eval_tokens:,})"
        ).replace("micro-batchs", "micro-batches")
    else:
        total = settings.total_batch_size or settings.tokens_per_micro_batch
        loop = f"G={settings.micro_batches_per_step} (total batch {total:,} tokens)"
        if settings.num_iterations > 0:
            loop += f", num_iterations {settings.num_iterations:,}"
    knobs = Text(
        f"tokenizer {tokenizer['spec']}, render cut {cut}; T={settings.max_seq_len:,}, "
        f"B={settings.device_batch_size}, W={settings.world_size}, S={settings.buffer_size}, "
        f"split {settings.split}, {loop}",
        style="dim",
    )
    pieces: list[RenderableType] = [header, knobs]
    if summary.failure is None:
        pieces += [_pack_run_table(packed), _pack_ranks_table(packed)]
        pieces += _pack_source_tables(packed)
    ok = summary.strict_ok and summary.ends
    pieces.append(
        Text.assemble(
            ("Verdict: ", "bold"),
            (summary.verdict, "bold green" if ok else "bold red"),
        )
    )
    pieces.append(Text(packed.cache.describe(), style="dim"))
    return Group(*pieces)


def _pack_run_table(packed: Packed) -> Table:
    from rich import box
    from rich.table import Table

    settings, summary = packed.settings, packed.summary
    table = Table(
        title="The run", title_justify="left", show_header=False, box=box.SIMPLE, pad_edge=False
    )
    table.add_column(style="bold", no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    table.add_column(style="dim", ratio=1)
    if settings.split == "val":
        evaluated = f"{settings.eval_micro_batches:,}"
        table.add_row("micro-batches per evaluation", evaluated, "per rank")
    else:
        first = summary.run_micro_batches
        table.add_row(
            "micro-batches until last_step",
            "never" if first is None else f"{first:,}",
            "the first rank to set it ends the run",
        )
        steps = summary.optimizer_steps
        each = settings.micro_batches_per_step
        table.add_row(
            "optimizer steps",
            "never ends" if steps is None else f"{steps:,}",
            f"{_plural(each, 'micro-batch')} each".replace("batchs", "batches")
            + "; the last micro-batch fetched is not trained",
        )
    table.add_row("rows fed", f"{summary.rows:,}", "all ranks")
    table.add_row("padding", f"{summary.padding_fraction:.1%}", "of the rows' tokens")
    table.add_row(
        "trained tokens",
        f"{summary.trained_fraction:.1%}",
        f"valid targets ÷ (rows × {settings.max_seq_len:,})",
    )
    table.add_row(
        "never placeable",
        f"{summary.never_placeable:,}",
        f"conversations longer than a row ({settings.row_capacity:,} tokens)",
    )
    table.add_row("skipped", f"{summary.skipped:,}", "placeable, never placed in the run")
    table.add_row("placed twice", f"{summary.placed_twice:,}", "in rows fed (the epoch edge)")
    if summary.micro_batches_without_targets:
        table.add_row(
            "without a valid target",
            Text(f"{summary.micro_batches_without_targets:,}", style="bold red"),
            "fed micro-batches: their loss is NaN (0 / 0)",
        )
    return table


def _pack_ranks_table(packed: Packed) -> Table:
    from rich.table import Table

    summary = packed.summary
    batch = packed.settings.device_batch_size
    table = Table(
        title="Per rank",
        title_justify="left",
        caption="last_step: the micro-batch that sets it, from 1; all padding: from 0",
        caption_justify="left",
    )
    for column in ("rank", "last_step at", "micro-batches fed", "rows fed", "all padding from"):
        table.add_column(column, justify="right")
    for rank, (last, fed, starved) in enumerate(
        zip(
            summary.last_step_micro_batches,
            summary.fed_micro_batches,
            summary.starved_from,
            strict=True,
        )
    ):
        table.add_row(
            str(rank),
            "-" if last is None else f"{last:,}",
            f"{fed:,}",
            f"{fed * batch:,}",
            Text("-") if starved is None else Text(f"{starved:,}", style="bold red"),
        )
    return table


def _pack_source_tables(packed: Packed) -> list[RenderableType]:
    from rich.table import Table

    shares = Table(
        title="Share per source after packing",
        title_justify="left",
        caption="placed: conversations in rows fed; loss: each micro-batch's loss is the mean "
        "over its valid targets",
        caption_justify="left",
    )
    left_out = Table(title="Conversations left out or taken twice", title_justify="left")
    shares.add_column("source", style="bold", overflow="fold")
    left_out.add_column("source", style="bold", overflow="fold")
    for column in ("placed", "share", "trained tokens", "share", "loss share"):
        shares.add_column(column, justify="right", no_wrap=True)
    for column in ("conversations", "placed", "never placeable", "skipped", "twice"):
        left_out.add_column(column, justify="right", no_wrap=True)
    for share in packed.summary.sources:
        name = escape(packed.source_name(share.source))
        shares.add_row(
            name,
            f"{share.placed:,}",
            f"{share.row_share:.1%}",
            f"{share.trained_tokens:,}",
            f"{share.token_share:.1%}",
            f"{share.loss_share:.1%}",
        )
        left_out.add_row(
            name,
            f"{share.conversations:,}",
            f"{share.placed:,}",
            Text(f"{share.never_placeable:,}", style="red" if share.never_placeable else ""),
            f"{share.skipped:,}",
            f"{share.placed_twice:,}",
        )
    return [shares, left_out]


def packed_row_report(detail: RowDetail) -> RenderableType:
    """One packed row: its conversations (mixture index, source, offset, length, trained) and
    its padding."""
    from rich.table import Table

    header = Text.assemble(
        ("Row ", "bold"),
        (f"{detail.number:,}", "bold cyan"),
        f" of rank {detail.rank} (micro-batch {detail.micro_batch:,}, row {detail.row}): "
        f"{detail.content_len:,} of {detail.capacity:,} tokens, {detail.padding:,} padding, "
        f"{detail.valid_targets:,} valid targets",
    )
    table = Table(box=None, pad_edge=False)
    for column in ("offset", "length", "trained", "mixture index", "source", "example"):
        numeric = column != "source"
        table.add_column(column, justify="right" if numeric else "left", overflow="fold")
    for segment in detail.segments:
        table.add_row(
            f"{segment.offset:,}",
            f"{segment.length:,}",
            f"{segment.trained:,}",
            f"{segment.index:,}",
            escape(segment.entry_label),
            f"{segment.origin['index']:,}",
        )
    if detail.padding:
        table.add_row(
            f"{detail.content_len:,}",
            f"{detail.padding:,}",
            "0",
            "",
            Text("padding (<|bos|>, masked)", style="dim"),
            "",
        )
    return Group(header, table)
