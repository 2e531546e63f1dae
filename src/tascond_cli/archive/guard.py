"""Parsing untrusted HDF5 in a watchdog: a forked child with a time and memory limit (docs/format.md, 2.3).

libhdf5 is native code: a crafted payload can make it loop forever (a one-bit change in an object
header was found to do so) or crash, and no Python timeout reaches into it. So the reader never runs
libhdf5 on an archive's payload in its own process. :func:`guarded_extract` forks; the child parses the
payload (the parent's memory is shared copy-on-write, nothing is sent to it) under an address-space
limit and sends back plain values through a pipe, in a small self-describing encoding (a JSON header and
raw little-endian array bytes; never pickle, so a subverted child cannot run code in the parent). The
parent reads with a deadline that grows with the payload's size and kills the child when it passes.

Every outcome is an :class:`ArchiveError` or the values: a child that runs out of time ("took longer
than ... to parse"), dies of a signal (libhdf5 crashed) or runs out of memory is a refused archive.

Where ``os.fork`` does not exist (Windows) the payload is parsed in-process, without the watchdog.
"""

from __future__ import annotations

import json
import math
import os
import select
import signal
import struct
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from tascond_cli.archive.model import ArchiveError

__all__ = ["CAN_FORK", "PARSE_MEMORY_BASE", "PARSE_SECONDS_BASE", "PARSE_SECONDS_PER_MIB", "guarded_extract", "parse_deadline"]

CAN_FORK = hasattr(os, "fork") and sys.platform != "win32"
"""Whether payloads are parsed in a watchdog child (POSIX) or in-process."""

PARSE_SECONDS_BASE = 10.0
"""Time every payload may take to parse, in seconds, before it is refused as a hang."""
PARSE_SECONDS_PER_MIB = 0.2
"""Further time per MiB of payload (a legitimate parse reads far faster than 5 MiB/s)."""
PARSE_MEMORY_BASE = 512 * 2**20
"""Memory the parsing child may allocate beyond four times the payload's size."""

