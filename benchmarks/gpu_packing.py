"""GPU packing: runs per hour with k runs sharing one GPU, for the LSTM and the Transformer at the
claim study's sizes (bench/experiment/presets/claim.toml: ~20k parameters, batch 32, 300 steps,
validation every 30 steps on at most 300 examples; here on the copy task, T = 10).

    python benchmarks/gpu_packing.py [--ks 1,2,4,8,16] [--runs-per-k 2] [--steps 300]

Each k runs ``runs-per-k * k`` runs through the local pool with ``gpus_per_run = 1/k`` (k warm
workers on the GPU: what ``bench run --gpus-per-run 1/k`` does), timed from the first run handed
out to the last record back; worker start-up, paid once per launch, is left out. Small models
leave a GPU mostly idle, so packing is where its throughput comes from.

Without a GPU the script says so and measures what it can: the same runs with k workers on the
CPU, for k up to the number of cores.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

CLAIM_TRAINING = {"param_budget": 20000, "batch_size": 32, "val_every": 30, "patience": 0,
                  "val_limit": 300, "warmup": 0.05, "schedule": "cosine"}


def specs(model: str, n_runs: int, steps: int, train_size: int) -> list[dict]:
    from seqbench.experiment.plan import Matrix, plan
    from seqbench.registry import registry

    matrix = Matrix(
        models=[model], tasks=["copy"], train_sizes=[train_size], seeds=list(range(n_runs)),
        task_params={"copy": {"T": 10}},
        model_params={"transformer": {"n_heads": 2}} if model == "transformer" else {},
        training={**CLAIM_TRAINING, "max_steps": steps, "val_every": min(30, steps)},
    )
    return [r.to_dict() for r in plan(matrix, registry()).runs]


def measure(batch: list[dict], k: int, gpu: bool) -> tuple[float, int]:
    """(matrix seconds, runs that failed)."""
    from seqbench.experiment.executors import LocalExecutor

    pool = LocalExecutor(k, gpus_per_run=1 / k if gpu else None)
    started: list[float] = []
    arrivals: list[float] = []
    failed = []
    pool.run(batch, lambda s: started.append(time.perf_counter()),
             lambda r: (arrivals.append(time.perf_counter()),
                        r["status"] == "failed" and failed.append(r.get("error"))))
    if failed:
        print(f"  k={k}: {len(failed)} failed, e.g. {failed[0].splitlines()[0]}")
    return arrivals[-1] - started[0], len(failed)


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ks", default="1,2,4,8,16", help="concurrent runs per GPU to try")
    ap.add_argument("--runs-per-k", type=int, default=2, help="runs per worker at each k")
    ap.add_argument("--steps", type=int, default=300, help="optimizer steps per run (claim: 300)")
    ap.add_argument("--train-size", type=int, default=1250, help="training examples per run")
    ap.add_argument("--models", default="lstm,transformer")
    args = ap.parse_args()

    ks = [int(k) for k in args.ks.split(",")]
    gpu = torch.cuda.is_available()
    if gpu:
        where = f"GPU: {torch.cuda.get_device_name(0)}"
    else:
        cores = os.cpu_count() or 1
        kept = [k for k in ks if k <= cores] or [1]
        print(f"no GPU here (torch.cuda.is_available() is False): measuring k runs at once on "
              f"the CPU instead, k up to its {cores} cores ({', '.join(map(str, kept))}); the "
              "GPU table needs a machine with a GPU")
        ks, where = kept, f"CPU, {cores} cores"
    print(f"{where}; {args.steps} steps per run, copy T=10, n={args.train_size}, ~20k parameters")
    print(f"{'model':<12} {'k':>3} {'runs':>5} {'seconds':>8} {'runs/h':>8} {'vs k=1':>7}")
    for model in args.models.split(","):
        base = None
        for k in ks:
            batch = specs(model, args.runs_per_k * k, args.steps, args.train_size)
            seconds, failed = measure(batch, k, gpu)
            rate = 3600 * (len(batch) - failed) / seconds
            base = base or rate
            print(f"{model:<12} {k:>3} {len(batch):>5} {seconds:>8.1f} {rate:>8.0f} "
                  f"{rate / base:>6.2f}x", flush=True)


if __name__ == "__main__":
    main()
