"""Throughput of the executors on this machine.

    python benchmarks/executor_throughput.py [--runs 16] [--steps 200]
    python benchmarks/executor_throughput.py --executor ray [--runs 16] [--steps 200] [--repeats 3]

Default (local): runs per hour with 2 workers over 1 worker, and the fixed cost of one run in a
warm worker (a run that trains one step on a tiny task). ``--executor ray``: runs per hour of
Ray actors (a fresh local Ray instance, one actor per core) over the local pool with as many
workers, taking turns on the same matrix, and Ray's fixed start-up cost (starting Ray, then the
actors' imports and warm-up) apart. Every pool is timed from the first run handed out to the last
record back; start-up, paid once per launch, is reported apart.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def specs(n_runs: int, steps: int, tiny: bool = False) -> list[dict]:
    from seqbench.experiment.plan import Matrix, plan
    from seqbench.registry import registry

    copy = {"T": 5, "val_size": 20, "test_size": 20} if tiny else {"T": 10}
    seeds = list(range(max(1, n_runs // 4)))
    matrix = Matrix(
        models=["lstm", "gru"], tasks=["copy"], train_sizes=[64, 128], seeds=seeds,
        task_params={"copy": copy},
        training={"max_steps": steps, "val_every": steps, "patience": 0, "param_budget": 20000},
    )
    return [r.to_dict() for r in plan(matrix, registry()).runs][:n_runs]


def timed(workers: int, batch: list[dict]) -> tuple[float, float, list[float]]:
    """(start-up seconds, matrix seconds, per-record arrival times)."""
    from seqbench.experiment.executors import LocalExecutor

    pool = LocalExecutor(workers)
    t0 = time.perf_counter()
    started: list[float] = []
    arrivals: list[float] = []
    pool.run(batch, lambda s: started.append(time.perf_counter()),
             lambda r: arrivals.append(time.perf_counter()))
    # Workers report "ready" before their first run is handed out: that wait is start-up.
    startup = started[0] - t0
    return startup, arrivals[-1] - started[0], arrivals


def compare_ray(batch: list[dict], steps: int, repeats: int) -> None:
    """Local pool and Ray actors take turns on the same matrix (so a load that comes and goes
    hits both); medians over the repeats. One Ray instance and its warm actors serve them all."""
    from statistics import median

    from seqbench.experiment.executor_ray import RayExecutor

    workers = os.cpu_count() or 1
    t0 = time.perf_counter()
    ex = RayExecutor(workers)
    init = time.perf_counter() - t0
    local_s, ray_s, warm = [], [], None
    try:
        for _ in range(repeats):
            local_s.append(timed(workers, batch)[1])
            started: list[float] = []
            arrivals: list[float] = []
            t1 = time.perf_counter()
            ex.run(batch, lambda s: started.append(time.perf_counter()),
                   lambda r: arrivals.append(time.perf_counter()))
            warm = warm if warm is not None else started[0] - t1  # the first time only
            ray_s.append(arrivals[-1] - started[0])
    finally:
        ex.close()
    n, local, ray = len(batch), median(local_s), median(ray_s)
    print(f"{n} runs of {steps} steps, {workers} at a time, median of {repeats}: local "
          f"{local:.1f} s ({3600 * n / local:.0f} runs/h), ray {ray:.1f} s "
          f"({3600 * n / ray:.0f} runs/h); ray/local {local / ray:.2f}x "
          f"(each: {', '.join(f'{a / b:.2f}' for a, b in zip(local_s, ray_s))})")
    print(f"Ray's start-up, paid once per launch: {init + warm:.1f} s (starting Ray {init:.1f} s, "
          f"then the actors' imports and warm-up {warm:.1f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=16)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--executor", choices=["local", "ray"], default="local",
                    help="ray: Ray actors against the local pool (needs seqbench[ray])")
    ap.add_argument("--repeats", type=int, default=3, help="ray: turns of each executor")
    args = ap.parse_args()

    batch = specs(args.runs, args.steps)
    if args.executor == "ray":
        compare_ray(batch, args.steps, args.repeats)
        return
    s1, one, _ = timed(1, batch)
    s2, two, _ = timed(2, batch)
    print(f"{len(batch)} runs of {args.steps} steps: 1 worker {one:.1f} s "
          f"({3600 * len(batch) / one:.0f} runs/h), 2 workers {two:.1f} s "
          f"({3600 * len(batch) / two:.0f} runs/h); speed-up {one / two:.2f}x "
          f"(worker start-up {s1:.1f} s / {s2:.1f} s, paid once)")

    tiny = specs(12, 1, tiny=True)
    _, _, arrivals = timed(1, tiny)
    gaps = [b - a for a, b in zip(arrivals[1:], arrivals[2:])]  # warm runs only
    print(f"fixed cost per run in a warm worker (1-step runs, 20 val/test examples): "
          f"median {sorted(gaps)[len(gaps) // 2]:.2f} s over {len(gaps)} runs")


if __name__ == "__main__":
    main()
