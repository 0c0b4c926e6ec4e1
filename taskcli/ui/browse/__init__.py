"""`taskcli browse`: the Textual screens over `taskcli.browse.Browser` (the file model apart from
the widgets, one screen per file). Only `taskcli browse` imports this package."""
