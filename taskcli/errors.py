"""The errors taskcli reports to people instead of tracebacks.

Each carries the exit code the CLI uses for it: 1 when the work failed (invalid data, data
unavailable), 2 when the request itself was wrong (unknown task, bad option, missing file).
"""

from __future__ import annotations

import difflib


class TaskcliError(Exception):
    """A failure with a message meant for the user; the CLI prints it and exits with `exit_code`.

    `hint`, when given, says what to do about it; the CLI prints it on its own ``Hint:`` line,
    so the message itself stays a statement of what went wrong. `params` names the parameters
    (``subset``, ``data_dir``, a task parameter) the message is about, as library callers know
    them; the CLI adds the flags that set them.
    """

    exit_code = 1

    def __init__(
        self, message: str = "", hint: str | None = None, params: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.hint = hint
        self.params = params

    def within(self, label: str) -> TaskcliError:
        """The same error (kind, hint, parameters and all) as one part of a larger request:
        ``label: message``, as a mixture spec names its entry."""
        labelled = type(self).__new__(type(self))
        labelled.__dict__.update(self.__dict__)
        Exception.__init__(labelled, f"{label}: {self}")
        return labelled


class UsageError(TaskcliError, ValueError):
    """The request was wrong: an unknown task, an invalid subset/split/parameter, a missing file.

    Also a ValueError, so library callers can catch a bad argument the usual Python way.
    """

    exit_code = 2


class DataUnavailable(TaskcliError):
    """A dataset could not be found locally or fetched; the message says how to get it."""


class DatasetMissing(DataUnavailable):
    """A Hub dataset found neither in a local copy nor on the Hub. `repo` names it, so that an
    error about several (a mixture's entries) can say how to get each one."""

    def __init__(
        self, message: str, repo: str, hint: str | None = None, params: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message, hint, params)
        self.repo = repo


class InvalidData(TaskcliError):
    """The data was read but breaks the conversation rules."""


def suggest(word: str, options: list[str] | tuple[str, ...]) -> str:
    """' Did you mean ...?' for the closest options, or '' when nothing is close.

    Case is ignored in comparing (``TEST`` is close to ``test``), so a name typed in the wrong
    case is suggested in the right one."""
    folded: dict[str, str] = {}
    for option in options:
        folded.setdefault(option.casefold(), option)
    matches = difflib.get_close_matches(word.casefold(), list(folded), n=3, cutoff=0.5)
    close = [folded[match] for match in matches]
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"


def one_line(error: BaseException) -> str:
    """The first line of an error's message (its type's name when it has none): a library's
    multi-line message as one line of taskcli's."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
