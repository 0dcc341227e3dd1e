"""Errors that reach users: one line, naming the field or file and what is allowed.

The CLI turns any ``MfsearchError`` into that line and exit code 2; everything else is a bug and
keeps its traceback.
"""
from __future__ import annotations


class MfsearchError(Exception):
    """A problem with the user's input or environment (not a bug in mfsearch)."""


class ConfigError(MfsearchError, ValueError):
    """A config value is invalid. ``path`` names the field, e.g. ``stages[2].mixer.head_dim``."""

    def __init__(self, path: str, message: str, source: str | None = None):
        self.path = path
        self.message = message
        self.source = source
        where = f"{source}: " if source else ""
        field = f"{path}: " if path else ""
        super().__init__(f"{where}{field}{message}")

    def with_source(self, source: str) -> "ConfigError":
        return ConfigError(self.path, self.message, source)


class PretrainedUnavailable(MfsearchError):
    """Published weights could not be fetched or do not exist for this architecture."""


class UnreadableImage(MfsearchError):
    """An image file met during training does not decode (``mfsearch.data.verify`` checks them all
    before a run, so it most likely changed after the run started).

    Raised in DataLoader workers; torch re-raises it in the main process as
    ``UnreadableImage("Caught ... Original Traceback ...")``, so the constructor keeps only the
    original one-line message.
    """

    def __init__(self, message: str):
        if "Original Traceback" in message:
            message = message.rstrip().rsplit(f"{type(self).__name__}: ", 1)[-1]
        super().__init__(message)
