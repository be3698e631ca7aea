"""What the mechanisms cost: gradient probes against a plain run, and truncated BPTT and RTRL
against BPTT, per training step. One process, one thread (the setting of a matrix worker).

* ``probes``: the same run (copy, default widths, validation every 100 steps: the default
  cadence) with and without ``--probe-gradients``. Two measures: the time spent inside the
  probe callback itself (probes and gradient-norm bookkeeping) as a share of the probed run's
  wall time, which is exact and immune to machine noise, and the wall times of both runs
  (interleaved, best of ``--repeats``), which also catch anything the accounting misses.
* ``algorithms``: seconds per training step (one batch) of the Elman RNN under BPTT, truncated
  BPTT (K = a quarter of the sequence), accumulated RTRL and online RTRL, at a few hidden sizes
  and delays, from each run's own training time (validation excluded).

* ``estimate``: the CPU time a preset will take, without running it: per distinct cost class
  of its runs (model and width, sequence length, algorithm) a few real training steps on real
  batches and a forward pass over the validation and test sets, times each run's step count
  and validations, plus a fixed per-run overhead (process-local setup, measured once). CPU
  time (one thread), so that a busy machine does not inflate the estimate.

    python benchmarks/mechanisms_cost.py probes [--steps 300] [--models rnn,lstm,transformer]
    python benchmarks/mechanisms_cost.py algorithms [--steps 20] [--hidden 16,32] [--T 10,50,100]
    python benchmarks/mechanisms_cost.py estimate [--preset mechanisms]
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")


def _spec(model, model_params, task_params, training):
    from seqbench.api import resolve_params
    from seqbench.experiment.plan import TRAINING, RunSpec
    from seqbench.registry import registry

    reg = registry()
    return RunSpec(
        model=model, task="copy", kind="aligned", train_size=1024, seed=0,
        model_params=resolve_params("m", reg.model(model).defaults, model_params),
        task_params=resolve_params("t", reg.task("copy").params, task_params),
        training=resolve_params("training", TRAINING, training),
    )


def probes(args) -> None:
    from seqbench.experiment import probes as probes_module
    from seqbench.experiment.runner import execute

    spent = [0.0]

    def timed(fn):
        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                spent[0] += time.perf_counter() - t
        return wrapper

    cls = probes_module.GradientProbe
    for name in ("on_train_start", "on_validation_end", "on_before_optimizer_step",
                 "on_train_batch_end", "on_train_end"):
        setattr(cls, name, timed(getattr(cls, name)))

    for model in args.models.split(","):
        training = {"max_steps": args.steps, "val_every": 100, "patience": 0, "val_limit": 200}
        task = {"T": args.T, "test_size": 200}
        plain = _spec(model, {}, task, training)
        probed = _spec(model, {}, task, {**training, "probe_gradients": True})
        execute(plain)  # warm up
        walls = {"plain": [], "probed": []}
        shares = []
        for _ in range(args.repeats):  # interleaved, so machine noise hits both alike
            for label, spec in (("plain", plain), ("probed", probed)):
                spent[0] = 0.0
                t = time.perf_counter()
                rec = execute(spec)
                wall = time.perf_counter() - t
                assert rec["status"] == "done", rec.get("error")
                walls[label].append(wall)
                if label == "probed":
                    shares.append(spent[0] / wall)
        a, b = min(walls["plain"]), min(walls["probed"])
        print(f"{model:12s} run {a:6.1f} s  probed {b:6.1f} s  wall +{100 * (b / a - 1):5.1f}%   "
              f"inside the probe {100 * min(shares):4.1f}% of the run "
              f"({len(rec['gradients']['probes'])} probes, {args.steps} steps)")


def algorithms(args) -> None:
    from seqbench.experiment.runner import execute

    recipes = [("bptt", {}), ("tbptt T/4", {"tbptt": 0.25}),
               ("rtrl accumulated", {"rtrl": "accumulated"}), ("rtrl online", {"rtrl": "online"})]
    print(f"{'':10s}" + "".join(f"{name:>18s}" for name, _ in recipes) + "   (ms per step)")
    for hidden in [int(h) for h in args.hidden.split(",")]:
        for T in [int(t) for t in args.T.split(",")]:
            row = []
            for name, extra in recipes:
                spec = _spec("rnn", {"hidden_size": hidden, "embed_size": hidden},
                             {"T": T, "val_size": 50, "test_size": 50},
                             {"max_steps": args.steps, "val_every": args.steps, "patience": 0,
                              **extra})
                rec = execute(spec)
                assert rec["status"] == "done", rec.get("error")
                row.append(1e3 * rec["train_seconds"] / rec["steps"])
            print(f"H={hidden:<3d} T={T:<3d}" + "".join(f"{v:18.1f}" for v in row)
                  + f"   rtrl online / bptt = {row[3] / row[0]:.0f}x")


def estimate(args) -> None:
    import math

    import torch
    import torch.nn.functional as F

    from seqbench.api import PAD
    from seqbench.experiment import matrixfile
    from seqbench.experiment.algorithms import algorithm
    from seqbench.experiment.lit import Batches
    from seqbench.experiment.plan import plan
    from seqbench.experiment.runner import execute
    from seqbench.registry import registry

    reg = registry()

    class Stub:  # what the update generators need of the LightningModule
        def __init__(self, model):
            self.model = model

        def manual_backward(self, loss):
            loss.backward()

    def step_seconds(spec, data, steps=4):
        torch.manual_seed(0)
        model = reg.model(spec.model).build(spec.kind, data.shape(), dict(spec.model_params))
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        bs = min(spec.training["batch_size"], len(data.train))
        batch = Batches(data.train, spec.kind).collate(list(range(bs)))
        alg = algorithm(spec.training)

        def one():
            if alg == "bptt":
                logits = model(batch["src"], batch["src_len"])
                loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), batch["y"].reshape(-1),
                                       ignore_index=PAD if spec.kind != "classification" else -100)
                opt.zero_grad()
                loss.backward()
                opt.step()
                return
            if alg == "rtrl":
                _, updates = model.rtrl_updates(batch["src"], batch["y"],
                                                online=spec.training["rtrl"] == "online")
            else:
                from seqbench.experiment.tbptt import tbptt_updates

                _, updates = tbptt_updates(Stub(model), batch, spec.training["tbptt"])
            for _ in updates:
                opt.step()
                opt.zero_grad()

        one()  # warm
        t = time.process_time()
        for _ in range(steps):
            one()
        train = (time.process_time() - t) / steps
        model.eval()
        t = time.process_time()
        with torch.no_grad():
            for split, limit in ((data.val, spec.training["val_limit"]), (data.test, 0)):
                n = min(limit, len(split)) if limit else len(split)
                b = Batches(split, spec.kind)
                for i in range(0, n, 256):
                    x = b.collate(list(range(i, min(n, i + 256))))
                    if spec.kind == "seq2seq":
                        model(x["src"], x["src_len"], x["tgt_in"])
                    else:
                        model(x["src"], x["src_len"])
        return train, time.process_time() - t

    # CPU time, not wall time: on a shared machine the wall clock also counts the waits for a
    # core, which a run on an idle one does not pay. The fixed per-run cost (Lightning's
    # trainer, checkpoints, data) from a 2-step run.
    tiny = _spec("rnn", {"hidden_size": 8}, {"T": 1, "val_size": 8, "test_size": 8},
                 {"max_steps": 2, "val_every": 2, "patience": 0})
    execute(tiny)  # warm
    t = time.process_time()
    execute(tiny)
    overhead = time.process_time() - t
    print(f"fixed cost per run: {overhead:.2f} s")
    files = matrixfile.matrix_files(matrixfile.preset_path(args.preset))
    total, cache = 0.0, {}
    for f in files:
        m = matrixfile.build_matrix(matrixfile.read(f), None, None, None, None, (), (), {}, {},
                                    list(reg.models), list(reg.tasks))
        part = 0.0
        runs = plan(m, reg).runs
        for spec in runs:
            key = (spec.model, json.dumps(spec.model_params, sort_keys=True),
                   json.dumps(spec.task_params, sort_keys=True), algorithm(spec.training),
                   spec.training.get("tbptt"), spec.training.get("rtrl"))
            if key not in cache:
                data = reg.task(spec.task).load(dict(spec.task_params), spec.train_size, 0)
                cache[key] = step_seconds(spec, data)
            step, evaluation = cache[key]
            vals = math.ceil(spec.training["max_steps"] / spec.training["val_every"])
            probes = vals + 1 if spec.training.get("probe_gradients") else 0
            part += (overhead + spec.training["max_steps"] * step + (vals + 1) * evaluation
                     + probes * step)
        total += part
        print(f"{f.stem:24s} {len(runs):4d} runs  {part / 60:6.1f} CPU-min")
    print(f"{'total':24s} {'':9s}  {total / 60:6.1f} CPU-min "
          f"(about {total / 60 / 2:.0f} min on 2 cores with --workers 2)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("probes", "algorithms", "estimate"))
    ap.add_argument("--preset", default="mechanisms")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--models", default="rnn,lstm,transformer")
    ap.add_argument("--T", default=None, help="copy delay(s)")
    ap.add_argument("--hidden", default="16,32")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    import torch

    from seqbench.experiment.runner import warm_up

    torch.set_num_threads(1)
    warm_up()
    if args.what == "estimate":
        estimate(args)
    elif args.what == "probes":
        args.steps = args.steps or 300
        args.T = int(args.T or 50)
        probes(args)
    else:
        args.steps = args.steps or 20
        args.T = args.T or "10,50,100"
        algorithms(args)


if __name__ == "__main__":
    main()
