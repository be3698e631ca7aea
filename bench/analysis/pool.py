"""Pooling across data sets: a random-effects meta-analysis of one model against another.

Each data set of a task contributes, per size regime, the per-cell comparison the analysis
already made (:func:`seqbench.analysis.analyze.analyze`); statsmodels pools them (DerSimonian-Laird
or Paule-Mandel, HKSJ or normal interval) with a prediction interval for a new data set. See
docs/methods.md#pooling.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import PurePath
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .analyze import VERDICT_FIRST, default_pairs
from .cells import clean

METHODS = {"dl": "DerSimonian–Laird", "pm": "Paule–Mandel"}
INTERVALS = {"hksj": "Hartung–Knapp–Sidik–Jonkman (t, k − 1 df)", "z": "normal (z)"}
DEFAULT_REGIMES = "250-500,1000-2000,full"
PM_ATOL = 1e-10  # Paule-Mandel's estimating equation solved this tightly (statsmodels: 1e-5)
GENERIC_STEMS = ("train", "data", "all")  # a file named so is named by its folder
DATA_SUFFIXES = {".gz", ".bz2", ".xz", ".zip", ".all", ".train", ".label", ".txt", ".tsv",
                 ".csv", ".json", ".jsonl", ".parquet"}


# ---------------------------------------------------------------------------- size regimes


@dataclass(frozen=True)
class Regime:
    """A range of training-set sizes, or the full training split."""

    lo: float = 0.0
    hi: float = math.inf
    full: bool = False

    @property
    def name(self) -> str:
        if self.full:
            return "full"
        if self.lo == self.hi:
            return f"n ≈ {self.lo:,.0f}"
        return f"n ≈ {self.lo:,.0f}–{self.hi:,.0f}"

    def holds(self, n: Any, train_size: Any) -> bool:
        if self.full:
            return train_size is None
        return n is not None and self.lo <= float(n) <= self.hi

    def distance(self, n: Any) -> float:
        """How far a size lies from the regime's middle (log scale); 0 for the full split."""
        if self.full or n is None:
            return 0.0
        return abs(math.log(float(n)) - 0.5 * (math.log(self.lo) + math.log(self.hi)))


def parse_regimes(text: str) -> list[Regime]:
    """'250-500,1000-2000,full' -> three regimes; ValueError with a message otherwise."""
    out: list[Regime] = []
    for item in filter(None, (x.strip() for x in text.split(","))):
        if item.lower() == "full":
            out.append(Regime(full=True))
            continue
        m = re.fullmatch(r"(\d[\d_]*)(?:\s*-\s*(\d[\d_]*))?", item)
        if not m:
            raise ValueError(f"--regimes: {item!r} is not N, LO-HI or 'full' "
                             "(e.g. 250-500,1000-2000,full)")
        lo = float(m.group(1).replace("_", ""))
        hi = float((m.group(2) or m.group(1)).replace("_", ""))
        if not 0 < lo <= hi:
            raise ValueError(f"--regimes: {item!r}: give 0 < LO <= HI")
        out.append(Regime(lo, hi))
    if not out:
        raise ValueError("--regimes: give N, LO-HI or 'full' separated by commas")
    if len(set(out)) != len(out):
        raise ValueError(f"--regimes: {text!r} names a regime twice")
    return out


# ---------------------------------------------------------------------------- the meta-analysis


@dataclass(frozen=True)
class Meta:
    """A random-effects pooled difference over k data sets."""

    k: int
    estimate: float
    se: float  # the standard error of the reported interval
    ci: tuple[float, float]
    tau2: float
    i2: float  # share of the spread beyond sampling error, in [0, 1]
    q: float  # Cochran's Q on k - 1 degrees of freedom
    pi: tuple[float, float] | None  # 95% (or ``confidence``) prediction interval for a new data set
    method: str
    interval: str


