"""How soon a local pool trains: workers forked from a preloaded server vs spawned fresh.

Each measurement is a fresh process (as each ``bench run`` is) that hands a few tiny runs to
``LocalExecutor`` with its workers started one way or the other, alternately: seconds until
the first run is done and until the last one is. Prints the medians and their ratios (spawn /
fork server; above 1: the fork server is faster).

    python benchmarks/worker_start.py [--workers 2] [--runs 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")


def child(method: str, workers: int, runs: int) -> None:
    """One launch's pool; prints the seconds to its first record and to its last."""
    import multiprocessing as mp

    from seqbench.experiment.executors import LocalExecutor
    from seqbench.experiment.plan import Matrix, plan
    from seqbench.registry import registry

    matrix = Matrix(models=["lstm"], tasks=["copy"], train_sizes=[16], seeds=list(range(runs)),
                    task_params={"copy": {"T": 3, "val_size": 20, "test_size": 20}},
                    model_params={"lstm": {"hidden_size": 8}},
                    training={"max_steps": 40, "val_every": 20})
    specs = [r.to_dict() for r in plan(matrix, registry()).runs]
    pool = LocalExecutor(workers)
    if method == "spawn":
        pool.ctx = mp.get_context("spawn")
    assert pool.ctx.get_start_method() == method, pool.ctx.get_start_method()
    done: list[float] = []
    start = time.perf_counter()
    pool.run(specs, lambda spec: True, lambda record: done.append(time.perf_counter() - start))
    assert len(done) == runs
    print(f"{done[0]:.3f} {done[-1]:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", choices=["spawn", "forkserver"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.workers, args.runs)
    seconds: dict[str, list[tuple[float, float]]] = {"spawn": [], "forkserver": []}
    for _ in range(args.repeats):
        for method in seconds:  # alternately, so a change in the machine's load hits both
            out = subprocess.run(
                [sys.executable, __file__, "--child", method, "--workers", str(args.workers),
                 "--runs", str(args.runs)], capture_output=True, text=True, check=True)
            first, last = map(float, out.stdout.split()[-2:])
            seconds[method].append((first, last))
            print(f"{method:>10}: first run done {first:5.1f} s, all {args.runs} {last:5.1f} s",
                  flush=True)
    med = {m: [statistics.median(s[i] for s in v) for i in (0, 1)] for m, v in seconds.items()}
    for i, what in enumerate(("first run done", f"all {args.runs} done")):
        spawn, fork = med["spawn"][i], med["forkserver"][i]
        print(f"median {what}: spawn {spawn:.1f} s, fork server {fork:.1f} s, "
              f"ratio {spawn / fork:.2f}x")


if __name__ == "__main__":
    main()
