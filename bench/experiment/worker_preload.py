"""What the fork server of the local workers (:mod:`.executors`) imports once: torch, Lightning
and what a first optimizer step loads, so that every worker forked from it starts warm."""

import importlib
import os
import signal

# Ctrl-C is the launcher's to handle; Python's fork server ignores it only after its imports.
signal.signal(signal.SIGINT, signal.SIG_IGN)

_launcher = os.getppid()
for _name in ("torch", "pytorch_lightning", "torch._dynamo", f"{__package__}.runner"):
    if os.getppid() != _launcher:  # the launcher is gone (killed, timed out): nobody to serve
        os._exit(0)
    importlib.import_module(_name)