def meta_analysis(effects: Sequence[float], variances: Sequence[float], *, method: str = "dl",
                  interval: str = "hksj", confidence: float = 0.95) -> Meta:
    """Random-effects pooling of ``effects`` with their sampling ``variances`` (k >= 2)."""
    from scipy import stats
    from statsmodels.stats.meta_analysis import combine_effects

    eff = np.asarray(effects, dtype=float)
    var = np.asarray(variances, dtype=float)
    if len(eff) < 2 or len(eff) != len(var):
        raise ValueError("a meta-analysis needs at least two effects, each with its variance")
    if method not in METHODS or interval not in INTERVALS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, interval one of "
                         f"{sorted(INTERVALS)}")
    alpha = 1.0 - confidence
    with np.errstate(divide="ignore", invalid="ignore"):
        res = combine_effects(eff, var, method_re=method, use_t=interval == "hksj", alpha=alpha,
                              **({"atol": PM_ATOL} if method == "pm" else {}))
        if res.tau2 < 0:  # DL's moment estimate below 0 means tau^2 = 0; PM from 0 stops there
            res = combine_effects(eff, var, method_re="pm", use_t=interval == "hksj",
                                  alpha=alpha, atol=PM_ATOL)
    k = len(eff)
    if interval == "hksj":
        se = float(max(res.sd_eff_w_re_hksj, res.sd_eff_w_re))
        crit = float(stats.t.isf(alpha / 2, k - 1))
    else:
        se = float(res.sd_eff_w_re)
        crit = float(stats.norm.isf(alpha / 2))
    mu, tau2 = float(res.mean_effect_re), float(max(res.tau2, 0.0))
    pi = None
    if k >= 3:
        half = float(stats.t.isf(alpha / 2, k - 2)) * math.sqrt(tau2 + se**2)
        pi = (mu - half, mu + half)
    q = float(res.q)
    i2 = max(0.0, (q - (k - 1)) / q) if q > 0 else 0.0
    return Meta(k=k, estimate=mu, se=se, ci=(mu - crit * se, mu + crit * se), tau2=tau2, i2=i2,
                q=q, pi=pi, method=method, interval=interval)


# ---------------------------------------------------------------------------- data sets


@dataclass(frozen=True)
class DatasetEffect:
    """One data set's A - B difference at one size: the analysis' per-cell comparison."""

    dataset: str
    variant_key: str
    n: Any  # training examples of the cell
    train_size: Any  # None: the full training split
    diff: float  # positive: A better
    se: float
    ci: tuple[float, float]  # the analysis' own t-interval of the cell
    paired: bool
    seeds: int  # the fewer of the two models' seeds
    result: str  # the analysis' outcome in words ("lstm better", "inconclusive", ...)

    @property
    def variance(self) -> float:
        return self.se**2


@dataclass(frozen=True)
class Pooled:
    """A - B pooled over the data sets of one regime (``meta`` None when fewer than two)."""

    a: str
    b: str
    regime: str
    effects: list[DatasetEffect]
    excluded: list[str] = field(default_factory=list)  # "<data set>: why"
    meta: Meta | None = None
    note: str | None = None


@dataclass(frozen=True)
class TaskPool:
    """The pooled verdicts of one task's data sets."""

    task: str
    metric: str | None
    higher_is_better: bool
    scale: float  # display factor of a difference: 100 for metrics in [0, 1] (points), else 1
    unit: str  # "points" or the metric's name
    datasets: dict[str, str]  # variant key -> data set name
    pair: list[Pooled]  # the chosen pair, one per regime
    versus_best: list[Pooled]  # every model against the best other, per regime


@dataclass(frozen=True)
class PoolReport:
    confidence: float
    method: str
    interval: str
    regimes: list[str]
    tasks: list[TaskPool]  # tasks with at least two data sets
    skipped: list[str]  # tasks with fewer, in words

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = clean(asdict(self))
        return out


