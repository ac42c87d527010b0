"""User-facing errors: one line that says what is wrong and how to fix it."""


class TuiwizError(Exception):
    """An error caused by the user's input. The CLI prints it on one line and exits 2."""

    exit_code = 2


class ConfigError(TuiwizError):
    """A preset or override that is not valid."""


class DataError(TuiwizError):
    """A dataset that cannot be read or does not match its format."""


class ModelError(TuiwizError):
    """A model that cannot be found or read."""


def first_line(error: BaseException) -> str:
    """An exception in one line: the first line of its message, or its type's name when it has
    no message (library exceptions carry whole tracebacks or tables in their text)."""
    lines = str(error).strip().splitlines()
    return lines[0].strip() if lines else type(error).__name__


def describe_error(error: BaseException) -> str:
    """An unexpected exception in one line, with its type: "KeyError: 'x'"."""
    lines = str(error).strip().splitlines()
    name = type(error).__name__
    return f"{name}: {lines[0].strip()}" if lines else name


def one_line(error: BaseException) -> str:
    """What to show a person for `error`: our own message as it is, anything else with its
    type (an unexpected error is named for what it is)."""
    return first_line(error) if isinstance(error, TuiwizError) else describe_error(error)
