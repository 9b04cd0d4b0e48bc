"""Atomic file writes: a file at the path is either the old one or the complete new one.

The bytes go to a temporary file in the same folder (so the final rename cannot cross a file
system), are flushed to disk, then replace the path in one os.replace. A full disk, a size limit or
an interrupted run leaves the old file byte-identical and no temporary file behind, and the error
raised is an OSError that names the path the user asked for. A symbolic link is written through
(its target replaced); a folder or a device at the path is never replaced.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile


@contextlib.contextmanager
def replacing(path):
    """Yield a temporary path beside ``path`` for a writer that takes a file name (safetensors,
    matplotlib); once the block ends the file there replaces ``path``. On any error nothing changes."""
    path = os.fspath(path)
    target = os.path.realpath(path)  # a symbolic link keeps pointing at the new file
    if os.path.exists(target) and not os.path.isfile(target):
        raise OSError(errno.EINVAL, f"cannot write {path}: it is not a regular file (a folder or a device)")
    folder, name = os.path.split(target)
    try:  # the path's extension kept last: matplotlib and PIL pick the format by it
        fd, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=f".tmp{os.path.splitext(name)[1]}", dir=folder)
        os.close(fd)
    except OSError as e:
        raise _naming(e, path) from e
    try:
        os.chmod(temp, _mode(target))
        yield temp
        with open(temp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(temp, target)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(e, OSError):
            raise _naming(e, path) from e
        raise


def write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with replacing(path) as temp, open(temp, "wb") as f:
        f.write(data)


def write_text(path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (no newline translation: the bytes are the text's)."""
    write_bytes(path, text.encode(encoding))


def append_text(path, text: str, encoding: str = "utf-8") -> None:
    """Add ``text`` at the end of ``path`` (created when missing) atomically: the file is rewritten
    whole and swapped in, so a crash leaves the old lines or all of the new, never a cut line. For
    logs and metrics files, which stay small."""
    try:
        with open(path, "rb") as f:
            old = f.read()
    except FileNotFoundError:
        old = b""
    write_bytes(path, old + text.encode(encoding))


def _mode(path: str) -> int:
    """The permissions a plain open() would give (mkstemp's are private): the old file's, if any."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _naming(error: OSError, path: str) -> OSError:
    """The same kind of OSError (errno kept), its message naming ``path``, not the temporary file."""
    reason = error.strerror or str(error)
    message = f"cannot write {path}: {reason}"
    return OSError(error.errno, message) if error.errno else OSError(message)
