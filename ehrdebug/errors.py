"""Errors a user can cause. The CLI turns them into one line on stderr and exit code 2."""

from __future__ import annotations

import os


class UserError(Exception):
    """A problem with the user's input (missing file, wrong format, bad config), never a bug.

    The message must be one line that says what is wrong and, where possible, what to do.
    """

    exit_code = 2


def require_file(path: str, what: str = "file") -> None:
    """Raise a one-line UserError unless ``path`` is an existing regular file."""
    if not os.path.exists(path):
        raise UserError(f"{what} not found: {path}")
    if os.path.isdir(path):
        raise UserError(f"expected a {what} but got a directory: {path}")


def require_dir(path: str, what: str = "directory") -> None:
    if not os.path.exists(path):
        raise UserError(f"{what} not found: {path}")
    if not os.path.isdir(path):
        raise UserError(f"expected a {what} but got a file: {path}")


def require_json_object(path: str | os.PathLike[str]) -> dict:
    """The JSON object in ``path``; a one-line UserError when it is unreadable, not JSON or not an object."""
    import json

    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:  # ValueError: not JSON, or not UTF-8
        raise UserError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data
