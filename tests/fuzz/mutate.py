"""Mutants of small valid archives: three families, each a deterministic function of (seeds, index).

Seeds are tiny valid archives (a few KB) of a tiny synthetic dataset, one per decoder kind:
``mean`` (``identity``), ``pca`` (``linear``), ``blind`` (``zeros``), ``lowrank`` (``lowrank``, int8
codes, residual noise), ``tascond`` (``generator``, shared codes, residual noise) and ``tca``
(``random``). :func:`build_seeds` writes them, :func:`load_seeds` reads them back; a fuzz run keeps its
seeds in its work folder, so that a mutant index always names the same mutant within that run.

Mutant ``i`` of a family starts from seed ``i % len(seeds)`` (seeds in name order) and draws everything
else from ``random.Random("tascond-fuzz/<family>/<i>")``. The families:

``byte``
    Byte-level mutations of the whole ``.tcd`` file, header included: bit flips, bytes set to 0x00,
    0xff, 0x7f or 0x80, header integers set to boundary values, truncation, insertion, deletion,
    chunk duplication, trailing data. One to four of them. Most of these break the container (and the
    zstd checksum), so they test the container checks of docs/format.md section 2.1.
``payload``
    The HDF5 payload of a seed with one to eight bytes flipped or set, mostly in its first 4 KiB (where
    the superblock and object headers of a small HDF5 file live), re-wrapped in a valid header and a
    valid checksummed zstd frame: everything reaches libhdf5.
``hdf5``
    Structured mutations made with h5py, re-wrapped validly: a dataset's values replaced (inf, NaN,
    huge, negative, boundary integers), float weights and codes scaled by 1e36, segment lengths up to
    2**31 - 1 with consistent frame counts, a huge ``dim``, edited ``/settings`` and
    ``/decoder/config`` JSON, hostile strings (paths, NUL, newlines, invalid UTF-8), wrong dtypes and
    shapes, missing and extra objects, soft, external and cyclic links, chunked, compressed, compact,
    unwritten and externally stored datasets, odd root attributes, other decoder kinds.
``chunk``
    The chunked container of format 1.4 (docs/format.md section 2.2): the seed's payload (unchanged, or
    a ``payload`` or ``hdf5`` mutant's) in chunks of 4 KiB, then index fields set to boundary values
    (mostly with the index's CRC made right, so the lie reaches the entry checks) and byte mutations.
    The worker reads these both whole and lazily (``open_archive``), and restores each.

Every mutant comes with a one-line description (``Mutant.what``) of what was done, for triage.
Importing this module does not import torch (only :func:`build_seeds` does).
"""

from __future__ import annotations

import io
import json
import math
import random
import struct
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import zstandard

from tascond_cli.archive import HEADER_SIZE, read_version, wrap_payload, wrap_payload_chunked

__all__ = [
    "FAMILIES",
    "SEED_NAMES",
    "Mutant",
    "Raw",
    "Seed",
    "build_seeds",
    "load_seeds",
    "mutate",
    "payload_of",
    "rewrap",
]

FAMILIES: tuple[str, ...] = ("byte", "payload", "hdf5", "chunk")
"""The mutation families, in the order runs and reports list them."""

SEED_NAMES: tuple[str, ...] = ("blind", "lowrank", "mean", "pca", "tascond", "tca")
"""The seed archives :func:`build_seeds` makes (a method name each; see the module docstring)."""

ZSTD_LEVEL = 3
"""Level of the re-wrapped frames (any level is valid; a low one keeps mutants fast)."""

PAYLOAD_HEAD = 4096
"""The payload family puts most of its changes in these first bytes (HDF5 metadata)."""

WRITER_VERSION = "fuzz"
"""Recorded as the seeds' writer, so that they do not change with tascond's version."""


@dataclass(frozen=True)
class Seed:
    """A valid archive to mutate: its file bytes, header version and decompressed HDF5 payload."""

    name: str
    data: bytes
    version: tuple[int, int]
    payload: bytes


@dataclass(frozen=True)
class Mutant:
    """One mutant: ``data`` is a whole ``.tcd`` file; ``what`` says how it was made."""

    family: str
    index: int
    seed: str
    data: bytes
    what: str


# --------------------------------------------------------------------------------------------- seeds


def _seed_configs() -> dict[str, tuple[str, object]]:
    from tascond_cli.methods import Config

    base = Config(device="cpu")
    gen = base.with_(generator__steps=5, generator__hidden=8, generator__latent=4, generator__ips=2,
                     inversion__iters=2)
    return {
        "blind": ("blind", base),
        "lowrank": ("lowrank", base.with_(lowrank__dim=2)),
        "mean": ("mean", base),
        "pca": ("pca", base.with_(storage__pca_dim=2)),
        "tascond": ("tascond", gen.with_(storage__residual=True)),
        "tca": ("tca", gen),
    }


