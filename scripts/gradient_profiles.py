#!/usr/bin/env python3
"""The step-0 gradient profiles of a results database as a picture (the README's figure).

For every configuration probed (``bench run ... --probe-gradients``) on one task variant: the
mean over the probe batch of ‖∂L/∂x_t‖, the gradient of the final position's loss with respect
to the input embedding at position t, before any update, on a log scale (geometric mean over
seeds; the band spans the seeds). Also prints each configuration's ratio first/last position.

    .venv/bin/python scripts/gradient_profiles.py --db results/mechanisms-demo.sqlite \\
        --task copy --where T=100 --out results/gradient-profiles.png

Needs matplotlib (``pip install 'seqbench[figures]'``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="results/bench.sqlite")
    ap.add_argument("--task", default="copy")
    ap.add_argument("--where", action="append", default=[], metavar="PARAM=VALUE",
                    help="task parameter the runs must have (repeatable), e.g. T=100")
    ap.add_argument("--models", help="comma-separated configuration labels to draw (default: all)")
    ap.add_argument("--out", default="results/gradient-profiles.png")
    args = ap.parse_args(argv)

    from seqbench.analysis.gradients import FLOOR, configurations
    from seqbench.store import Store, StoreError

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("error: this figure needs matplotlib: pip install 'seqbench[figures]'",
              file=sys.stderr)
        return 2
    where = {}
    for item in args.where:
        key, eq, value = item.partition("=")
        if not eq:
            print(f"error: --where {item!r}: write PARAM=VALUE", file=sys.stderr)
            return 2
        where[key] = value
    try:
        with Store(args.db, readonly=True) as store:
            runs = [r for r in store.runs(task=args.task, status="done")
                    if all(str(r.config.get("task_params", {}).get(k)) == v
                           for k, v in where.items())]
            gradients = store.gradients(r.run_id for r in runs)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configs = configurations(runs, gradients)
    if args.models:
        wanted = [m.strip() for m in args.models.split(",")]
        configs = sorted((c for c in configs if c["label"] in wanted),
                         key=lambda c: wanted.index(c["label"]))
    if not configs:
        print(f"error: no probed runs of task {args.task!r} {where or ''} in {args.db}",
              file=sys.stderr)
        return 2

    fig, ax = plt.subplots(figsize=(8, 4.6), dpi=120)
    floor_drawn = False
    for c in configs:
        mean = c["step0"]["log10_mean"]
        xs = [t for t, v in enumerate(mean) if v is not None]
        ys = [10 ** mean[t] for t in xs]
        (line,) = ax.plot(xs, ys, label=f"{c['label']}  (ratio {_ratio(c)})", lw=1.8)
        if c["n"] > 1:
            lo, hi = c["step0"]["log10_min"], c["step0"]["log10_max"]
            ax.fill_between(xs, [10 ** lo[t] for t in xs], [10 ** hi[t] for t in xs],
                            color=line.get_color(), alpha=0.15, lw=0)
        floor_drawn |= c["step0"]["zeros"] > 0
    ax.set_yscale("log")
    ax.set_xlabel("input position t (the loss is at the last one)")
    ax.set_ylabel("‖∂L/∂x_t‖, mean over the probe batch")
    variant = " ".join(f"{k}={v}" for k, v in where.items())
    ax.set_title(f"Gradient reaching each input position at step 0: {args.task} {variant}".strip())
    if floor_drawn:
        ax.axhline(FLOOR, color="#999", lw=0.8, ls=":")
        ax.annotate("exact 0 in float32 (underflow)", (0, FLOOR), xytext=(2, 4),
                    textcoords="offset points", fontsize=8, color="#666")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    print(f"{'configuration':45} seeds  ratio ‖∂L/∂x_0‖ / ‖∂L/∂x_last‖ at step 0 (median, min-max)")
    for c in configs:
        r = c["ratio"]
        spread = (f"  ({r['min']:.3g} - {r['max']:.3g})"
                  if c["n"] > 1 and r["min"] is not None else "")
        print(f"{c['label']:45} {c['n']:5}  {_ratio(c)}{spread}")
    print(f"wrote {out}")
    return 0


def _ratio(c: dict) -> str:
    v = c["ratio"]["median"]
    return "n/a" if v is None else ("0 (underflow)" if v == 0 else f"{v:.2g}")


if __name__ == "__main__":
    sys.exit(main())
