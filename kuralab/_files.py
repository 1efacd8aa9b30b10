"""Atomic file writes: the one leaf every writer of kuralab uses (netCDF, PNG, JSON, ...).

No kuralab imports: `io`, `plot`, the study store, the CLI and the export cache all write
through `atomic_output`, and none of them has to import another to do it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import secrets
from collections.abc import Iterator

__all__ = ["as_path", "atomic_output"]


def as_path(path, argname: str = "path") -> pathlib.Path:
    """`path` as a `pathlib.Path`; `TypeError` naming `argname` for anything else."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            f"`{argname}` must be a str or os.PathLike; got {type(path).__name__}"
        )
    return pathlib.Path(path)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[pathlib.Path]:
    """Context manager for writing a file atomically.

    Yields a temporary path `.<name>.tmp-<pid>-<random>` in the target's directory
    (creating parent directories). Write the file there; on normal exit it is flushed
    to disk and renamed onto `path` with `os.replace`. On any exception the temporary
    file is removed, the target is left untouched, and the exception propagates.

    !!! Example

        ```python
        with kl.io.atomic_output("out/table.csv") as tmp:
            tmp.write_text(text)
        ```
    """
    target = as_path(path)
    if target.is_dir():
        raise IsADirectoryError(
            errno.EISDIR, "the output path is a directory", str(target)
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(
                errno.ENOENT, "nothing was written to the temporary file", str(tmp)
            )
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    # Persist the rename itself (best effort: not every platform can open a directory).
    with contextlib.suppress(OSError):
        fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
