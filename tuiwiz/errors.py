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
