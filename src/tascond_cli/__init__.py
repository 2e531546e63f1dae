"""tascond: condense temporal action segmentation datasets into tiny archives.

The engine modules (``data``, ``synth``, ``evaluate``) never print; only the
``cli`` package talks to the terminal.
"""

__version__ = "0.1.0"
