"""Per-step training time of a seqbench run over a hand-written PyTorch loop, in one process.

Both train the same model (same builder, same seed) on the same batches (the same DataLoader)
with AdamW and gradient-norm clipping; seqbench's time is its own measured training time
(validation excluded), the loop's is wall time around its steps. Prints the ratio per model.

    python benchmarks/step_overhead.py [--steps 300] [--models lstm,transformer] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def hand_loop(spec, steps: int) -> float:
    import torch
    import torch.nn.functional as F

    from seqbench.api import PAD
    from seqbench.experiment.lit import train_loader
    from seqbench.registry import registry

    reg = registry()
    data = reg.task(spec.task).load(dict(spec.task_params), spec.train_size, spec.seed)
    torch.manual_seed(spec.seed)
    model = reg.model(spec.model).build(spec.kind, data.shape(), dict(spec.model_params))
    cfg = spec.training
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    loader = train_loader(data.train, spec.kind, cfg["batch_size"], steps, spec.seed)
    model.train()
    start = time.perf_counter()
    for batch in loader:
        logits = model(batch["src"], batch["src_len"])  # aligned: (B, S, V)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), batch["y"].reshape(-1),
                               ignore_index=PAD)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
        opt.step()
    return (time.perf_counter() - start) / steps


def seqbench_run(spec) -> float:
    from seqbench.experiment.runner import execute

    record = execute(spec)
    assert record["status"] == "done", record.get("error")
    return record["train_seconds"] / record["steps"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--models", default="lstm,transformer")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from seqbench.experiment.plan import Matrix, plan
    from seqbench.registry import registry
    from seqbench.experiment.runner import warm_up

    warm_up()
    matrix = Matrix(
        models=args.models.split(","), tasks=["copy"], train_sizes=[1024], seeds=[0],
        task_params={"copy": {"T": 20}},
        # One validation at the very end, so the timed region holds training steps only.
        training={"max_steps": args.steps, "val_every": args.steps, "patience": 0},
    )
    for spec in plan(matrix, registry()).runs:
        seqbench_run(spec), hand_loop(spec, 20)  # warm both paths
        ours, theirs = [], []
        for _ in range(args.repeats):  # interleaved, so machine noise hits both alike
            ours.append(seqbench_run(spec))
            theirs.append(hand_loop(spec, args.steps))
        a, b = min(ours), min(theirs)
        print(f"{spec.model:12s} seqbench {a * 1e3:7.2f} ms/step   hand loop {b * 1e3:7.2f} ms/step"
              f"   ratio {a / b:.3f}")


if __name__ == "__main__":
    main()