_LEN = struct.Struct("<Q")
_DTYPES = {np.dtype(t).str: np.dtype(t) for t in ("i1", "u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "<f2", "<f4", "<f8")}
_MAX_NDIM = 8

Value = Any  # str, list[str], None, np.ndarray or dict[str, np.ndarray]


def parse_deadline(payload_size: int) -> float:
    """Seconds a payload of ``payload_size`` bytes may take to parse."""
    return PARSE_SECONDS_BASE + PARSE_SECONDS_PER_MIB * payload_size / 2**20


# -- the encoding between child and parent ---------------------------------------------------------------

def _array_meta(arr: np.ndarray, blobs: list[bytes]) -> dict[str, Any]:
    arr = np.asarray(arr)
    le = np.array(arr, dtype=arr.dtype.newbyteorder("<") if arr.dtype.byteorder not in "|" else arr.dtype, order="C")
    blobs.append(le.tobytes())
    return {"t": "arr", "dtype": le.dtype.str, "shape": list(le.shape), "n": le.nbytes}


def encode(fields: dict[str, Value]) -> bytes:
    """``fields`` as bytes: an 8-byte length, a JSON header, then every array's bytes in header order."""
    blobs: list[bytes] = []
    meta: dict[str, Any] = {}
    for name, value in fields.items():
        if value is None:
            meta[name] = {"t": "none"}
        elif isinstance(value, str):
            meta[name] = {"t": "str", "v": value}
        elif isinstance(value, list):
            meta[name] = {"t": "strs", "v": [str(s) for s in value]}
        elif isinstance(value, dict):
            meta[name] = {"t": "arrs", "v": {k: _array_meta(v, blobs) for k, v in value.items()}}
        else:
            meta[name] = _array_meta(value, blobs)
    head = json.dumps({"status": "ok", "fields": meta}, ensure_ascii=True).encode("ascii")
    return _LEN.pack(len(head)) + head + b"".join(blobs)


def encode_error(kind: str, message: str) -> bytes:
    head = json.dumps({"status": kind, "message": message}, ensure_ascii=True).encode("ascii")
    return _LEN.pack(len(head)) + head


class _Blobs:
    def __init__(self, buf: memoryview) -> None:
        self.buf, self.pos = buf, 0

    def array(self, meta: Any) -> np.ndarray:
        if not isinstance(meta, dict) or meta.get("t") != "arr":
            raise ValueError("bad array entry")
        dtype = _DTYPES.get(meta.get("dtype"))  # type: ignore[arg-type]
        shape, n = meta.get("shape"), meta.get("n")
        if dtype is None or not isinstance(shape, list) or len(shape) > _MAX_NDIM or not isinstance(n, int):
            raise ValueError("bad array entry")
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in shape):
            raise ValueError("bad array shape")
        if math.prod(shape) * dtype.itemsize != n or n > len(self.buf) - self.pos:
            raise ValueError("array size does not match its bytes")
        arr = np.frombuffer(self.buf[self.pos : self.pos + n], dtype=dtype).reshape(shape)
        self.pos += n
        return arr.astype(dtype.newbyteorder("="), copy=True)


def decode(buf: bytes) -> dict[str, Value]:
    """The fields :func:`encode` wrote; an :class:`ArchiveError` for an error the child reported.

    Every size is checked against the bytes present; any inconsistency is a ValueError.
    """
    if len(buf) < _LEN.size:
        raise ValueError("short message")
    (head_len,) = _LEN.unpack_from(buf)
    if head_len > len(buf) - _LEN.size:
        raise ValueError("short message")
    head = json.loads(bytes(buf[_LEN.size : _LEN.size + head_len]).decode("ascii"))
    if not isinstance(head, dict):
        raise ValueError("bad header")
    status = head.get("status")
    if status != "ok":
        message = head.get("message")
        message = message if isinstance(message, str) else ""
        if status == "archive":
            raise ArchiveError(message)
        if status == "memory":
            raise ArchiveError("parsing the HDF5 content ran out of memory")
        raise ArchiveError(f"malformed HDF5 content ({message})")
    fields = head.get("fields")
    if not isinstance(fields, dict):
        raise ValueError("bad header")
    blobs = _Blobs(memoryview(buf)[_LEN.size + head_len :])
    out: dict[str, Value] = {}
    for name, meta in fields.items():
        t = meta.get("t") if isinstance(meta, dict) else None
        if t == "none":
            out[name] = None
        elif t == "str" and isinstance(meta.get("v"), str):
            out[name] = meta["v"]
        elif t == "strs" and isinstance(meta.get("v"), list) and all(isinstance(s, str) for s in meta["v"]):
            out[name] = meta["v"]
        elif t == "arrs" and isinstance(meta.get("v"), dict):
            out[name] = {str(k): blobs.array(v) for k, v in meta["v"].items()}
        else:
            out[name] = blobs.array(meta)
    if blobs.pos != len(blobs.buf):
        raise ValueError("trailing bytes")
    return out


# -- the watchdog -----------------------------------------------------------------------------------------

def _vm_size() -> int | None:
    """This process's virtual memory size in bytes (Linux), or ``None``."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _limit_memory(extra: int) -> None:
    try:
        import resource
    except ImportError:  # pragma: no cover - POSIX without the module
        return
    base = _vm_size()
    if base is None:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    want = base + extra
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    if soft == resource.RLIM_INFINITY or want < soft:
        try:
            resource.setrlimit(resource.RLIMIT_AS, (want, hard))
        except (ValueError, OSError):
            pass


def _child(extract: Callable[[Any], dict[str, Value]], payload: Any, fd: int, memory: int) -> None:
    """Runs in the forked child; never returns."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        import faulthandler

        faulthandler.disable()  # a crash is reported by the parent, in one line
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)  # nor may libhdf5 print its error stacks on the user's terminal
        os.close(devnull)
        _limit_memory(memory)
        try:
            msg = encode(extract(payload))
        except ArchiveError as e:
            msg = encode_error("archive", str(e))
        except MemoryError:
            msg = encode_error("memory", "")
        except Exception as e:  # noqa: BLE001 - h5py reports malformed files with many exception types
            msg = encode_error("other", f"{type(e).__name__}: {e}")
        view = memoryview(msg)
        while view:
            n = os.write(fd, view[: 1 << 20])
            view = view[n:]
    except BaseException:  # noqa: BLE001 - nothing may escape the child
        code = 1
    finally:
        os._exit(code)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def guarded_extract(
    extract: Callable[[Any], dict[str, Value]], payload: Any, *, timeout: float | None = None,
    size: int | None = None,
) -> dict[str, Value]:
    """``extract(payload)`` run in a watchdog child: its fields, or an :class:`ArchiveError`.

    ``payload`` is the payload's bytes, or any object ``extract`` reads it through (a lazily decompressed
    chunked payload) whose size in bytes is then ``size``. ``timeout`` defaults to :func:`parse_deadline`
    of the payload's size. The child may allocate ``4 * size + PARSE_MEMORY_BASE`` bytes beyond what the
    parent had; what it sends back is bounded the same way.
    """
    if not CAN_FORK:
        return extract(payload)
    size = len(payload) if size is None else size
    limit = parse_deadline(size) if timeout is None else float(timeout)
    memory = 4 * size + PARSE_MEMORY_BASE
    max_reply = 8 * size + (1 << 20)
    r, w = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+ warns about fork with threads
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child (coverage does not follow it)
        os.close(r)
        _child(extract, payload, w, memory)
    os.close(w)
    parts: list[bytes] = []
    got = 0
    done = False
    try:
        deadline = time.monotonic() + limit
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ArchiveError(
                    f"the HDF5 content did not parse within {limit:.0f} s (a malformed file can make libhdf5 "
                    "loop); refused"
                )
            ready, _, _ = select.select([r], [], [], min(left, 1.0))
            if not ready:
                continue
            chunk = os.read(r, 1 << 20)
            if not chunk:
                break
            got += len(chunk)
            if got > max_reply:
                raise ArchiveError("malformed HDF5 content (its parse produced more data than the file holds)")
            parts.append(chunk)
        _, status = os.waitpid(pid, 0)
        done = True
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            if sig == signal.SIGKILL:
                raise ArchiveError("parsing the HDF5 content ran out of memory (the parser was killed)")
            raise ArchiveError(f"malformed HDF5 content (the HDF5 library crashed with signal {sig})")
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0 or not parts:
            raise ArchiveError("malformed HDF5 content (the parser failed)")
        try:
            return decode(b"".join(parts))
        except (ValueError, UnicodeDecodeError, TypeError, AttributeError):
            raise ArchiveError("malformed HDF5 content (the parser's reply is inconsistent)") from None
    finally:
        os.close(r)
        if not done:
            _kill(pid)
            os.waitpid(pid, 0)