def build_seeds(folder: Path | str, names: tuple[str, ...] = SEED_NAMES) -> list[Path]:
    """Write the seed archives ``<name>.tcd`` to ``folder`` (made if needed); return their paths.

    The dataset is ``make_tiny_dataset`` of ``tests/conftest.py`` with 2 training videos of 4-d features,
    so each seed is 1 to 4 KB. Same library versions, same bytes.
    """
    from conftest import make_tiny_dataset  # tests/ is on sys.path (see the package docstring)
    from tascond_cli.archive import archive_bytes
    from tascond_cli.methods import make_baseline

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    configs = _seed_configs()
    paths = []
    with tempfile.TemporaryDirectory(prefix="tascond-fuzz-seeds-") as tmp:
        data = make_tiny_dataset(Path(tmp) / "data", n_train=2, n_test=1, dim=4, seed=0)
        for name in names:
            method, config = configs[name]
            archive = make_baseline(method, data, config).archive
            path = folder / f"{name}.tcd"
            path.write_bytes(archive_bytes(archive, writer_version=WRITER_VERSION))
            paths.append(path)
    return paths


def payload_of(data: bytes) -> bytes:
    """The HDF5 payload of a valid archive's bytes (its zstd frame, decompressed)."""
    return zstandard.ZstdDecompressor().decompress(data[HEADER_SIZE:])


def rewrap(payload: bytes, version: tuple[int, int], level: int = ZSTD_LEVEL) -> bytes:
    """A valid container (header, checksummed frame) around ``payload``."""
    return wrap_payload(payload, version=version, level=level)


def load_seeds(folder: Path | str) -> list[Seed]:
    """The seeds in ``folder`` (every ``*.tcd``), in name order."""
    seeds = []
    for path in sorted(Path(folder).glob("*.tcd")):
        data = path.read_bytes()
        seeds.append(Seed(path.stem, data, read_version(data), payload_of(data)))
    if not seeds:
        raise FileNotFoundError(f"{folder}: no seed archives (*.tcd)")
    return seeds


def mutate(family: str, seeds: list[Seed], index: int) -> Mutant:
    """Mutant ``index`` of ``family``: the same bytes for the same seeds, index and library versions."""
    try:
        make = _FAMILY_MAKERS[family]
    except KeyError:
        raise ValueError(f"unknown mutation family {family!r} (known: {', '.join(FAMILIES)})") from None
    seed = seeds[index % len(seeds)]
    rng = random.Random(f"tascond-fuzz/{family}/{index}")
    data, what = make(seed, rng)
    return Mutant(family, index, seed.name, data, what)


# ---------------------------------------------------------------------------------------- byte family

INTERESTING_BYTES = (0x00, 0xFF, 0x7F, 0x80)
INTERESTING_INTS = (0, 1, 2**7 - 1, 2**8 - 1, 2**15, 2**16 - 1, 2**31 - 1, 2**31, 2**32 - 1, 2**32,
                    2**34, 16 * 2**30, 16 * 2**30 + 1, 2**63 - 1, 2**63, 2**64 - 1)
HEADER_FIELDS = ((8, "H", "major"), (10, "H", "minor"), (12, "Q", "uncompressed size"), (20, "Q", "compressed size"))


def _pos(rng: random.Random, n: int, head: int, p_head: float) -> int:
    """A position in ``[0, n)``, in the first ``head`` bytes with probability ``p_head``."""
    return rng.randrange(min(n, head)) if rng.random() < p_head else rng.randrange(n)


def _span(rng: random.Random) -> int:
    return rng.choice((1, 1, 2, 3, 4, 8, 16, 64, 512, 4096))


def _b_flip(d: bytearray, rng: random.Random) -> str:
    if not d:
        return "flip: empty"
    p, bit = _pos(rng, len(d), HEADER_SIZE, 0.25), rng.randrange(8)
    d[p] ^= 1 << bit
    return f"flip bit {bit} of byte {p}"


def _b_set(d: bytearray, rng: random.Random) -> str:
    if not d:
        return "set: empty"
    p, v = _pos(rng, len(d), HEADER_SIZE, 0.25), rng.choice(INTERESTING_BYTES)
    d[p] = v
    return f"byte {p} = {v:#04x}"


