"""User-facing errors: one line that names the file and the problem."""

from __future__ import annotations

from pathlib import Path


class NeuralFieldsError(Exception):
    """An error caused by user input (a file, a flag, a run folder).

    The CLI prints ``str(error)`` on one line and exits with status 2, never a traceback.
    """


def file_error(path: str | Path, problem: str) -> NeuralFieldsError:
    """Build the standard ``<path>: <problem>`` error."""
    return NeuralFieldsError(f"{path}: {problem}")
