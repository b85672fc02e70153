"""Atomic file writes: a temporary file beside the target, renamed over it once complete.

A reader (another process, a crash-restarted run, the viewer polling a folder) sees either the
previous file or the new one, never half of one. The temporary file is ``.{name}.tmp-{pid}`` in
the target's folder (same file system, so :func:`os.replace` is atomic; hidden and per process,
so concurrent writers never share one) and is removed when the write fails.

This module sits at the bottom of the package and imports nothing from it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "write_json_atomic"]


def temp_path(path: Path) -> Path:
    """The temporary name :func:`atomic_path` writes ``path`` under."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _fsync(path: Path, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | Path, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``, on failure remove it.

    Parent folders are created. With ``durable`` the file and then its folder are flushed to disk
    (``fsync``), so the new content survives a power loss once the block has exited.

    Example::

        with atomic_path(out) as tmp:
            array.tofile(tmp)
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(final)
    try:
        yield tmp
        if durable:
            _fsync(tmp)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        _fsync(final.parent)  # make the rename itself durable


def write_json_atomic(path: str | Path, data, indent: int | None = 2, newline: bool = False) -> Path:
    """Write ``data`` as JSON to ``path`` atomically (see :func:`atomic_path`); ``newline`` ends the file with one.

    ``data`` is serialised before anything touches the disk, so an object JSON cannot encode
    raises and leaves the previous file as it was.
    """
    text = json.dumps(data, indent=indent) + ("\n" if newline else "")
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)
