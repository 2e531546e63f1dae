"""condense under torchrun (issue 12): two CPU ranks (gloo) write one archive, the same every time; with a
fixed prior the sharded inversion gives the one-process codes bit for bit; lowrank's archive under two
ranks equals the one-process archive; and a segment's inversion does not depend on its batch-mates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tascond_cli.archive import read_archive
from tascond_cli.distributed import World, gather_arrays, joined
from tascond_cli.restore import ArchiveDecoder

from conftest import make_tiny_dataset
from test_distributed import _tascond

WORKER = Path(__file__).with_name("distributed_worker.py")
TASCOND = ["condense", "--method", "tascond", "--steps", "20", "--hidden", "16", "--latent", "4", "--invert-iters",
           "10", "--device", "cpu", "--json"]  # fmt: skip


def _skip_without_rendezvous(run: subprocess.CompletedProcess) -> None:
    if run.returncode != 0 and ("Address" in run.stderr or "socket" in run.stderr.lower()):
        pytest.skip(f"no local rendezvous for torchrun here: {run.stderr.strip().splitlines()[-1]}")


def _worker(args: list[str], torchrun: bool) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    prefix = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"] if torchrun \
        else [sys.executable]  # fmt: skip
    return subprocess.run([*prefix, str(WORKER), *args], capture_output=True, text=True, env=env, timeout=240)


# --------------------------------------------------------------------------- the pieces, in one process


def test_share_deals_every_item_once_and_evenly():
    sizes = [50, 10, 40, 40, 5, 30, 30, 1]
    parts = [World(r, 3).share(sizes) for r in range(3)]
    assert sorted(i for p in parts for i in p) == list(range(len(sizes)))
    totals = [sum(sizes[i] for i in p) for p in parts]
    assert max(totals) - min(totals) <= max(sizes) and totals == [66, 70, 70]
    assert all(p == sorted(p) for p in parts)
    assert World().share(sizes) == list(range(len(sizes)))
    assert World(1, 4).share([3, 3]) == [1] and World(3, 4).share([3, 3]) == []


def test_without_a_process_group_nothing_is_skipped(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert joined() == World()  # torchrun's variables alone do not shard engine work
    arrays = {0: np.arange(3, dtype=np.int8), 1: np.ones((2, 2), np.float16)}
    assert [a.tolist() for a in gather_arrays(arrays, 2)] == [[0, 1, 2], [[1.0, 1.0], [1.0, 1.0]]]
    with pytest.raises(ValueError, match="item 2 is held by 0 ranks"):
        gather_arrays(arrays, 3)


def test_frame_random_numbers_are_per_frame_and_uniform():
    from tascond_cli.condense.invert import _frame_keys, uniforms

    seg = torch.arange(2000).repeat_interleave(50)
    t = torch.arange(50).repeat(2000)
    keys = _frame_keys(3, seg, t)
    u = uniforms(keys, 7)
    assert u.dtype == torch.float32 and float(u.min()) >= 0.0 and float(u.max()) < 1.0
    assert abs(float(u.mean()) - 0.5) < 0.01 and abs(float((u < 0.25).float().mean()) - 0.25) < 0.01
    assert torch.equal(uniforms(keys[4321:4400], 7), u[4321:4400])  # a frame's number: its key and iteration
    assert not torch.equal(uniforms(keys, 8), u)
    assert not torch.equal(_frame_keys(4, seg, t), keys)
    assert len(torch.unique(keys)) > 0.999 * len(keys)


def test_a_segments_codes_do_not_depend_on_its_batch_mates(tmp_path):
    """Subsampled frames included: one batch, one segment per batch and batches of about 50 frames give
    the same codes up to the float rounding of the batch's matrix products."""
    from distributed_worker import PRIOR
    from tascond_cli.condense import InvertConfig, invert_segments, train_prior
    from tascond_cli.data import open_dataset
    from tascond_cli.methods._generator import collect_segments

    data = open_dataset(make_tiny_dataset(tmp_path / "tiny", n_train=4, n_test=1))
    prior = train_prior(data.train, data.num_classes, PRIOR)
    segments, labels, _ = collect_segments(data.train)
    runs = [invert_segments(prior, segments, labels, 4, InvertConfig(max_iters=40, patience=5, chunk_frames=2,
                                                                    batch_frames=b)) for b in (32768, 1, 50)]  # fmt: skip
    for other in runs[1:]:
        np.testing.assert_allclose(other.codes, runs[0].codes, rtol=0, atol=2e-5)
        assert abs(other.error - runs[0].error) < 1e-6