def dataset_names(variants: Iterable[dict[str, Any]]) -> dict[str, str]:
    """variant key -> a short name: the first varying parameter's value as a file name without
    its data suffixes ('../x/rt-polarity.all.gz' -> 'rt-polarity'), more values when needed."""
    from .cells import variant_key

    unique = list({variant_key(v): v for v in variants}.items())

    def short(value: Any) -> str:
        text = str(value)
        if "/" not in text and "\\" not in text and not PurePath(text).suffix:
            return text or "default"
        path = PurePath(text)
        name = path.name
        while PurePath(name).suffix.lower() in DATA_SUFFIXES and PurePath(name).stem:
            name = PurePath(name).stem
        if name.lower().startswith(GENERIC_STEMS) and path.parent.name not in ("", ".", ".."):
            return path.parent.name  # '../trec/train_5500.label' -> 'trec'
        return name or text

    depth = max((len(v) for _, v in unique), default=0)
    for k in range(1, depth + 1):
        names = {key: "/".join(short(x) for x in list(v.values())[:k]) or key
                 for key, v in unique}
        if len(set(names.values())) == len(names):
            return names
    return {key: key for key, _ in unique}


def _comparison(cell: dict[str, Any], a: str, b: str) -> dict[str, Any] | None:
    """The cell's comparison of A and B, oriented A - B."""
    for c in cell.get("comparisons", []):
        if (c["a"], c["b"]) == (a, b):
            same: dict[str, Any] = c
            return same
        if (c["a"], c["b"]) == (b, a):
            flip = dict(c, a=a, b=b, diff=None if c["diff"] is None else -c["diff"])
            if c.get("ci"):
                flip["ci"] = [-c["ci"][1], -c["ci"][0]]
            return flip
    return None


def _pick(cells: list[dict[str, Any]], regime: Regime) -> dict[str, Any] | None:
    inside = [c for c in cells if regime.holds(c.get("n"), c.get("train_size"))]
    if not inside:
        return None
    return min(inside, key=lambda c: (regime.distance(c.get("n")), float(c.get("n") or math.inf)))


def _effect(name: str, cell: dict[str, Any], a: str, b: str) -> DatasetEffect | str:
    """The data set's effect, or why it cannot contribute."""
    size = "full" if cell.get("train_size") is None else f"n = {cell.get('n'):,}"
    present = {m["model"] for m in cell["models"] if m.get("n_seeds")}
    missing = [m for m in (a, b) if m not in present]
    if missing:
        return f"{name}: no finished runs of {', '.join(missing)} at {size}"
    cmp = _comparison(cell, a, b)
    if cmp is None or cmp.get("diff") is None:
        return f"{name}: {a} and {b} were not compared at {size}"
    se = cmp.get("se")
    if se is None:
        return f"{name}: too few seeds for a standard error at {size}"
    if not se > 0:
        return (f"{name}: every seed gave the same difference at {size} (standard error 0, no "
                "weight can be given)")
    return DatasetEffect(
        dataset=name, variant_key=cell["variant_key"], n=cell.get("n"),
        train_size=cell.get("train_size"), diff=float(cmp["diff"]), se=float(se),
        ci=tuple(cmp["ci"]), paired=bool(cmp.get("paired")),
        seeds=min(cmp.get("n_a") or 0, cmp.get("n_b") or 0), result=cmp.get("result") or "",
    )


def pool_pair(per_dataset: dict[str, list[dict[str, Any]]], a: str, b: str, regime: Regime, *,
              method: str = "dl", interval: str = "hksj", confidence: float = 0.95) -> Pooled:
    """A - B in ``regime`` pooled over the data sets (name -> that data set's cells)."""
    effects, excluded = [], []
    for name, cells in per_dataset.items():
        cell = _pick(cells, regime)
        if cell is None:
            continue
        eff = _effect(name, cell, a, b)
        if isinstance(eff, str):
            excluded.append(eff)
        else:
            effects.append(eff)
    if len(effects) < 2:
        return Pooled(a, b, regime.name, effects, excluded,
                      note=f"{len(effects)} data set{'s' if len(effects) != 1 else ''} with both "
                           f"{a} and {b} in this regime: pooling needs at least 2")
    meta = meta_analysis([e.diff for e in effects], [e.variance for e in effects],
                         method=method, interval=interval, confidence=confidence)
    note = None if meta.pi else "a prediction interval needs at least 3 data sets"
    return Pooled(a, b, regime.name, effects, excluded, meta, note)


