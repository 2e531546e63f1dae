"""File helpers of the MS-TCN layout: UTF-8 text, ``.npy`` headers and memory maps, bundle names, sizes."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from tascond_cli.errors import DataError

__all__ = ["BUNDLE_RE", "folder_bytes", "open_npy", "read_npy_header", "read_text"]

BUNDLE_RE = re.compile(r"^(train|test)\.split(\d+)\.bundle$")
"""A split bundle's file name; groups: the part ("train" or "test") and the split number."""


def read_npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a ``.npy`` file from its header alone; checks the file is whole."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                shape, _fortran, dtype = np.lib.format._read_array_header(f, version)  # noqa: SLF001
            offset = f.tell()
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise DataError(f"{path}: not a readable .npy file ({_one_line(exc)})") from None
    if dtype.hasobject or dtype.kind not in "fiu":
        raise DataError(f"{path}: features must be numeric, got dtype {dtype}")
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = os.path.getsize(path)
    if actual < expected:
        raise DataError(f"{path}: truncated ({actual} bytes, header promises {expected})")
    return tuple(int(s) for s in shape), dtype


def open_npy(path: Path) -> np.ndarray:
    """A ``.npy`` file, memory-mapped read-only (no pickles)."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(f"{path}: not a readable .npy file ({_one_line(exc)})") from None


def read_text(path: Path) -> str:
    """A UTF-8 text file's content; :class:`DataError` naming the file if it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__



def folder_bytes(root: Path) -> int:
    """Total size of the regular files below ``root``."""
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                total += os.path.getsize(path)
    return total
