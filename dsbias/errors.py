"""The one error class a user can fix. Scripts print its message as one line and exit with code 2.

Everything raised for bad config, data, features or arguments derives from :class:`UserError` (config errors,
feature-file errors, short sources...), so the CLI layer needs one ``except`` and a bug still shows its
traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem in what the user gave (config, data, features, arguments); the message says how to fix it."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the user named (a source's path, model weights, a run dir's file) is missing or empty."""


class FailedOnMain(UserError):
    """Raised on the other processes of a multi-process run when the main process stopped on a
    :class:`UserError`: the main one prints the message, the others exit quietly with the same code."""
