"""The panel's static files, served from an allow-list fixed when the plugin loads."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional

CONTENT_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*\.(?:js|css|png|svg)")
"""Plain file names: no path separators, no leading dot, no ``..``, a known extension."""

DEFAULT_DIRECTORY = Path(__file__).with_name("static")


class StaticFiles:
    """Serves the regular files directly inside one directory whose names match :data:`_NAME`.

    The allow-list is built once; a request can only name one of its entries, so
    no request path ever reaches the file system.
    """

    def __init__(self, directory: Path = DEFAULT_DIRECTORY):
        root = directory.resolve()
        self._files: dict[str, Path] = {}
        for entry in sorted(os.listdir(root)) if root.is_dir() else ():
            path = root / entry
            if _NAME.fullmatch(entry) and not path.is_symlink() and path.is_file():
                self._files[entry] = path

    @property
    def names(self) -> list[str]:
        """The served file names, sorted."""
        return list(self._files)

    def read(self, name: str) -> Optional[tuple[bytes, str]]:
        """``(content, content type)`` of an allowed file, or None."""
        path = self._files.get(name)
        if path is None:
            return None
        try:
            content = path.read_bytes()
        except OSError:  # removed since the plugin loaded
            return None
        return content, CONTENT_TYPES[path.suffix]
