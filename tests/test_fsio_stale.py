"""Stale temporaries of atomic outputs: a run killed with kill -9 leaves one; the next run to the same
target removes it, and only it (never a live writer's, another target's, or a symlink)."""

from __future__ import annotations

import fcntl
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tascond_cli import fsio
from tascond_cli.fsio import atomic_dir, atomic_file

SRC = Path(__file__).resolve().parents[1] / "src"

# a writer that stops in the middle: prints its temporary, then waits for a line on stdin
CHILD = """
import sys
from pathlib import Path
from tascond_cli.fsio import atomic_dir, atomic_file
kind, target = sys.argv[1:3]
with (atomic_dir if kind == "dir" else atomic_file)(target, overwrite=True) as tmp:
    out = tmp / "data.txt" if kind == "dir" else tmp
    out.write_text("half")
    print(tmp, flush=True)
    sys.stdin.readline()
    out.write_text("child")
"""

KINDS = ["dir", "file"]


def _ctx(kind):
    return atomic_dir if kind == "dir" else atomic_file


def _write(kind: str, tmp: Path, text: str) -> None:
    (tmp / "data.txt" if kind == "dir" else tmp).write_text(text)


def _read(kind: str, path: Path) -> str:
    return (path / "data.txt" if kind == "dir" else path).read_text()


def _start_child(kind: str, target: Path) -> tuple[subprocess.Popen, Path]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", CHILD, kind, str(target)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)
    ready, _, _ = select.select([child.stdout], [], [], 20)
    line = child.stdout.readline() if ready else ""
    if not line:
        child.kill()
        child.wait()
        pytest.fail("the child writer did not start")
    return child, Path(line.strip())


def _stale(path: Path, kind: str = "dir") -> Path:
    """A temporary as a killed run leaves it: right name, nobody holding its lock."""
    if kind == "dir":
        path.mkdir()
        (path / "data.txt").write_text("stale")
    else:
        path.write_text("stale")
    return path


@pytest.mark.parametrize("kind", KINDS)
def test_the_next_run_removes_what_kill_9_left(tmp_path, kind):
    target = tmp_path / "out"
    child, tmp = _start_child(kind, target)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    assert tmp.name.startswith(".out.tmp-") and _read(kind, tmp) == "half"  # left behind
    with _ctx(kind)(target) as new:
        assert not tmp.exists()  # removed before the new temporary was made
        _write(kind, new, "new")
    assert _read(kind, target) == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_live_writers_temporary_is_kept(tmp_path, kind):
    target = tmp_path / "out"
    child, tmp = _start_child(kind, target)
    try:
        with _ctx(kind)(target, overwrite=True) as new:
            _write(kind, new, "parent")
        assert _read(kind, tmp) == "half" and _read(kind, target) == "parent"
    finally:
        child.communicate("go\n", timeout=20)
    assert child.returncode == 0
    assert _read(kind, target) == "child"  # the live writer finished normally
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("kind", KINDS)
def test_only_this_targets_temporaries_are_removed(tmp_path, kind):
    others = [
        ".out2.tmp-abc12345",  # another target
        ".out.tmp-b.tmp-abc12345",  # a temporary of the target "out.tmp-b"
        ".out.old-abc12345",  # not a temporary
        "out.tmp-abc12345",  # no leading dot
        ".out.tmp-",  # no suffix
        ".out.tmp-abc.12345",  # a suffix tempfile never makes
    ]
    for name in others:
        _stale(tmp_path / name)
    mine = [_stale(tmp_path / ".out.tmp-dir_1234"), _stale(tmp_path / ".out.tmp-file1234", "file")]
    with _ctx(kind)(tmp_path / "out") as new:
        _write(kind, new, "new")
    assert not any(p.exists() for p in mine)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*others, "out"])
    # and the other way round: the target "out.tmp-b" leaves "out"'s temporaries alone
    again = _stale(tmp_path / ".out.tmp-zz")
    with _ctx(kind)(tmp_path / "out.tmp-b") as new:
        _write(kind, new, "new")
    assert again.exists() and not (tmp_path / ".out.tmp-b.tmp-abc12345").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_symlinks_and_special_files_with_our_name_are_left_alone(tmp_path, kind):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("keep")
    links = [tmp_path / ".out.tmp-link_dir", tmp_path / ".out.tmp-link_file", tmp_path / ".out.tmp-dangling"]
    links[0].symlink_to(victim, target_is_directory=True)
    links[1].symlink_to(victim / "keep.txt")
    links[2].symlink_to(tmp_path / "nowhere")
    fifo = tmp_path / ".out.tmp-fifo"
    os.mkfifo(fifo)  # opening it would block: it must not even be opened
    with _ctx(kind)(tmp_path / "out") as new:
        _write(kind, new, "new")
    assert all(p.is_symlink() for p in links) and fifo.exists()
    assert (victim / "keep.txt").read_text() == "keep"


