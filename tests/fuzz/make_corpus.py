"""Regenerate ``tests/fuzz/corpus/``: minimal hostile archives, one per way a reader can be attacked.

    python3 tests/fuzz/make_corpus.py [--out tests/fuzz/corpus] [--search]

Every file is made from the tiny seed archives of :mod:`fuzz.mutate` (``mean``, ``pca``, ``blind``),
so the same library versions give the same bytes. Each must be refused by ``tascond info`` and
``tascond restore`` with one error line (``test_corpus.py``):

``hang.tcd``
    A ``pca`` archive whose HDF5 payload has one bit flipped (:data:`HANG_FLIP`), re-wrapped in a valid
    header and checksummed zstd frame: libhdf5 loops forever on it (reading ``/settings``). The script
    confirms the hang by parsing the payload with h5py in a subprocess that must not finish within
    :data:`HANG_SECONDS`. The flip depends on libhdf5's version and on the exact seed bytes: if the
    recorded one no longer hangs (or with ``--search``), single-bit flips of the first
    :data:`SEARCH_BYTES` bytes of the ``mean`` and ``pca`` payloads are tried in a fixed pseudo-random
    order until one hangs; update :data:`HANG_FLIP` with the one printed.
``inf_pca.tcd``
    A ``pca`` (``linear``) archive with ``inf`` in ``/decoder/weights/mean``.
``huge_pca.tcd``
    A ``pca`` archive with every value finite: components multiplied by 1e36 (stored as float32) and
    codes by 1000 (float16, at most 751), so that ``code @ components`` overflows float32 to infinity.
``length_bomb.tcd``
    A ``mean`` (``identity``) archive whose 8 segments each last 2**31 - 1 frames, with consistent
    ``/videos/frames``: valid per section 4.4, but its restore would be 4 * 4 * 8 * (2**31 - 1) bytes
    (about 256 GiB).
``dim_bomb.tcd``
    A ``blind`` (``zeros``: no weights to contradict it) archive with ``/settings`` ``dim`` 10**12:
    restoring it would write 4 * 10**12 bytes per frame.
``zstd_bomb.tcd``
    A header declaring 6 GiB of content and a valid zstd frame (content size and checksum recorded)
    that expands to 6 GiB of zeros, in about 200 KB.
``seed_text.tcd``
    A ``tascond`` (``generator``, with a residual model) archive whose ``/settings`` ``seed`` is the
    string ``"linear"``: found by the 10,000-mutant run (``hdf5-3070``); it read, then its restore
    failed with a ValueError deep in the noise.
``ips_overflow.tcd``
    A ``tca`` (``random``) archive whose ``/settings`` ``ips`` is ``2**63``: found by the same run
    (``hdf5-9719``); its restore failed with an OverflowError in the chunk rule.
``seed_negative.tcd``
    A ``tca`` (``random``) archive whose ``/settings`` ``seed`` is ``-1``: found by the 100,000-mutant
    run (``hdf5-21311``); its restore failed with a ValueError in NumPy's seeding.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the fuzz package, conftest

from fuzz.mutate import Seed, build_seeds, load_seeds, rewrap  # noqa: E402
from tascond_cli.archive import HEADER, MAGIC  # noqa: E402

CORPUS = Path(__file__).resolve().parent / "corpus"
HANG_FLIP: tuple[str, int, int] = ("pca", 468, 2)
"""``(seed, payload byte, bit)`` of the single-bit flip that makes libhdf5 hang (h5py 3.16, HDF5 2.0.0)."""
HANG_SECONDS = 10.0
"""A parse of a seed-sized payload takes milliseconds: one that has not finished after this hangs."""
SEARCH_BYTES = 4096
LEVEL = 19
ZSTD_BOMB_BYTES = 6 * 2**30


def _edit(seed: Seed, edit) -> bytes:
    """``seed`` with ``edit(h5py_file)`` applied to its payload, re-wrapped validly."""
    bio = io.BytesIO(seed.payload)
    with h5py.File(bio, "r+") as f:
        edit(f)
    return rewrap(bio.getvalue(), seed.version, LEVEL)


def _replace(f: h5py.File, path: str, data: np.ndarray) -> None:
    del f[path]
    f.create_dataset(path, data=data, track_times=False)


def inf_pca(seeds: dict[str, Seed]) -> bytes:
    def edit(f: h5py.File) -> None:
        mean = np.array(f["/decoder/weights/mean"][()])
        mean[0] = np.inf
        _replace(f, "/decoder/weights/mean", mean)

    return _edit(seeds["pca"], edit)


def huge_pca(seeds: dict[str, Seed]) -> bytes:
    def edit(f: h5py.File) -> None:
        comp = np.array(f["/decoder/weights/components"][()], dtype=np.float32) * np.float32(1e36)
        codes = np.array(f["/codes"][()], dtype=np.float32) * 1000
        assert np.isfinite(comp).all() and np.abs(codes).max() < 65504
        _replace(f, "/decoder/weights/components", comp)
        _replace(f, "/codes", codes.astype(np.float16))
        with np.errstate(over="ignore"):
            assert not np.isfinite(codes.astype(np.float16).astype(np.float32) @ comp).all()  # it overflows

    return _edit(seeds["pca"], edit)


def length_bomb(seeds: dict[str, Seed]) -> bytes:
    def edit(f: h5py.File) -> None:
        offsets = np.array(f["/videos/segment_offsets"][()])
        lengths = np.full(f["/segments/lengths"].shape, 2**31 - 1, dtype=np.int64)
        _replace(f, "/segments/lengths", lengths)
        _replace(f, "/videos/frames", np.array([lengths[a:b].sum() for a, b in zip(offsets[:-1], offsets[1:])]))

    return _edit(seeds["mean"], edit)


def dim_bomb(seeds: dict[str, Seed]) -> bytes:
    def edit(f: h5py.File) -> None:
        settings = json.loads(f["/settings"][()])
        settings["dim"] = 10**12
        text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
        del f["/settings"]
        f.create_dataset("/settings", data=text, dtype=h5py.string_dtype("utf-8"), track_times=False)

    return _edit(seeds["blind"], edit)


def seed_text(seeds: dict[str, Seed]) -> bytes:
    def edit(f: h5py.File) -> None:
        settings = json.loads(f["/settings"][()])
        settings["seed"] = "linear"
        text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
        del f["/settings"]
        f.create_dataset("/settings", data=text, dtype=h5py.string_dtype("utf-8"), track_times=False)

    return _edit(seeds["tascond"], edit)


def ips_overflow(seeds: dict[str, Seed]) -> bytes:
    def edit(f: h5py.File) -> None:
        settings = json.loads(f["/settings"][()])
        settings["ips"] = 2**63
        text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
        del f["/settings"]
        f.create_dataset("/settings", data=text, dtype=h5py.string_dtype("utf-8"), track_times=False)

    return _edit(seeds["tca"], edit)


def seed_negative(seeds: dict[str, Seed]) -> bytes:
    def edit(f: h5py.File) -> None:
        settings = json.loads(f["/settings"][()])
        settings["seed"] = -1
        text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
        del f["/settings"]
        f.create_dataset("/settings", data=text, dtype=h5py.string_dtype("utf-8"), track_times=False)

    return _edit(seeds["tca"], edit)


def zstd_bomb(size: int = ZSTD_BOMB_BYTES) -> bytes:
    """A valid container whose frame holds ``size`` zero bytes (streamed: nothing that size in memory)."""
    cobj = zstandard.ZstdCompressor(level=1, write_checksum=True, write_content_size=True).compressobj(size=size)
    zeros = bytes(1 << 24)
    parts = [cobj.compress(zeros) for _ in range(size // len(zeros))]
    parts.append(cobj.compress(bytes(size % len(zeros))))
    parts.append(cobj.flush())
    frame = b"".join(parts)
    return HEADER.pack(MAGIC, 1, 0, size, len(frame)) + frame


def flip(seed: Seed, offset: int, bit: int) -> bytes:
    """``seed`` with one bit of its payload flipped, re-wrapped validly."""
    payload = bytearray(seed.payload)
    payload[offset] ^= 1 << bit
    return rewrap(bytes(payload), seed.version, LEVEL)


# -- hangs: parsed in a child process, which the parent kills when it takes too long ---------------------

_PARSE_CHILD = r"""
import io, sys, h5py, zstandard
def parse(data):
    payload = zstandard.ZstdDecompressor().decompress(data[28:])
    try:
        f = h5py.File(io.BytesIO(payload), "r")
    except Exception:
        return
    paths = ["/settings", "/classes/names", "/videos/names", "/videos/segment_offsets", "/videos/frames",
             "/segments/labels", "/segments/lengths", "/segments/code_offsets", "/codes", "/decoder/kind",
             "/decoder/config"]
    for p in paths:
        try:
            f[p][()]
        except Exception:
            pass
    def visit(name, obj):
        try:
            dict(obj.attrs)
            if isinstance(obj, h5py.Dataset):
                obj[()]
        except Exception:
            pass
    try:
        f.visititems(visit)
    except Exception:
        pass