def _b_header_int(d: bytearray, rng: random.Random) -> str:
    offset, fmt, name = rng.choice(HEADER_FIELDS)
    if len(d) < offset + struct.calcsize(fmt):
        return f"header {name}: too short"
    bits = 8 * struct.calcsize(fmt)
    (old,) = struct.unpack_from("<" + fmt, d, offset)
    values = [v for v in INTERESTING_INTS if v < 2**bits] + [old + 1, max(old - 1, 0), old * 2, old // 2]
    value = rng.choice(values) % 2**bits
    struct.pack_into("<" + fmt, d, offset, value)
    return f"header {name} = {value}"


def _b_truncate(d: bytearray, rng: random.Random) -> str:
    n = len(d)
    keep = rng.choice((rng.randrange(n + 1), rng.randrange(min(n, 40) + 1), max(n - 1 - rng.randrange(16), 0)))
    del d[keep:]
    return f"truncate to {keep} bytes"


def _b_insert(d: bytearray, rng: random.Random) -> str:
    p, k = rng.randrange(len(d) + 1), _span(rng)
    fill = rng.choice(("zeros", "random", "ff"))
    chunk = bytes(k) if fill == "zeros" else b"\xff" * k if fill == "ff" else rng.randbytes(k)
    d[p:p] = chunk
    return f"insert {k} {fill} bytes at {p}"


def _b_delete(d: bytearray, rng: random.Random) -> str:
    if not d:
        return "delete: empty"
    p, k = rng.randrange(len(d)), _span(rng)
    del d[p:p + k]
    return f"delete {k} bytes at {p}"


def _b_duplicate(d: bytearray, rng: random.Random) -> str:
    if not d:
        return "duplicate: empty"
    a, k, b = rng.randrange(len(d)), _span(rng), rng.randrange(len(d) + 1)
    chunk = bytes(d[a:a + k])
    d[b:b] = chunk
    return f"copy {len(chunk)} bytes from {a} to {b}"


def _b_append(d: bytearray, rng: random.Random) -> str:
    k = _span(rng)
    d += rng.randbytes(k)
    return f"append {k} bytes"


BYTE_OPS: tuple[tuple[Callable[[bytearray, random.Random], str], int], ...] = (
    (_b_flip, 8), (_b_set, 4), (_b_header_int, 3), (_b_truncate, 2), (_b_insert, 2), (_b_delete, 2),
    (_b_duplicate, 2), (_b_append, 1),
)


def _byte_family(seed: Seed, rng: random.Random) -> tuple[bytes, str]:
    data = bytearray(seed.data)
    ops, weights = zip(*BYTE_OPS)
    done = [rng.choices(ops, weights)[0](data, rng) for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4)))]
    return bytes(data), "; ".join(done)


# ------------------------------------------------------------------------------------- payload family


def _payload_family(seed: Seed, rng: random.Random) -> tuple[bytes, str]:
    payload = bytearray(seed.payload)
    done = []
    for _ in range(rng.choice((1, 1, 1, 1, 2, 2, 3, 4, 8))):
        p = _pos(rng, len(payload), PAYLOAD_HEAD, 0.8)
        if rng.random() < 0.85:
            bit = rng.randrange(8)
            payload[p] ^= 1 << bit
            done.append(f"flip bit {bit} of payload byte {p}")
        else:
            v = rng.choice(INTERESTING_BYTES)
            payload[p] = v
            done.append(f"payload byte {p} = {v:#04x}")
    return rewrap(bytes(payload), seed.version), "; ".join(done)


# ---------------------------------------------------------------------------------------- hdf5 family

class Raw(str):
    """A JSON token written bare, not as a string: ``NaN``, ``Infinity``, ``1e400`` (which Python reads as inf)."""


TEXT = h5py.string_dtype("utf-8")
FLOAT_VALUES = (math.inf, -math.inf, math.nan, 0.0, -0.0, 1e36, -1e36, 65504.0, 3.4e38, -3.4e38, 1e-45, -1.0)
INT_VALUES = (0, -1, 1, -2, 2**31 - 1, 2**31, 2**32, -(2**31), 2**40, 2**62, 2**63 - 1, -(2**63), 2**63, 2**64 - 1)
LENGTHS = (2**31 - 1, 2**31 - 1, 2**31 - 1, 2**30, 2**24, 2**20, 2**16, 2**31, 2**40, 0, -1)
DIMS = (10**6, 10**12, 10**12, 2**31, 2**63 - 1, 2**64, 0, -1, 1.5, "4", True, None, Raw("1e400"))
JSON_VALUES = (None, True, False, 0, -1, 1, 2, 2**31 - 1, 2**63, 2**64, 10**100, 1.5, -0.0, 0.999999, 1e308,
               Raw("1e400"), Raw("-1e400"), Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), "", "frame", "step",
               "linear", "complement", "relu", "x" * 1000, [], {}, [1, 2], {"a": 1})
JSON_TEXTS = ("", " ", "{", "}", "[]", "null", "1", '"x"', "{}", '{"a": NaN}', '{"dim": Infinity}',
              '{"a": 1, "a": 2}', "[" * 100_000 + "]" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000,
              '{"\\ud800": 1}', "{\"a\": \"\\u0000\"}")
STRING_VALUES = ("", ".", "..", "/", "a/b", "..\\x", "x\x00y", "a\nb", "a b", " ", "\t", "\x1b[31m", "é",
                 "x" * 201, "x" * 100_000, b"\xff\xfe", "../../escape", "/abs", "~", "con", "-", "NUL")
KIND_NAMES = ("generator", "identity", "linear", "zeros", "random", "lowrank", "", "Zeros", "unknown",
              "zeros\x00", " zeros")
DTYPES = ("float64", "float32", "float16", "int8", "uint8", "int16", "int32", "uint32", "int64", "uint64",
          ">i8", ">f4", "bool", "complex64", "S8", "compound", "vlen-int", "text")


def _catalog(f: h5py.File) -> tuple[list[str], list[str]]:
    """Every dataset and every group (root included) reachable by hard links, sorted."""
    datasets, groups = [], ["/"]

    def visit(name: str, obj: object) -> None:
        (datasets if isinstance(obj, h5py.Dataset) else groups).append("/" + name)

    f.visititems(visit)
    return sorted(datasets), sorted(groups)


