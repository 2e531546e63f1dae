"""Error types raised by the engine.

Every error the user can cause (a bad dataset, a bad option value) is a
:class:`TascondError`; its message is one line that names the file and the
problem, so the command-line tool can print it as is, without a traceback.
"""

from __future__ import annotations


class TascondError(Exception):
    """Base class of every error meant for the user."""


class DataError(TascondError):
    """A dataset folder, or one of its files, is missing or malformed."""


class DeviceError(TascondError, ValueError):
    """A ``--device`` that is not a device, or names hardware this machine does not have."""
