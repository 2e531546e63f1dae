"""Train a temporal action segmentation model straight from a .tcd archive, in plain PyTorch.

The archive is decoded on the fly by ``tascond_cli.restore.ArchiveDataset``: nothing is written
to disk, and item ``i`` is ``(features (D, T) float32, labels (T,) int64)`` like any TAS loader's.

    python3 examples/train_from_archive.py bf.tcd --epochs 20 --save model.pt
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from tascond_cli.restore import ArchiveDataset


class TinyTCN(nn.Module):
    """A single-stage dilated temporal convolution network (MS-TCN's building block)."""

    def __init__(self, dim: int, classes: int, maps: int = 64, layers: int = 6) -> None:
        super().__init__()
        self.inp = nn.Conv1d(dim, maps, 1)
        self.layers = nn.ModuleList(nn.Conv1d(maps, maps, 3, padding=2**i, dilation=2**i) for i in range(layers))
        self.out = nn.Conv1d(maps, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, D, T) -> (B, C, T)
        h = self.inp(x)
        for layer in self.layers:
            h = h + torch.relu(layer(h))
        return self.out(h)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("archive", help="a .tcd archive (from tascond condense or tascond baseline)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--sample-rate", type=int, default=1, help="train on every S-th frame")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", help="write the trained weights here (torch.save of a state dict)")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    data = ArchiveDataset(args.archive, sample_rate=args.sample_rate)
    loader = torch.utils.data.DataLoader(data, batch_size=1, shuffle=True)
    model = TinyTCN(data.dim, data.num_classes).to(args.device)
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    print(f"{args.archive}: {len(data)} videos, {data.dim}-d features, {data.num_classes} classes")
    for epoch in range(1, args.epochs + 1):
        total, correct, frames = 0.0, 0, 0
        for x, y in loader:  # x (1, D, T), y (1, T)
            x, y = x.to(args.device), y.to(args.device)
            logits = model(x)
            loss = nn.functional.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * y.numel()
            correct += int((logits.argmax(1) == y).sum())
            frames += y.numel()
        print(f"epoch {epoch:3d}  loss {total / frames:.4f}  frame accuracy {100 * correct / frames:.1f}%")
    if args.save:
        torch.save(model.state_dict(), args.save)
        print(f"saved {args.save}")


if __name__ == "__main__":
    main()