def _is_text(ds: h5py.Dataset) -> bool:
    return h5py.check_string_dtype(ds.dtype) is not None


def _split(path: str) -> tuple[str, str]:
    parent, _, name = path.rpartition("/")
    return parent or "/", name


def _put(f: h5py.File, path: str, data: object = None, **kw: object) -> None:
    """Replace (or create) the dataset at ``path``."""
    parent, name = _split(path)
    group = f.require_group(parent) if parent != "/" else f["/"]
    if group.get(name, getlink=True) is not None:
        del group[name]
    group.create_dataset(name, data=data, **kw)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _json_dump(value: object) -> str:
    """JSON text of ``value``, with its :class:`Raw` values (top level or in a dict) written bare."""
    tokens: dict[str, str] = {}

    def mark(v: object) -> object:
        if isinstance(v, Raw):
            key = f"@@raw{len(tokens)}@@"
            tokens[key] = str(v)
            return key
        return {k: mark(x) for k, x in v.items()} if isinstance(v, dict) else v

    text = json.dumps(mark(value), allow_nan=True)
    for key, token in tokens.items():
        text = text.replace(f'"{key}"', token)
    return text


def _shown(value: object) -> str:
    """How a JSON value appears in a mutant's description (raw tokens bare)."""
    return str(value) if isinstance(value, Raw) else repr(value)


# the operators that rewrite a dataset's values read it whole: an earlier operator may have given a
# dataset a huge declared shape (the reader must refuse it; the mutator must not try to load it)
MAX_REWRITE_ELEMENTS = 1 << 24


def _numeric(f: h5py.File, datasets: list[str]) -> list[str]:
    return [
        p for p in datasets
        if not _is_text(f[p]) and f[p].dtype.kind in "iuf" and (f[p].size or 0) <= MAX_REWRITE_ELEMENTS
    ]


def _fits(v: object, dtype: np.dtype) -> bool:
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return isinstance(v, int) and info.min <= v <= info.max
    return True  # a float dataset takes any number (float16 rounds 1e36 to inf: also a mutant)


def _promote(values: list[object], dtype: np.dtype) -> np.dtype:
    if all(_fits(v, dtype) for v in values):
        return dtype
    if all(isinstance(v, int) for v in values):
        if all(-(2**63) <= v < 2**63 for v in values):
            return np.dtype("<i8")
        if all(0 <= v < 2**64 for v in values):
            return np.dtype("<u8")
    return np.dtype("<f8")


def _h_values(f: h5py.File, rng: random.Random) -> str | None:
    """One, some or all elements of a numeric dataset set to a hostile value."""
    datasets, _ = _catalog(f)
    path = rng.choice(_numeric(f, datasets) or [None])
    if path is None:
        return None
    arr = np.array(f[path][()])
    if arr.size == 0:
        return None
    floats = arr.dtype.kind == "f" or rng.random() < 0.15
    value = rng.choice(FLOAT_VALUES if floats else INT_VALUES)
    dtype = _promote([value], arr.dtype)
    new = arr.astype(dtype)
    flat = new.reshape(-1)
    how = rng.choice(("one", "one", "all", "half"))
    with np.errstate(all="ignore"):
        if how == "one":
            i = rng.randrange(flat.size)
            flat[i] = value
            where = f"[{i}]"
        elif how == "all":
            flat[:] = value
            where = "[all]"
        else:
            flat[::2] = value
            where = "[::2]"
    _put(f, path, new)
    return f"{path}{where} = {value!r} ({dtype})"


def _h_scale(f: h5py.File, rng: random.Random) -> str | None:
    """A float dataset (codes, weights) scaled: huge (1e36), negated, zeroed or tiny."""
    datasets, _ = _catalog(f)
    paths = [p for p in _numeric(f, datasets) if f[p].dtype.kind == "f"]
    if not paths:
        return None
    path = rng.choice(paths)
    arr = np.array(f[path][()])
    factor = rng.choice((1e36, 1e36, -1e36, 1e30, 1e4, -1.0, 0.0, 1e-30))
    dtype = np.dtype("<f4") if arr.dtype.itemsize < 4 and abs(factor) > 6e4 and rng.random() < 0.7 else arr.dtype
    with np.errstate(all="ignore"):
        new = (arr.astype(np.float64) * factor).astype(dtype)
    _put(f, path, new)
    return f"{path} *= {factor:g} ({dtype})"