def best_other(per_dataset: dict[str, list[dict[str, Any]]], model: str, regime: Regime,
               higher: bool) -> str | None:
    """The other model with the best mean score over the regime's data sets where both ran
    (among those that ran in the most of them)."""
    scores: dict[str, list[float]] = {}
    for cells in per_dataset.values():
        cell = _pick(cells, regime)
        if cell is None:
            continue
        means = {m["model"]: m["mean"] for m in cell["models"] if m.get("mean") is not None}
        if model not in means:
            continue
        for other, mean in means.items():
            if other != model:
                scores.setdefault(other, []).append(mean)
    if not scores:
        return None
    sign = 1.0 if higher else -1.0
    return max(sorted(scores), key=lambda o: (len(scores[o]), sign * float(np.mean(scores[o]))))


def pairs_for(models: Iterable[str], pair: tuple[str, str] | None = None) -> list[tuple[Any, ...]]:
    """The pairs the analysis must compare for :func:`pool`: the pooled pair first, then every
    other pair of the models (the best-other rows need them all)."""
    every = default_pairs(models)
    return ([tuple(pair)] if pair else []) + [p for p in every if not pair or set(p) != set(pair)]


def display_unit(cells: list[dict[str, Any]]) -> tuple[float, str]:
    """(100, "points") for a metric in [0, 1], else (1, its name): how differences are shown."""
    values = [m["mean"] for c in cells for m in c["models"] if m.get("mean") is not None]
    metric = cells[0].get("primary_metric") or "score"
    if values and 0 <= min(values) and max(values) <= 1:
        return 100.0, "points"
    return 1.0, str(metric)


def pool(analysis: dict[str, Any], *, pair: tuple[str, str] | None = None,
         regimes: Sequence[Regime] | str = DEFAULT_REGIMES, method: str = "dl",
         interval: str = "hksj", confidence: float = 0.95,
         names: Callable[[dict[str, Any]], str | None] | None = None) -> PoolReport:
    """The pooled verdicts of every task with several data sets in ``analysis`` (the dict of
    :func:`seqbench.analysis.analyze.analyze`, which must have compared the pairs asked for:
    its default, every pair, does). ``pair`` defaults to LSTM vs Transformer when both ran,
    else the first pair of the models present. ``names``: a data set's name from its task
    parameters (None: the short name :func:`dataset_names` gives)."""
    if isinstance(regimes, str):
        regimes = parse_regimes(regimes)
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for c in analysis.get("cells", []):
        key = (c["task"], c.get("primary_metric"), bool(c.get("higher_is_better", True)))
        groups.setdefault(key, []).append(c)
    tasks, skipped = [], []
    for (task, metric, higher), cells in groups.items():
        variants = {c["variant_key"]: c.get("variant") or {} for c in cells}
        if len(variants) < 2:
            skipped.append(f"{task} ({metric}) has {len(variants)} data set: pooling needs at "
                           "least 2 task variants")
            continue
        short = dataset_names(variants.values())
        label = {k: v.get("label") or (names(v) if names else None) or short[k]
                 for k, v in variants.items()}
        if len(set(label.values())) < len(label):
            label = short  # the given names do not tell these data sets apart
        per_dataset: dict[str, list[dict[str, Any]]] = {}
        for c in cells:
            per_dataset.setdefault(label[c["variant_key"]], []).append(c)
        models = sorted({m["model"] for c in cells for m in c["models"] if m.get("n_seeds")})
        chosen = pair or (VERDICT_FIRST if set(VERDICT_FIRST) <= set(models)
                          else next(iter(default_pairs(models)), None))

        def pooled(a: str, b: str, r: Regime) -> Pooled:
            return pool_pair(per_dataset, a, b, r, method=method, interval=interval,
                             confidence=confidence)

        pair_rows = [pooled(*chosen, r) for r in regimes] if chosen else []
        versus = []
        for r in regimes:
            rows = []
            for m in models:
                other = best_other(per_dataset, m, r, higher)
                if other is not None:
                    rows.append(pooled(m, other, r))
            rows.sort(key=lambda p: -(p.meta.estimate if p.meta else -math.inf))
            versus += rows
        scale, unit = display_unit(cells)
        tasks.append(TaskPool(task, metric, higher, scale, unit, label, pair_rows, versus))
    return PoolReport(confidence, method, interval, [r.name for r in regimes], tasks, skipped)
