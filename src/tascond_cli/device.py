"""Which torch device a command runs on: the one place that turns ``--device`` into a ``torch.device``.

It sits below every layer that computes (condense, restore, evaluate), so none of them imports another
for it.
"""

from __future__ import annotations

import torch

from tascond_cli.errors import DeviceError

__all__ = ["resolve_device"]


def resolve_device(name: str | torch.device) -> torch.device:
    """Turn a device name into a ``torch.device``, checking that it exists.

    Parameters
    ----------
    name : str or torch.device
        ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ...

    Returns
    -------
    torch.device

    Raises
    ------
    DeviceError
        (a ``TascondError`` and a ``ValueError``) if the name is not a device, or CUDA is requested
        but not available.
    """
    if isinstance(name, str) and name.strip().lower() == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name.strip().lower() if isinstance(name, str) else name)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(f"unknown device {name!r} (use 'auto', 'cpu' or 'cuda[:N]')") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {name!r} requested but CUDA is not available "
                "(no GPU, or PyTorch was built without CUDA); use 'cpu' or 'auto'"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"device {name!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    return device