def test_removing_a_stale_folder_does_not_follow_symlinks_inside(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("keep")
    stale = _stale(tmp_path / ".out.tmp-deep1234")
    (stale / "sub").mkdir()
    (stale / "sub" / "f.txt").write_text("x")
    (stale / "link").symlink_to(victim, target_is_directory=True)
    with atomic_dir(tmp_path / "out"):
        pass
    assert not stale.exists() and not stale.is_symlink()
    assert (victim / "keep.txt").read_text() == "keep"


@pytest.mark.parametrize("kind", KINDS)
def test_the_lock_lives_as_long_as_the_temporary(tmp_path, kind):
    target = tmp_path / "out"
    flags = os.O_RDONLY | (os.O_DIRECTORY if kind == "dir" else 0)
    with _ctx(kind)(target) as tmp:
        _write(kind, tmp, "new")  # writing through another descriptor keeps the lock
        fd = os.open(tmp, flags)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    fd = os.open(target, flags)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released after the rename
    finally:
        os.close(fd)
    if kind == "dir":
        assert [p.name for p in target.iterdir()] == ["data.txt"]  # no lock file in the output


def test_a_temporary_taken_by_a_concurrent_cleanup_is_replaced(tmp_path, monkeypatch):
    """Between mkdtemp and our lock, another run's cleanup may lock the new temporary (and then
    remove it), or have removed it already: either way a fresh temporary is made."""
    made = []
    real = fsio.tempfile.mkdtemp
    held = []

    def mkdtemp(**kw):
        path = real(**kw)
        made.append(Path(path))
        if len(made) == 1:  # a cleanup holds it
            held.append(os.open(path, os.O_RDONLY | os.O_DIRECTORY))
            fcntl.flock(held[0], fcntl.LOCK_EX | fcntl.LOCK_NB)
        elif len(made) == 2:  # a cleanup removed it already
            os.rmdir(path)
        return path

    monkeypatch.setattr(fsio.tempfile, "mkdtemp", mkdtemp)
    try:
        with atomic_dir(tmp_path / "out") as tmp:
            (tmp / "data.txt").write_text("new")
        assert tmp == made[2] and (tmp_path / "out" / "data.txt").read_text() == "new"
        assert made[0].exists()  # left to the cleanup that holds it
    finally:
        for fd in held:
            os.close(fd)


@pytest.mark.parametrize("kind", KINDS)
def test_without_flock_nothing_is_cleaned_and_writing_still_works(tmp_path, kind, monkeypatch):
    monkeypatch.setattr(fsio, "fcntl", None)
    stale = _stale(tmp_path / ".out.tmp-abc12345", kind)
    with _ctx(kind)(tmp_path / "out") as new:
        _write(kind, new, "new")
    assert stale.exists() and _read(kind, tmp_path / "out") == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.tmp-abc12345", "out"]


def test_a_cleanup_problem_never_raises(tmp_path, monkeypatch):
    _stale(tmp_path / ".out.tmp-abc12345")

    def boom(*a, **kw):
        raise PermissionError("refused")

    monkeypatch.setattr(fsio.shutil, "rmtree", boom)
    with atomic_dir(tmp_path / "out") as new:
        (new / "data.txt").write_text("new")
    assert (tmp_path / ".out.tmp-abc12345").exists() and (tmp_path / "out" / "data.txt").exists()
