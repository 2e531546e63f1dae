"""How the format encodes values: canonical JSON text, integer arrays, weight dtypes, little-endian arrays.

Shared by the validator, the reader, the writer and the storage breakdown, so that all of them agree.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from tascond_cli.archive.model import ArchiveError


def json_text(value: Any, path: str) -> str:
    """The canonical JSON text of a JSON object (sorted keys, UTF-8, no NaN)."""
    if not isinstance(value, dict):
        raise ArchiveError(f"{path}: must be a JSON object (dict), not {type(value).__name__}")
    try:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        text.encode("utf-8")
    except (TypeError, ValueError) as e:
        raise ArchiveError(f"{path}: not JSON-serialisable ({e})") from None
    return text


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_object(text: str, path: str) -> dict[str, Any]:
    """The JSON object in ``text`` (NaN and infinities refused)."""
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError as e:
        raise ArchiveError(f"{path}: invalid JSON ({e})") from None
    except RecursionError:
        raise ArchiveError(f"{path}: JSON nested too deeply") from None
    if not isinstance(value, dict):
        raise ArchiveError(f"{path}: must be a JSON object, not {type(value).__name__}")
    return value


def int_array(value: Any, path: str, length: int | None = None, what: str = "") -> np.ndarray:
    """A 1-D integer array as int64; any integer dtype whose values fit is accepted."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        raise ArchiveError(f"{path}: must hold integers, not {arr.dtype}")
    if arr.ndim != 1:
        raise ArchiveError(f"{path}: must be 1-D, not shape {arr.shape}")
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 8 and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise ArchiveError(f"{path}: value {int(arr.max())} is too large")
    if length is not None and arr.shape[0] != length:
        raise ArchiveError(f"{path}: has {arr.shape[0]} entries, expected {length}{what}")
    return arr.astype(np.int64)


def weight_dtype_problem(dtype: np.dtype) -> str | None:
    """Why a decoder weight may not have ``dtype``, or ``None`` when it may."""
    ok = dtype.fields is None and dtype.shape == () and (
        dtype.kind in "iu" or (dtype.kind == "f" and dtype.itemsize in (2, 4))
    )
    return None if ok else f"dtype {dtype} not allowed (float16, float32 or integers only)"



def le(arr: np.ndarray, dtype: Any = None) -> np.ndarray:
    """``arr`` as a contiguous little-endian array (of ``dtype`` if given)."""
    dt = np.dtype(dtype if dtype is not None else arr.dtype).newbyteorder("<")
    return np.array(arr, dtype=dt, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
