"""A third-party test model that counts its trainings, shared by the lease, Ray and SLURM tests.

``counted`` is the built-in LSTM that, each time a run builds it for training (once per run:
builds on the ``meta`` device only count parameters, and these tests set no parameter budget),
appends ``SEED NODE PID`` to the file
named by ``SEQBENCH_COUNT_FILE``. ``torch.initial_seed()`` is the run's seed there (the runner
seeds everything just before it builds the model), so with one model, task and size per matrix
the seed names the run. Rows count trainings, not records: a run trained twice shows twice even
though the database keeps one record.

Knobs, all environment variables read where the run trains:

* ``SEQBENCH_NODE``: a label written with each line (which Ray node trained it).
* ``SEQBENCH_STEP_SLEEP``: seconds to sleep in every forward pass, so runs last long enough to
  be interrupted, and last about as long on a busy machine as on an idle one.
* ``SEQBENCH_CRASH_SEED``: the worker process training this seed kills itself (SIGKILL) as soon
  as it builds the model, every time.
"""

from __future__ import annotations

import collections
from pathlib import Path

SOURCE = '''
import dataclasses
import functools
import os
import signal

from seqbench import hookimpl


def _build(base, kind, shape, hparams):
    import torch

    model = base(kind, shape, hparams)
    if any(p.is_meta for p in model.parameters()):
        return model  # only sized (a parameter count on the meta device), never trained
    seed = torch.initial_seed()
    path = os.environ.get("SEQBENCH_COUNT_FILE")
    if path:
        with open(path, "a") as f:  # one short O_APPEND write: lines never interleave
            f.write(f"{seed} {os.environ.get('SEQBENCH_NODE', '-')} {os.getpid()}\\n")
    if os.environ.get("SEQBENCH_CRASH_SEED") == str(seed):
        os.kill(os.getpid(), signal.SIGKILL)
    delay = float(os.environ.get("SEQBENCH_STEP_SLEEP") or 0)
    if delay:
        import time

        model.register_forward_pre_hook(lambda *args: time.sleep(delay))
    return model


@hookimpl
def register_models(register):
    import seqbench_plugins.lstm as lstm

    found = []
    lstm.register_models(register=found.append)
    base = found[0]
    register(dataclasses.replace(
        base, name="counted", description="the LSTM, counting its trainings (tests)",
        build=functools.partial(_build, base.build),
    ))
'''

# One model, one task, one size: the seed names the run. Tiny, so a run takes a second or two.
TINY = ["--models", "counted", "--tasks", "copy", "-t", "copy.T=3", "-t", "copy.val_size=20",
        "-t", "copy.test_size=20", "-m", "hidden_size=8", "--train-sizes", "16",
        "--max-steps", "20", "--val-every", "10", "--patience", "0"]


def make_counted(make_dist) -> Path:
    """A folder to put on PYTHONPATH: the ``seqbench-counted`` distribution, entry point and all."""
    return make_dist("seqbench-counted", {"seqbench_counted": SOURCE},
                     {"counted": "seqbench_counted"})


def trainings(path: Path) -> collections.Counter:
    """seed -> how many times a run with that seed was trained."""
    if not path.exists():
        return collections.Counter()
    return collections.Counter(int(line.split()[0]) for line in path.read_text().splitlines())


def lines(path: Path) -> list[tuple[int, str, int]]:
    """(seed, node, pid) per training, in order."""
    if not path.exists():
        return []
    return [(int(s), node, int(pid)) for s, node, pid in
            (line.split() for line in path.read_text().splitlines())]