# --------------------------------------------------------------------------- two ranks (gloo)


def test_one_and_two_ranks_invert_to_the_same_codes(tmp_path):
    """The worker also checks gather_arrays on arrays of every dtype and shape, on every rank, and that
    the ranks end DistributedDataParallel training with the same prior."""
    data = make_tiny_dataset(tmp_path / "tiny", n_train=5, n_test=1)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = _worker([str(data), str(tmp_path / "one")], torchrun=False)
    assert one.returncode == 0, one.stderr
    two = _worker([str(data), str(tmp_path / "two")], torchrun=True)
    _skip_without_rendezvous(two)
    assert two.returncode == 0, two.stderr
    codes1, codes2 = np.load(tmp_path / "one" / "codes.npy"), np.load(tmp_path / "two" / "codes.npy")
    assert codes1.shape[0] > 40 and codes1.tobytes() == codes2.tobytes()  # bit for bit
    assert np.array_equal(np.load(tmp_path / "one" / "error.npy"), np.load(tmp_path / "two" / "error.npy"))
    assert sorted(p.read_text() for p in (tmp_path / "two").glob("gather-*.txt")) == ["2 1", "2 1"]
    assert (tmp_path / "one" / "gather-0.txt").read_text() == "1 1"
    priors = {p.read_text() for p in (tmp_path / "two").glob("prior-*.txt")}
    assert len(priors) == 1  # the ranks of DistributedDataParallel hold the same generator, bit for bit
    assert priors != {(tmp_path / "one" / "prior-0.txt").read_text()}  # trained on shares: not one process's


def test_two_ranks_write_one_archive_the_same_every_time(tmp_path):
    data = make_tiny_dataset(tmp_path / "tiny", n_train=5, n_test=1)
    out = tmp_path / "out"
    out.mkdir()
    runs = [_tascond([*TASCOND, str(data), "-o", str(out / f"run{k}.tcd")], torchrun=True) for k in (1, 2)]
    _skip_without_rendezvous(runs[0])
    for run in runs:
        assert run.returncode == 0, run.stderr
        assert run.stderr == ""  # rank 0 prints the JSON on stdout, once; no rank says anything else
        summary = json.loads(run.stdout)
        assert summary["method"] == "tascond" and summary["videos"] == 5
    assert sorted(p.name for p in out.iterdir()) == ["run1.tcd", "run2.tcd"]  # nothing else, no temporary
    assert (out / "run1.tcd").read_bytes() == (out / "run2.tcd").read_bytes()
    decoder = ArchiveDecoder(read_archive(out / "run1.tcd"))
    assert decoder.features(0).shape[0] == 8 and np.isfinite(decoder.features(0)).all()


def test_lowrank_under_two_ranks_is_the_one_process_archive(tmp_path):
    data = make_tiny_dataset(tmp_path / "tiny", n_train=6, n_test=1)
    one = _tascond(["condense", str(data), "-o", str(tmp_path / "one.tcd"), "--json"])
    assert one.returncode == 0, one.stderr
    two = _tascond(["condense", str(data), "-o", str(tmp_path / "two.tcd"), "--json"], torchrun=True)
    _skip_without_rendezvous(two)
    assert two.returncode == 0, two.stderr
    # the error's float64 sums are all-reduced: the same up to their summation order
    assert json.loads(two.stdout)["reconstruction_error"] == pytest.approx(json.loads(one.stdout)["reconstruction_error"],
                                                                           rel=1e-12)
    a, b = (ArchiveDecoder(read_archive(tmp_path / f"{n}.tcd")) for n in ("one", "two"))
    assert a.archive.video_names == b.archive.video_names
    np.testing.assert_array_equal(a.archive.segment_codes, b.archive.segment_codes)
    # the codes are the same; the scatter matrix's float64 sum order may move a last bit of the basis
    assert np.abs(a.archive.codes.astype(np.int64) - b.archive.codes.astype(np.int64)).max() <= 1
    for i in range(a.archive.num_videos):
        np.testing.assert_allclose(b.features(i), a.features(i), rtol=1e-5, atol=1e-5)


def test_baselines_still_refuse_torchrun(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from tascond_cli.cli import app

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    data = make_tiny_dataset(tmp_path / "tiny")
    result = CliRunner().invoke(app, ["baseline", "mean", str(data), "-o", str(tmp_path / "m.tcd")])
    assert result.exit_code == 2 and "tascond baseline runs as one process" in result.output
    assert "condense, evaluate" in result.output
