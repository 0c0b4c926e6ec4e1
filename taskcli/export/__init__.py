"""`taskcli export`: a mixture spec turned into a training file, exactly and with a record.

    from taskcli.export import export
    from taskcli.mixing.plan import build_plan
    from taskcli.mixing.spec import load_spec

    plan = build_plan(load_spec("mixture.yaml"), data_dir="data")
    manifest = export(plan, "train.jsonl", fmt="nanochat")

The row order is exactly the plan's mixture (`taskcli.mixing.plan`). One module per job:

- `formats`: the export formats, one `ExportFormat` object each, in one table;
- `lines`: an entry's examples checked and turned into JSON lines, row by row or in bulk;
- `columnar`: the bulk path, for conversations held as Arrow columns (SmolTalk);
- `order`: the lines put into the final order through scratch files, with flat memory;
- `writing`: the output file, written atomically, and its manifest.

The ``index`` in a `full` row's source is the index in the whole task, before the entry's
start/stop/step slice, so ``taskcli show TASK --subset S --split SP --index I`` shows that row.
"""

from taskcli.export.formats import FORMATS, ExportFormat, get_format

__all__ = [
    "FORMATS",
    "ExportFormat",
    "export",
    "get_format",
    "manifest_location",
    "manifest_path",
    "write_rows",
]


def __getattr__(name: str):
    """The writing side on first use: it imports more than ``--help`` should pay for."""
    if name in ("export", "manifest_location", "manifest_path", "write_rows"):
        from taskcli.export import writing

        return getattr(writing, name)
    raise AttributeError(f"module 'taskcli.export' has no attribute {name!r}")
