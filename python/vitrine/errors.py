"""vitrine's exceptions: one class per engine status code.

Every error carries the engine's message, the same text the CLI prints
("items.csv:12:3: price: expected a number, got 'abc'"), and ``code``, the
status code's name. Each class is also the built-in exception a Python user
would catch for that kind of failure.
"""


class Error(Exception):
    """Any vitrine error. ``code`` names the engine status code."""

    code = "Error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidArgumentError(Error, ValueError):
    """A bad argument, value or file content."""

    code = "InvalidArgument"


class NotFoundError(Error, FileNotFoundError, KeyError):
    """A file, item or user id that does not exist."""

    code = "NotFound"

    def __str__(self) -> str:  # not KeyError's quoted repr
        return self.message


class CorruptionError(Error):
    """A file whose bytes do not match what its manifest promised."""

    code = "Corruption"


class IOError(Error, OSError):  # noqa: A001 - the engine's name for it
    """The operating system refused a read or a write."""

    code = "IOError"


class UnsupportedError(Error, NotImplementedError):
    """A valid input this version cannot handle."""

    code = "Unsupported"
