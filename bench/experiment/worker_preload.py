"""What the fork server of the local workers (:mod:`.executors`) imports once: torch, Lightning
and what a first optimizer step loads, so that every worker forked from it starts warm."""

import signal

# Ctrl-C is the launcher's to handle; Python's fork server ignores it only after its imports.
signal.signal(signal.SIGINT, signal.SIG_IGN)

import pytorch_lightning  # noqa: E402, F401
import torch._dynamo  # noqa: E402, F401

from . import runner  # noqa: E402, F401
