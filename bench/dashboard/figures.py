"""The README's pictures, drawn with matplotlib (the ``figures`` extra) from the dashboard's own
snapshot of a results database, so anyone can regenerate them from the committed database.

Per task variant: ``scaling-<variant>.png`` (mean test score against training-set size, the
t-interval over seeds as a band) and ``curves-<variant>.png`` (validation score against steps at
the smallest and largest size). Per task with several data sets and size regime:
``forest-<task>-<regime>.png``, the pooled verdict's forest plot (``forest.py``).
"""

from __future__ import annotations

import re
from pathlib import Path

# One colour per model, stable across figures (matplotlib's tab10, built-ins first).
ORDER = ("lstm", "transformer", "gru", "rnn", "seq2seq-attention")


def _colour(model: str, palette: list) -> str:
    index = ORDER.index(model) if model in ORDER else len(ORDER) + sum(map(ord, model))
    return palette[index % len(palette)]


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "task"


def short_name(task: str, vkey, taken: set[str]) -> str:
    """A file-name-sized name for a task variant: the task and the first varying parameter's
    value (a file's stem: 'classification-train-5500', 'classification-digits'), more values
    only when needed to tell two variants of the task apart."""
    values = [seg.split("=", 1)[1] for seg in str(vkey or "").split(",") if "=" in seg]
    for k in range(1, len(values) + 1):
        name = slug("-".join([task] + [Path(v).stem or v for v in values[:k]]))
        if name not in taken:
            return name
    name = slug(f"{task}-{vkey}") if values else slug(task)
    while name in taken:
        name += "-"
    return name


def need_matplotlib():
    """matplotlib with a file-only backend, or a one-line error naming the pip command."""
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError(
            "bench figures needs matplotlib: pip install 'seqbench[figures]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw(snapshot, out: Path, models: list[str] | None = None, dpi: int = 110) -> list[Path]:
    """Write every figure of ``snapshot`` into ``out``; returns the paths written, in order."""
    plt = need_matplotlib()
    palette = plt.get_cmap("tab10").colors
    written: list[Path] = []
    taken: set[str] = set()
    for variant in snapshot.summary["variants"]:
        cells = [snapshot.cells[c["id"]] for c in variant["cells"]]
        name = short_name(variant["task"], variant["variant_key"], taken)
        taken.add(name)
        variant = {**variant, "label": name if variant["variant_key"] not in (None, "", "default")
                   else variant["label"]}
        fig = _scaling(plt, palette, variant, cells, models)
        if fig is not None:
            written.append(_save(plt, fig, out / f"scaling-{name}.png", dpi))
        ends = [cells[0]] if len(cells) == 1 else [cells[0], cells[-1]]
        fig = _curves(plt, palette, variant, [snapshot.cell_curves(c["id"]) for c in ends], models)
        if fig is not None:
            written.append(_save(plt, fig, out / f"curves-{name}.png", dpi))
    from .forest import draw_forest

    for f in snapshot.summary.get("forest") or []:
        if _wanted(f["a"], models) and _wanted(f["b"], models):
            name = f"forest-{slug(f['task'])}-{slug(f['regime'].replace(',', ''))}.png"
            written.append(_save(plt, draw_forest(plt, f), out / name, dpi))
    return written


def _save(plt, fig, path: Path, dpi: int) -> Path:
    # metadata without dates: the same database draws byte-identical files
    fig.savefig(path, dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return path


def _wanted(name: str, models: list[str] | None) -> bool:
    return models is None or name in models


def _scaling(plt, palette, variant: dict, cells: list[dict], models):
    lines: dict[str, list[tuple[float, float, float | None, float | None]]] = {}
    for cell in cells:
        for m in cell["models"]:
            if _wanted(m["model"], models) and m.get("mean") is not None and cell.get("n"):
                lo, hi = m["ci"] if m.get("ci") else (None, None)
                lines.setdefault(m["model"], []).append((cell["n"], m["mean"], lo, hi))
    if not lines:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for model, pts in lines.items():
        pts.sort()
        x = [p[0] for p in pts]
        colour = _colour(model, palette)
        ax.plot(x, [p[1] for p in pts], "o-", color=colour, label=model, lw=1.8, ms=4)
        band = [(p[0], p[2], p[3]) for p in pts if p[2] is not None]
        if len(band) > 1:
            ax.fill_between([b[0] for b in band], [b[1] for b in band], [b[2] for b in band],
                            color=colour, alpha=0.18, lw=0)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("training examples")
    ax.set_ylabel(f"test {variant['primary_metric']}"
                  + ("" if variant.get("higher_is_better", True) else " (lower is better)"))
    ax.set_title(f"{variant['label']}: score vs training-set size (mean, 95% t-CI over seeds)",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    return fig


def _curves(plt, palette, variant: dict, cells: list[dict | None], models):
    cells = [c for c in cells if c and any(m["bands"].get("steps") for m in c["models"])]
    if not cells:
        return None
    fig, axes = plt.subplots(1, len(cells), figsize=(5.0 * len(cells), 3.6), squeeze=False)
    for ax, cell in zip(axes[0], cells):
        for m in cell["models"]:
            b = m["bands"].get("steps")
            if not b or not _wanted(m["model"], models):
                continue
            colour = _colour(m["model"], palette)
            ax.plot(b["x"], b["mean"], color=colour, lw=1.8, label=f"{m['model']} ({b['k']} seeds)")
            if b["lo"] is not None:
                lo = [v if v is not None else float("nan") for v in b["lo"]]
                hi = [v if v is not None else float("nan") for v in b["hi"]]
                ax.fill_between(b["x"], lo, hi, color=colour, alpha=0.18, lw=0)
        if cell.get("target") is not None:
            ax.axhline(cell["target"], color="grey", ls=":", lw=1, label="target")
        ax.set_title(f"n = {cell['n']:,}", fontsize=10)
        ax.set_xlabel("optimizer steps")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, fontsize=8)
    axes[0][0].set_ylabel(f"validation {variant['primary_metric']}")
    fig.suptitle(f"{variant['label']}: learning curves (mean over seeds, 95% t-CI)", fontsize=10)
    return fig