def _h_lengths(f: h5py.File, rng: random.Random) -> str | None:
    """Segment lengths set to a huge (or invalid) value, with the videos' frame counts kept consistent."""
    try:
        lengths = np.array(f["/segments/lengths"][()], dtype=np.int64)
        offsets = np.array(f["/videos/segment_offsets"][()], dtype=np.int64)
    except KeyError:
        return None
    if lengths.size == 0:
        return None
    value = rng.choice(LENGTHS)
    scope = rng.choice(("all", "all", "one", "first of each video"))
    if scope == "all":
        lengths[:] = value
    elif scope == "one":
        lengths[rng.randrange(lengths.size)] = value
    else:
        starts = offsets[:-1]
        lengths[starts[(starts >= 0) & (starts < lengths.size)]] = value  # an earlier operator may have broken them
    _put(f, "/segments/lengths", lengths)
    frames = np.array([lengths[a:b].sum() for a, b in zip(offsets[:-1], offsets[1:])], dtype=np.int64)
    _put(f, "/videos/frames", frames)
    return f"/segments/lengths[{scope}] = {value} (frames consistent)"


def _settings(f: h5py.File, path: str) -> dict | None:
    try:
        value = json.loads(_text(f[path][()]))
    except (KeyError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _h_dim(f: h5py.File, rng: random.Random) -> str | None:
    """``/settings`` ``dim`` set to a huge or invalid value (10**6, 10**12, 2**63 - 1, 0, 1.5, ...)."""
    settings = _settings(f, "/settings")
    if settings is None:
        return None
    value = rng.choice(DIMS)
    settings["dim"] = value
    _put(f, "/settings", _json_dump(settings), dtype=TEXT)
    return f"/settings dim = {_shown(value)}"


def _h_json(f: h5py.File, rng: random.Random) -> str | None:
    """``/settings`` or ``/decoder/config``: a key set to a hostile value or removed, or the text replaced."""
    path = rng.choice(("/settings", "/decoder/config"))
    obj = _settings(f, path)
    if obj is None:
        return None
    if rng.random() < 0.2:
        text = rng.choice(JSON_TEXTS)
        _put(f, path, text, dtype=TEXT)
        return f"{path} = {text[:40]!r}{'...' if len(text) > 40 else ''}"
    keys = sorted(obj)
    if keys and rng.random() < 0.15:
        key = rng.choice(keys)
        del obj[key]
        _put(f, path, _json_dump(obj), dtype=TEXT)
        return f"{path}: {key!r} removed"
    key = rng.choice(keys + ["extra"]) if keys else "extra"
    value = rng.choice(JSON_VALUES)
    obj[key] = value
    _put(f, path, _json_dump(obj), dtype=TEXT)
    return f"{path}: {key!r} = {_shown(value)[:40]}"


def _h_strings(f: h5py.File, rng: random.Random) -> str | None:
    """A string (class or video name, decoder kind) set to a hostile one, or to a duplicate."""
    datasets, _ = _catalog(f)
    paths = [p for p in datasets if _is_text(f[p]) and p not in ("/settings", "/decoder/config")]
    if not paths:
        return None
    path = rng.choice(paths)
    ds = f[path]
    if path == "/decoder/kind":
        return _h_kind(f, rng)
    values = list(np.array(ds[()], dtype=object).reshape(-1)) if ds.shape != () else [ds[()]]
    if not values:
        return None
    i = rng.randrange(len(values))
    if len(values) > 1 and rng.random() < 0.2:
        j = (i + 1) % len(values)
        values[i] = values[j]
        what = f"{path}[{i}] = {path}[{j}] (duplicate)"
    else:
        value = rng.choice(STRING_VALUES)
        values[i] = value if isinstance(value, bytes) else value.encode("utf-8")
        what = f"{path}[{i}] = {value[:40]!r}"
    raw = [v if isinstance(v, bytes) else str(v).encode("utf-8") for v in values]
    if any(b"\x00" in v for v in raw):  # variable-length strings cannot hold NUL: fixed-length ones can
        _put(f, path, np.array(raw, dtype=f"S{max(map(len, raw))}").reshape(ds.shape))
        return what + " (fixed-length)"
    arr = np.empty(len(raw), dtype=object)
    arr[:] = raw
    _put(f, path, arr.reshape(ds.shape), dtype=TEXT)
    return what


def _as_dtype(arr: np.ndarray, name: str) -> tuple[np.ndarray | None, object]:
    """``arr`` converted to the dtype called ``name`` (see :data:`DTYPES`): (data, dtype for h5py)."""
    with np.errstate(all="ignore"):
        if arr.dtype.kind in "OSU":  # text
            if name == "text":
                return None, None
            if name == "S8":
                return np.array([_text(v)[:8].encode() for v in arr.reshape(-1)], dtype="S8").reshape(arr.shape), None
            return np.zeros(arr.shape, dtype=name if name not in ("compound", "vlen-int") else "f8"), None
        if name == "text":
            out = np.empty(arr.shape, dtype=object)
            out.reshape(-1)[:] = [str(v) for v in arr.reshape(-1)]
            return out, TEXT
        if name == "S8":
            return arr.astype("S8"), None
        if name == "compound":
            out = np.zeros(arr.shape, dtype=[("a", "<i8"), ("b", "<f4")])
            out["a"] = arr.astype("<i8") if arr.dtype.kind in "iu" else 0
            return out, None
        if name == "vlen-int":
            if arr.ndim != 1:
                return None, None
            out = np.empty(arr.shape, dtype=object)
            out[:] = [np.array([v], dtype="<i8") for v in arr.astype(np.int64)]
            return out, h5py.vlen_dtype(np.dtype("<i8"))
        return arr.astype(name), None


def _h_dtype(f: h5py.File, rng: random.Random) -> str | None:
    """A dataset rewritten with another dtype (float64, bool, big-endian, compound, text, vlen...)."""
    datasets, _ = _catalog(f)
    path = rng.choice(datasets)
    ds = f[path]
    arr = np.array(ds[()], dtype=object if _is_text(ds) else None)
    name = rng.choice(DTYPES)
    new, dtype = _as_dtype(arr, name)
    if new is None:
        return None
    _put(f, path, new, dtype=dtype)
    return f"{path} as {name}"


def _h_shape(f: h5py.File, rng: random.Random) -> str | None:
    """A dataset rewritten with a wrong shape: one more or one fewer entry, scalar, 2-D, transposed, empty."""
    datasets, _ = _catalog(f)
    path = rng.choice(datasets)
    ds = f[path]
    text = _is_text(ds)
    arr = np.array(ds[()], dtype=object if text else None)
    how = rng.choice(("append", "drop", "scalar", "add axis", "transpose", "empty", "column"))
    if how == "append":
        flat = arr.reshape(-1)
        new = np.concatenate([arr.reshape(-1), flat[-1:] if flat.size else np.zeros(1, arr.dtype)]) if arr.ndim <= 1 \
            else np.concatenate([arr, arr[-1:]]) if arr.shape[0] else np.zeros((1, *arr.shape[1:]), arr.dtype)
    elif how == "drop":
        if arr.ndim == 0 or arr.shape[0] == 0:
            return None
        new = arr[:-1]
    elif how == "scalar":
        if arr.size == 0:
            return None
        new = np.array(arr.reshape(-1)[0], dtype=arr.dtype)
    elif how == "add axis":
        new = arr[None]
    elif how == "transpose":
        if arr.ndim < 2:
            new = arr.reshape(-1, 1)
        else:
            new = np.ascontiguousarray(arr.T)
    elif how == "empty":
        new = np.zeros((0, *arr.shape[1:]) if arr.ndim else (0,), dtype=arr.dtype)
    else:
        new = arr.reshape(-1, 1) if arr.ndim else arr.reshape(1, 1)
    _put(f, path, new, dtype=TEXT if text else None)
    return f"{path} {how}: {arr.shape} -> {new.shape}"


def _h_remove(f: h5py.File, rng: random.Random) -> str | None:
    """A dataset or group (not the root) deleted."""
    datasets, groups = _catalog(f)
    path = rng.choice(datasets + groups[1:])
    parent, name = _split(path)
    del f[parent][name]
    return f"{path} removed"


def _h_extra(f: h5py.File, rng: random.Random) -> str | None:
    """An object added: unknown datasets and groups (also among the weights), shared-code sources."""
    datasets, groups = _catalog(f)
    how = rng.choice(("dataset", "weight", "weight group", "code_source", "code_source", "huge unwritten"))
    if how == "dataset":
        path = rng.choice(groups).rstrip("/") + "/extra"
        _put(f, path, np.arange(rng.choice((0, 1, 7))))
    elif how == "weight":
        path = "/decoder/weights/" + rng.choice(("extra", "residual.std", "code_scale", "net.0.weight", ".x",
                                                 "a b", "x" * 300))
        if "/decoder/weights" not in f:
            return None
        _put(f, path, np.ones(rng.choice(((4,), (2,), (), (2, 4))), dtype=rng.choice(("<f4", "<f2", "<i4"))))
    elif how == "weight group":
        if "/decoder/weights" not in f:
            return None
        path = "/decoder/weights/group"
        f["/decoder/weights"].create_group("group")
    elif how == "code_source":
        if "/segments/lengths" not in f:
            return None
        n = f["/segments/lengths"].shape[0] if f["/segments/lengths"].ndim == 1 else 1
        choice = rng.choice(("all -1", "random", "self", "chain"))
        if choice == "all -1":
            src = np.full(n, -1, dtype=np.int64)
        elif choice == "random":
            src = np.array([rng.randrange(-2, n + 1) for _ in range(n)], dtype=np.int64)
        elif choice == "self":
            src = np.arange(n, dtype=np.int64)
        else:
            src = np.full(n, -1, dtype=np.int64)
            src[1:] = np.arange(n - 1)
        path = "/segments/code_source"
        _put(f, path, src)
        how = f"code_source ({choice})"
    else:
        path = rng.choice(datasets)
        ds = f[path]
        huge = rng.choice(((2**40,), (2**31, 2**31), (2**62,)))
        dtype = ds.dtype if not _is_text(ds) else TEXT
        chunks = rng.random() < 0.5
        _put(f, path, None, shape=huge, dtype=dtype, chunks=(1024,) * len(huge) if chunks else None)
        how = f"huge unwritten {huge}{' chunked' if chunks else ''}"
    return f"{path} added ({how})"


def _h_link(f: h5py.File, rng: random.Random) -> str | None:
    """A dataset or group replaced by a soft, external or hard link (also cycles and dangling links)."""
    datasets, groups = _catalog(f)
    path = rng.choice(datasets + groups[1:])
    parent, name = _split(path)
    how = rng.choice(("soft", "soft self", "soft dangling", "external", "external self", "hard other",
                      "hard cycle"))
    del f[parent][name]
    if how == "soft":
        target = rng.choice(datasets + groups)
        f[parent][name] = h5py.SoftLink(target)
    elif how == "soft self":
        target = path
        f[parent][name] = h5py.SoftLink(path)
    elif how == "soft dangling":
        target = "/nowhere"
        f[parent][name] = h5py.SoftLink(target)
    elif how == "external":
        target = rng.choice(("/etc/passwd", "missing.h5", "../mutant.tcd"))
        f[parent][name] = h5py.ExternalLink(target, "/settings")
    elif how == "external self":
        target = "."
        f[parent][name] = h5py.ExternalLink(".", path)
    elif how == "hard other":
        others = [p for p in datasets + groups if p != path and not p.startswith(path + "/") and p in f]
        if not others:
            return None
        target = rng.choice(others)
        f[parent][name] = f[target]
    else:
        target = parent
        f[parent][name] = f[parent]
    return f"{path} -> {how} link to {target}"


def _h_storage(f: h5py.File, rng: random.Random) -> str | None:
    """A dataset rewritten chunked, compressed, compact, unwritten (fill value only) or external."""
    datasets, _ = _catalog(f)
    path = rng.choice(datasets)
    ds = f[path]
    text = _is_text(ds)
    arr = np.array(ds[()], dtype=object if text else None)
    dtype = TEXT if text else arr.dtype
    how = rng.choice(("chunked", "gzip", "shuffle+gzip", "fletcher32", "lzf", "scaleoffset", "compact",
                      "unwritten", "external"))
    scalar = arr.ndim == 0
    if how in ("chunked", "gzip", "shuffle+gzip", "fletcher32", "lzf", "scaleoffset") and (scalar or arr.size == 0):
        return None
    if how == "chunked":
        _put(f, path, arr, dtype=dtype, chunks=True)
    elif how == "gzip":
        _put(f, path, arr, dtype=dtype, compression="gzip")
    elif how == "shuffle+gzip":
        _put(f, path, arr, dtype=dtype, compression="gzip", shuffle=True)
    elif how == "fletcher32":
        _put(f, path, arr, dtype=dtype, fletcher32=True)
    elif how == "lzf":
        _put(f, path, arr, dtype=dtype, compression="lzf")
    elif how == "scaleoffset":
        if text or arr.dtype.kind not in "iuf":
            return None
        _put(f, path, arr, dtype=dtype, scaleoffset=0 if arr.dtype.kind in "iu" else 2)
    elif how == "compact":
        if text:
            return None
        parent, name = _split(path)
        del f[parent][name]
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        space = h5py.h5s.create_simple(arr.shape) if arr.ndim else h5py.h5s.create(h5py.h5s.SCALAR)
        dsid = h5py.h5d.create(f[parent].id, name.encode(), h5py.h5t.py_create(arr.dtype), space, dcpl=dcpl)
        if arr.size:
            dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(arr))
    elif how == "unwritten":
        _put(f, path, None, shape=arr.shape, dtype=dtype, fillvalue=None if text else rng.choice((0, 1)))
    else:  # external raw storage; nothing is written, so no file is made
        if text:
            return None
        _put(f, path, None, shape=arr.shape, dtype=dtype,
             external=[(rng.choice(("fuzz-external.bin", "/etc/passwd")), 0, h5py.h5f.UNLIMITED)])
    return f"{path} rewritten {how}"


