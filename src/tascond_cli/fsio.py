"""Atomic output: write under a temporary name, rename into place on success.

A failed or interrupted run never leaves a partial file or folder at the target
path, and an existing target is only replaced once the new one is complete.

While a temporary (``.NAME.tmp-XXXXXXXX`` beside the target) is being written,
its process holds an exclusive ``flock`` on it (on the folder's own descriptor,
so nothing extra appears in the output). A run killed with ``kill -9`` loses the
lock, and the next run to the same target removes such stale temporaries: those
whose name it would have generated and that it can lock. Where ``flock`` is
unavailable, nothing is locked and nothing is cleaned up.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from tascond_cli.errors import TascondError

try:
    import fcntl
except ImportError:  # not POSIX: no advisory locks, no cleanup of stale temporaries
    fcntl = None  # type: ignore[assignment]

_LOCK_ATTEMPTS = 10


class _Gone(Exception):
    """A new temporary vanished before it could be locked (a concurrent cleanup took it)."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _check_target(target: Path, overwrite: bool) -> None:
    if target.exists() and not overwrite:
        raise TascondError(f"{target}: already exists (pass --force to replace it)")
    if not target.parent.is_dir():
        raise TascondError(f"{target.parent}: no such folder")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _replace(tmp: Path, target: Path) -> None:
    """Move ``tmp`` to ``target``; an existing target is removed only afterwards."""
    if target.exists() or target.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.rmdir(old)
        os.replace(target, old)
        os.replace(tmp, target)
        _remove(old)
    else:
        os.replace(tmp, target)


def _lock(fd: int) -> bool | None:
    """Try an exclusive ``flock`` on ``fd`` without waiting: True got it, False someone holds it,
    None locks are unavailable here (not POSIX, or the filesystem refuses them)."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return None
    return True


def _is_at(fd: int, path: Path) -> bool:
    """Whether ``path`` (not followed) is still the very file or folder open as ``fd``."""
    try:
        here = os.lstat(path)
    except OSError:
        return False
    held = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino)


def _tmp_pattern(target: Path) -> re.Pattern[str]:
    """Exactly the names ``tempfile`` generates for ``target``'s temporaries (its suffixes are
    ``[a-z0-9_]``), so another target's temporaries never match, whatever the two names."""
    return re.compile(rf"\.{re.escape(target.name)}\.tmp-[A-Za-z0-9_]+")


def _remove_if_stale(path: Path) -> None:
    """Remove ``path`` if it is a real folder or regular file that nobody holds locked."""
    mode = os.lstat(path).st_mode
    if stat.S_ISDIR(mode):
        flags = os.O_RDONLY | os.O_DIRECTORY
    elif stat.S_ISREG(mode):
        flags = os.O_RDONLY | os.O_NONBLOCK
    else:  # a symlink, fifo, socket or device with our name: not ours
        return
    fd = os.open(path, flags | os.O_NOFOLLOW)
    try:
        # locked, then still the same thing at that name: a live writer that renamed it away
        # and released its lock in between must not cost its successor at the same name
        if not _lock(fd) or not _is_at(fd, path):
            return
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            shutil.rmtree(path, ignore_errors=True)  # does not follow symlinks, at the top or inside
        elif stat.S_ISREG(os.fstat(fd).st_mode):
            os.unlink(path)
    finally:
        os.close(fd)  # only after the removal: a writer locking it meanwhile finds it gone


def _clean_stale(target: Path) -> None:
    """Remove the temporaries of ``target`` that killed runs left behind. Never raises."""
    if fcntl is None:
        return
    pattern = _tmp_pattern(target)
    try:
        with os.scandir(target.parent) as entries:
            names = [e.name for e in entries if pattern.fullmatch(e.name)]
    except OSError:
        return
    for name in names:
        with contextlib.suppress(OSError):
            _remove_if_stale(target.parent / name)


def _locked_temp(target: Path, make: Callable[[], tuple[Path, int | None]]) -> tuple[Path, int | None]:
    """A fresh temporary from ``make`` and the descriptor that holds its lock (None: no locks here).

    Another run's cleanup may lock a new temporary between its creation and our lock, and then
    removes it; so a temporary counts only once we hold its lock and it is still at its name.
    """
    for _ in range(_LOCK_ATTEMPTS):
        try:
            tmp, fd = make()
        except _Gone:
            continue
        if fd is None:
            return tmp, None
        got = _lock(fd)
        if got is None:
            os.close(fd)
            return tmp, None
        if got and _is_at(fd, tmp):
            return tmp, fd
        os.close(fd)  # the cleanup that holds or held it removes it
    raise TascondError(f"{target}: could not lock a temporary beside it")


def _unlock(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


@contextlib.contextmanager
def atomic_dir(target: Path | str, overwrite: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``target``; rename it to ``target`` on success."""
    target = Path(target)
    _check_target(target, overwrite)
    _clean_stale(target)

    def make() -> tuple[Path, int | None]:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        if fcntl is None:
            return tmp, None
        try:  # the folder's own descriptor carries the lock: no lock file in the output
            return tmp, os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise _Gone from None
        except OSError:
            return tmp, None

    tmp, lock = _locked_temp(target, make)
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; the result should not be
        yield tmp
        _replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise
    finally:
        _unlock(lock)  # after the rename or the removal


@contextlib.contextmanager
def atomic_file(target: Path | str, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary file path beside ``target``; rename it to ``target`` on success."""
    target = Path(target)
    _check_target(target, overwrite)
    _clean_stale(target)

    def make() -> tuple[Path, int | None]:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)
        if fcntl is None:
            os.close(fd)
            return Path(name), None
        return Path(name), fd  # flock belongs to this descriptor: writes through others keep it

    tmp, lock = _locked_temp(target, make)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; the result should not be
        yield tmp
        _replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise
    finally:
        _unlock(lock)  # after the rename or the removal
