"""Atomic file writes: the gate's one JSON writer (:func:`write_json`), so every JSON file
it writes has the same form and none is ever seen half written."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["dumps", "write_json", "write_text"]


def dumps(data: Any) -> str:
    """The gate's JSON text: sorted keys, one-space indent, a final newline.

    ``allow_nan=False``: NaN and infinity are not JSON, and a reader (pyperf, a browser, a
    later gate run) would reject the file, so writing one is refused here, at the source.
    ``default=str`` writes paths and enums by their text.
    """
    return json.dumps(data, indent=1, sort_keys=True, allow_nan=False, default=str) + "\n"


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` to ``path`` atomically: a reader sees the old file or the whole new one.

    The text goes to a temporary file in the same folder, is flushed to disk, and replaces
    ``path`` in one rename; on any failure the temporary file is removed and ``path`` is left
    as it was. The file is readable by others (0644), like any file the gate shares.
    Raises ``OSError`` (callers map it to the error naming their file) and ``ValueError``
    for data that is not JSON.
    """
    write_text(path, dumps(data))


def write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, as :func:`write_json` does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