for line in sys.stdin:
    parse(open(line.strip(), "rb").read())
    print("done", flush=True)
"""


class _Parser:
    """A child process that parses archives (every object, as a reader would) and says when it is done."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _PARSE_CHILD], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def hangs(self, path: Path, seconds: float) -> bool:
        """Whether parsing ``path`` takes longer than ``seconds`` (the child is then killed)."""
        import selectors

        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{path}\n")
        self.proc.stdin.flush()
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if sel.select(timeout=seconds) and self.proc.stdout.readline().strip() == "done":
                return False
        self.close()
        return True

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def hangs(data: bytes, seconds: float = HANG_SECONDS) -> bool:
    """Whether libhdf5 (through h5py) fails to parse the archive ``data`` within ``seconds``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "candidate.tcd"
        path.write_bytes(data)
        parser = _Parser()
        try:
            return parser.hangs(path, seconds)
        finally:
            parser.close()


def search_hang(seeds: dict[str, Seed], names=("mean", "pca"), limit: int = 20_000,
                quick_seconds: float = 3.0) -> tuple[str, int, int] | None:
    """The first single-bit payload flip (in a fixed pseudo-random order) that makes libhdf5 hang."""
    candidates = [(n, o, b) for n in names for o in range(min(SEARCH_BYTES, len(seeds[n].payload))) for b in range(8)]
    random.Random("tascond-fuzz/hang").shuffle(candidates)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "candidate.tcd"
        parser = _Parser()
        try:
            for k, (name, offset, bit) in enumerate(candidates[:limit]):
                data = flip(seeds[name], offset, bit)
                path.write_bytes(data)
                if parser.hangs(path, quick_seconds):
                    print(f"  candidate {k}: {name} byte {offset} bit {bit} took over {quick_seconds:g} s", flush=True)
                    if hangs(data):
                        return name, offset, bit
                    parser = _Parser()
        finally:
            parser.close()
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=CORPUS, help="corpus folder")
    parser.add_argument("--search", action="store_true", help="search a hanging flip even if HANG_FLIP hangs")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tascond-corpus-") as tmp:
        build_seeds(tmp, ("blind", "mean", "pca", "tascond", "tca"))
        seeds = {s.name: s for s in load_seeds(tmp)}
    files = {
        "inf_pca.tcd": inf_pca(seeds),
        "huge_pca.tcd": huge_pca(seeds),
        "length_bomb.tcd": length_bomb(seeds),
        "dim_bomb.tcd": dim_bomb(seeds),
        "zstd_bomb.tcd": zstd_bomb(),
        "seed_text.tcd": seed_text(seeds),
        "ips_overflow.tcd": ips_overflow(seeds),
        "seed_negative.tcd": seed_negative(seeds),
    }
    t0 = time.monotonic()
    found = HANG_FLIP if not args.search and hangs(flip(seeds[HANG_FLIP[0]], *HANG_FLIP[1:])) else None
    if found is None:
        print(f"searching a single-bit payload flip that makes libhdf5 hang (HANG_FLIP = {HANG_FLIP})", flush=True)
        found = search_hang(seeds)
        if found is None:
            print("no hanging flip found: hang.tcd not written", file=sys.stderr)
            return 1
        print(f"found: set HANG_FLIP = {found!r} ({time.monotonic() - t0:.0f} s)")
    files["hang.tcd"] = flip(seeds[found[0]], *found[1:])
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in sorted(files.items()):
        (args.out / name).write_bytes(data)
        print(f"{args.out / name}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
