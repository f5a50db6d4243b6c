"""File access for the writer and the reader: the one module that opens, lists and writes log files.

Local paths go through :mod:`os`, so a PyTorch, JAX or NumPy job never imports
TensorFlow. Remote URLs (``gs://``, ``s3://``, any ``scheme://``) go through
`fsspec <https://filesystem-spec.readthedocs.io>`_ when it and the scheme's
implementation are installed (``gcsfs`` for ``gs://``, ``s3fs`` for ``s3://``),
else through TensorFlow's file systems; a URL neither can open is an ``OSError``
that names what to install (docs/distributed.md, "Where to log").

Every failure is raised as an ``OSError`` naming the path, whichever layer
failed. Remote objects are written whole (:func:`write_whole`): object stores
cannot append.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from typing import IO, Any


def is_remote(path: str) -> bool:
    """Whether ``path`` is a URL (``scheme://...``) rather than a local path."""
    return "://" in path


def join(directory: str, name: str) -> str:
    """``name`` inside ``directory`` (local path or URL)."""
    if is_remote(directory):
        return directory.rstrip("/") + "/" + name
    return os.path.join(directory, name)


class _Fsspec:
    """A remote URL through fsspec."""

    def __init__(self, url: str):
        import fsspec

        self.fs, self.path = fsspec.core.url_to_fs(url)
        self.fs.invalidate_cache(self.path)  # fsspec keeps listings: each call sees the store as it is now (a live run)

    def url(self, path: str) -> str:
        return self.fs.unstrip_protocol(path)

    def makedirs(self) -> None:
        self.fs.makedirs(self.path, exist_ok=True)

    def isdir(self) -> bool:
        return self.fs.isdir(self.path)

    def entries(self) -> list[tuple[str, bool]]:
        return [(entry["name"].rstrip("/").rsplit("/", 1)[-1], entry["type"] == "directory") for entry in self.fs.ls(self.path, detail=True)]

    def walk(self) -> Iterator[tuple[str, list[str]]]:
        for directory, _, files in self.fs.walk(self.path):
            yield self.url(directory), list(files)

    def open_read(self) -> tuple[IO[bytes], int]:
        return self.fs.open(self.path, "rb"), self.fs.size(self.path)

    def write_whole(self, data: bytes) -> None:
        self.fs.pipe_file(self.path, data)


class _TensorFlow:
    """A remote URL through TensorFlow's file systems (``tf.io.gfile``)."""

    def __init__(self, url: str):
        import tensorflow as tf

        self.gfile, self.path = tf.io.gfile, url

    def makedirs(self) -> None:
        self.gfile.makedirs(self.path)

    def isdir(self) -> bool:
        return self.gfile.isdir(self.path)

    def entries(self) -> list[tuple[str, bool]]:
        return [(name.rstrip("/"), self.gfile.isdir(join(self.path, name))) for name in self.gfile.listdir(self.path)]

    def walk(self) -> Iterator[tuple[str, list[str]]]:
        for directory, _, files in self.gfile.walk(self.path):
            yield directory, list(files)

    def open_read(self) -> tuple[IO[bytes], int]:
        return self.gfile.GFile(self.path, "rb"), self.gfile.stat(self.path).length

    def write_whole(self, data: bytes) -> None:
        with self.gfile.GFile(self.path, "wb") as handle:
            handle.write(data)


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a module hidden or half-installed
        return False


_IMPLEMENTATIONS = {"gs": "gcsfs", "gcs": "gcsfs", "s3": "s3fs", "az": "adlfs", "abfs": "adlfs"}  # fsspec's, by URL scheme


def _remote(url: str) -> Any:
    """The file system of a remote ``url``: fsspec's if it can open it, else TensorFlow's (already imported, or installed)."""
    scheme = url.split("://", 1)[0]
    problem = "fsspec is not installed"
    if _installed("fsspec"):
        try:
            return _Fsspec(url)
        except (ImportError, ValueError) as error:  # no implementation of the scheme (gcsfs, s3fs), or an unknown one
            problem = f"fsspec cannot open it ({error})"
    if "tensorflow" in sys.modules or _installed("tensorflow"):
        return _TensorFlow(url)
    package = _IMPLEMENTATIONS.get(scheme)
    install = f"pip install fsspec {package}" if package else f"pip install fsspec and its {scheme}:// implementation"
    raise OSError(f"no file system can open {url!r}: {problem}, and TensorFlow is not installed; {install}")


def _failed(action: str, path: str, error: Exception) -> OSError:
    """``error`` as an ``OSError`` naming ``path`` (fsspec's and TensorFlow's own error types included)."""
    if isinstance(error, OSError) and path in str(error):
        return error
    return OSError(f"could not {action} {path!r}: {error}")


def makedirs(path: str) -> None:
    """Creates the folder ``path`` and its parents (on object stores, where folders are name prefixes, checks the URL)."""
    try:
        os.makedirs(path, exist_ok=True) if not is_remote(path) else _remote(path).makedirs()
    except Exception as error:
        raise _failed("create the folder", path, error) from error


def isdir(path: str) -> bool:
    """Whether ``path`` is a folder (False where it cannot be read)."""
    if not is_remote(path):
        return os.path.isdir(path)
    try:
        return bool(_remote(path).isdir())
    except Exception:
        return False


def entries(path: str) -> list[tuple[str, bool]]:
    """``(name, is a folder)`` of each entry of the folder ``path``; ``OSError`` if it cannot be listed."""
    try:
        if not is_remote(path):
            with os.scandir(path) as found:
                return [(entry.name, entry.is_dir()) for entry in found]
        return _remote(path).entries()
    except Exception as error:
        raise _failed("list", path, error) from error


def walk(top: str) -> Iterator[tuple[str, list[str]]]:
    """``(folder, names of its files)`` of ``top`` and every folder under it (local links followed); nothing if ``top`` is no folder."""
    if not is_remote(top):
        for directory, _, names in os.walk(top, followlinks=True):
            yield directory, [name for name in names if not os.path.isdir(os.path.join(directory, name))]
        return
    if isdir(top):
        try:
            yield from _remote(top).walk()
        except Exception as error:
            raise _failed("list", top, error) from error


def open_read(path: str) -> tuple[IO[bytes], int]:
    """The file ``path`` open for reading in binary, and its size in bytes."""
    try:
        if not is_remote(path):
            handle = open(path, "rb")  # noqa: SIM115 (the caller closes it)
            return handle, os.fstat(handle.fileno()).st_size
        return _remote(path).open_read()
    except Exception as error:
        raise _failed("read", path, error) from error


def write_whole(path: str, data: bytes) -> None:
    """Writes ``data`` as the whole content of the file ``path``, replacing what it held (remote objects are uploaded in one piece)."""
    try:
        if not is_remote(path):
            with open(path, "wb") as handle:
                handle.write(data)
        else:
            _remote(path).write_whole(data)
    except Exception as error:
        raise _failed("write", path, error) from error