def _h_attrs(f: h5py.File, rng: random.Random) -> str | None:
    """A root attribute (format_version, tascond_version) made odd, or an attribute added to a dataset."""
    datasets, _ = _catalog(f)
    value = rng.choice((7, math.nan, np.arange(3), b"\xff\xfe", "x" * 100_000, "", np.array([], dtype="f4"),
                        np.zeros((2, 2), dtype=[("a", "<i4")])))
    if rng.random() < 0.7:
        name = rng.choice(("format_version", "tascond_version"))
        if rng.random() < 0.2:
            if name in f.attrs:
                del f.attrs[name]
            return f"root attribute {name} removed"
        f.attrs[name] = value
        return f"root attribute {name} = {type(value).__name__}"
    path = rng.choice(datasets)
    f[path].attrs["extra"] = value
    return f"{path} attribute extra = {type(value).__name__}"


def _h_kind(f: h5py.File, rng: random.Random) -> str | None:
    """``/decoder/kind`` set to another kind (type confusion) or a near-miss name."""
    value = rng.choice(KIND_NAMES)
    if "\x00" in value:  # variable-length strings cannot hold NUL: fixed-length ones can
        _put(f, "/decoder/kind", np.array(value.encode("utf-8")))
        return f"/decoder/kind = {value!r} (fixed-length)"
    _put(f, "/decoder/kind", value.encode("utf-8"), dtype=TEXT)
    return f"/decoder/kind = {value!r}"


