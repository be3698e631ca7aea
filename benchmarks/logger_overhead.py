"""Training speed with experiment loggers over the same run without, in one process.

The same tiny run (same model, data and seed) trains alternately without a logger and with
``--logger`` (CSV by default); its speed is steps per second of its own training time, which
counts the loggers' per-validation calls (validation itself excluded). Prints the median
speed of each and their ratio (logged / plain; 1.0 = no slowdown), and the ratio of the CPU
seconds a whole run takes (logger set-up and files included), which other work on a shared
machine disturbs far less than wall time.

    python benchmarks/logger_overhead.py [--loggers csv] [--steps 400] [--val-every 50]
                                         [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")


def timed_run(spec, logger_factory) -> tuple[float, float]:
    """Steps per second of the run's own training time, and the run's CPU seconds."""
    from seqbench.experiment.runner import execute

    cpu = time.process_time()
    record = execute(spec, logger_factory)
    cpu = time.process_time() - cpu
    assert record["status"] == "done", record.get("error")
    return record["steps"] / record["train_seconds"], cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loggers", default="csv", help="comma-separated, as --logger takes them")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--val-every", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    from seqbench.experiment.loggers import LoggerSet, parse_loggers
    from seqbench.experiment.plan import Matrix, plan
    from seqbench.experiment.runner import warm_up
    from seqbench.registry import registry

    warm_up()
    names = parse_loggers(args.loggers, registry().loggers)
    matrix = Matrix(
        models=["lstm"], tasks=["copy"], train_sizes=[256], seeds=[0],
        task_params={"copy": {"T": 5, "val_size": 32, "test_size": 32}},
        model_params={"lstm": {"hidden_size": 32}},
        training={"max_steps": args.steps, "val_every": args.val_every, "patience": 0},
    )
    (spec,) = plan(matrix, registry()).runs
    with tempfile.TemporaryDirectory(prefix="seqbench-loggers-") as tmp:
        logged = LoggerSet(names, tmp)
        timed_run(spec, None), timed_run(spec, logged)  # warm both paths
        plain, with_loggers = [], []
        for _ in range(args.repeats):  # interleaved, so machine noise hits both alike
            plain.append(timed_run(spec, None))
            with_loggers.append(timed_run(spec, logged))
    (a, a_cpu), (b, b_cpu) = ([statistics.median(x) for x in zip(*runs)]
                              for runs in (plain, with_loggers))
    print(f"{args.steps} steps, a validation (and a logger call) every {args.val_every}, "
          f"median of {args.repeats}")
    print(f"without a logger:      {a:8.1f} steps/s  {a_cpu:6.2f} CPU s per run")
    print(f"with --logger {args.loggers}: {b:8.1f} steps/s  {b_cpu:6.2f} CPU s per run")
    print(f"speed ratio (logged / plain): {b / a:.3f}; CPU ratio (logged / plain): "
          f"{b_cpu / a_cpu:.3f}")


if __name__ == "__main__":
    main()