HDF5_OPS: tuple[tuple[Callable[[h5py.File, random.Random], str | None], int], ...] = (
    (_h_values, 8), (_h_scale, 3), (_h_lengths, 3), (_h_dim, 2), (_h_json, 5), (_h_strings, 3),
    (_h_dtype, 3), (_h_shape, 3), (_h_remove, 2), (_h_extra, 3), (_h_link, 2), (_h_storage, 3),
    (_h_attrs, 1), (_h_kind, 1),
)


def _hdf5_family(seed: Seed, rng: random.Random) -> tuple[bytes, str]:
    payload, done = seed.payload, []
    ops, weights = zip(*HDF5_OPS)
    for _ in range(rng.choice((1, 1, 1, 2))):
        for _attempt in range(50):
            op = rng.choices(ops, weights)[0]
            bio = io.BytesIO(payload)
            try:
                with h5py.File(bio, "r+") as f:
                    what = op(f, rng)
            except (ValueError, TypeError, KeyError, IndexError, OverflowError, RuntimeError, OSError, MemoryError):
                # h5py would not write this variant, or an earlier operator made the object unreachable
                # (removed it, or left a link loop): draw another operator
                what = None
            if what is not None:
                payload = bio.getvalue()
                done.append(what)
                break
    return rewrap(payload, seed.version), "; ".join(done) or "unchanged"


# --------------------------------------------------------------------------------------- chunk family

CHUNK_SIZE = 4096
"""Chunk size of the chunk family's archives (the smallest valid one: a seed's payload spans chunks)."""
INDEX_FIELDS = (("chunk size", 0, "I"), ("chunk count", 4, "I"))
ENTRY_FIELDS = (("offset", 0, "Q"), ("compressed size", 8, "Q"), ("uncompressed size", 16, "I"), ("crc", 20, "I"))


def rewrap_chunked(payload: bytes, version: tuple[int, int]) -> bytes:
    """A valid chunked container (format 1.4 or the seed's later version) around ``payload``."""
    return wrap_payload_chunked(payload, version=max(version, (1, 4)), level=ZSTD_LEVEL, chunk_size=CHUNK_SIZE)


def _fix_index_crc(d: bytearray) -> None:
    """Recompute the index's CRC, so that a lie in the index reaches the checks of its entries."""
    if len(d) < HEADER_SIZE + 8:
        return
    count = struct.unpack_from("<I", d, HEADER_SIZE + 4)[0]
    end = HEADER_SIZE + 8 + 24 * count
    if end + 4 <= len(d):
        crc = zlib.crc32(bytes(d[HEADER_SIZE:end]), zlib.crc32(bytes(d[:HEADER_SIZE])))
        struct.pack_into("<I", d, end, crc & 0xFFFFFFFF)


def _c_index(d: bytearray, rng: random.Random) -> str:
    """A field of the index (its head or an entry) set to a boundary value, the index's CRC made right."""
    count = struct.unpack_from("<I", d, HEADER_SIZE + 4)[0]
    if rng.random() < 0.3:
        name, offset, fmt = rng.choice(INDEX_FIELDS)
        at = HEADER_SIZE + offset
    else:
        i = rng.randrange(count)
        name, offset, fmt = rng.choice(ENTRY_FIELDS)
        name, at = f"chunk {i} {name}", HEADER_SIZE + 8 + 24 * i + offset
    bits = 8 * struct.calcsize(fmt)
    (old,) = struct.unpack_from("<" + fmt, d, at)
    values = [v for v in INTERESTING_INTS if v < 2**bits] + [old + 1, max(old - 1, 0), old * 2, old // 2, 4096, 2**20]
    value = rng.choice(values) % 2**bits
    struct.pack_into("<" + fmt, d, at, value)
    if rng.random() < 0.8:
        _fix_index_crc(d)
        return f"index {name} = {value} (CRC fixed)"
    return f"index {name} = {value}"


def _chunk_family(seed: Seed, rng: random.Random) -> tuple[bytes, str]:
    """Chunked (format 1.4) archives: the seed's payload, or a payload or hdf5 mutant's, re-wrapped in
    chunks of 4 KiB, then maybe index lies (with the index's CRC made right) and byte mutations."""
    what = []
    base = rng.random()
    if base < 0.3:
        payload = seed.payload
    else:
        data, done = (_payload_family if base < 0.65 else _hdf5_family)(seed, rng)
        payload, what = payload_of(data), [done]
    d = bytearray(rewrap_chunked(payload, seed.version))
    if rng.random() < 0.5:
        what.append(_c_index(d, rng))
    if rng.random() < 0.4 or len(what) == 0:
        ops, weights = zip(*BYTE_OPS)
        what += [rng.choices(ops, weights)[0](d, rng) for _ in range(rng.choice((1, 1, 2)))]
    return bytes(d), "chunked; " + "; ".join(what)


_FAMILY_MAKERS = {"byte": _byte_family, "payload": _payload_family, "hdf5": _hdf5_family, "chunk": _chunk_family}
