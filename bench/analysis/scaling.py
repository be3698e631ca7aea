"""How the error falls with training size, and where one model overtakes another: power-law fits,
the crossover and its range, whole-seed bootstrap. See docs/methods.md#scaling."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import stats as st
from .cell_summary import CellSummary, ModelRow, Pair, present
from .cells import ModelRuns
from .margins import scale_of
from .outcomes import public

TOL = 1e-12
RESAMPLING = "whole seeds (shared by every size and model)"


@dataclass
class Scaling:
    """One task variant: each model's error against n with its fit, and each pair's crossover."""

    task: str
    variant_key: str
    primary_metric: str | None
    higher_is_better: bool
    error: str | None  # how the metric became an error, e.g. "1 - accuracy"
    models: dict[str, dict[str, Any]]
    crossovers: list[dict[str, Any]]
    resampling: str = RESAMPLING

    def crossover(self, a: str, b: str) -> dict[str, Any] | None:
        return next((x for x in self.crossovers if (x["a"], x["b"]) == (a, b)), None)

    def to_dict(self) -> dict[str, Any]:
        return public(self)


@dataclass(frozen=True)
class ErrorScale:
    """How a metric becomes an error in [0, c_max] that a power law can fit."""

    description: str
    to_error: Callable[[Any], Any]
    c_max: float


@dataclass(frozen=True)
class SizePoint:
    """One model at one training size of a task variant."""

    n: float
    runs: ModelRuns
    row: ModelRow  # its row in the cell


def error_scale(metric: str, higher: bool, values: np.ndarray) -> ErrorScale | None:
    """The bounded error scale of the metric, or None when none fits."""
    if not len(values):
        return None
    lo, hi = float(values.min()), float(values.max())
    scale = scale_of(metric, [lo, hi], higher)
    if higher and scale == "percent":
        return ErrorScale(f"1 - {metric}/100", lambda m: 1.0 - m / 100.0, 1.0)
    if higher and scale == "unit":
        return ErrorScale(f"1 - {metric}", lambda m: 1.0 - m, 1.0)
    if not higher and lo >= 0:
        return ErrorScale(metric, lambda m: m, max(1.0, hi))
    return None


def model_fit(n: np.ndarray, err: np.ndarray, scale: ErrorScale | None) -> dict[str, Any]:
    """The power law a*n^-b + c, or why interpolation in log n stands in for it."""
    fit: dict[str, Any] = {"method": "interpolation", "a": None, "b": None, "c": None,
                           "error": scale.description if scale else None, "reason": None,
                           "at_bound": None, "power_law": None}
    if scale is None:
        fit["reason"] = "the metric has no bounded error scale"
    elif len(n) < 4:
        fit["reason"] = f"fewer than 4 sizes ({len(n)})"
    else:
        params = st.fit_power_law(n, err, scale.c_max)
        if params is None:
            fit["reason"] = "power-law fit failed"
        elif bounds := st.at_bounds(params, scale.c_max):
            fit["at_bound"] = bounds
            fit["power_law"] = {"a": params[0], "b": params[1], "c": params[2]}
            fit["reason"] = (f"the power-law fit sits on a parameter bound ({', '.join(bounds)}), "
                             "so interpolation in log n is used instead")
        else:
            fit.update(method="power-law", a=params[0], b=params[1], c=params[2])
    return fit


class Curve:
    """One model's error against n in one task variant, and its whole-seed bootstrap replicates."""

    def __init__(self, n: np.ndarray, err: np.ndarray, fit: dict[str, Any], boot_err: np.ndarray,
                 c_max: float):
        self.n, self.err, self.fit, self.boot_err = n, err, fit, boot_err
        self.boot_params = (st.profile_fit(n, boot_err, c_max)
                            if fit["method"] == "power-law" else None)
        # a replicate whose refit sits on a bound falls back to interpolation, as the fit does
        self.boot_on_bound = (np.any(list(st.bound_mask(self.boot_params, c_max).values()), 0)
                              if self.boot_params is not None else None)

    def on(self, grid: np.ndarray, boot: bool = False) -> np.ndarray:
        """Error curves on a log-n grid: one row (the fit) or one row per bootstrap replicate."""
        rows = self.boot_err if boot else self.err[None, :]
        logn = np.log(self.n)
        interp = np.stack([np.interp(grid, logn, row) for row in rows])
        if self.fit["method"] != "power-law":
            return interp
        p = self.boot_params if boot else np.array([[self.fit["a"], self.fit["b"], self.fit["c"]]])
        assert p is not None
        law = p[:, :1] * np.exp(-p[:, 1:2] * grid[None, :]) + p[:, 2:3]
        if not boot:
            return np.asarray(law)
        assert self.boot_on_bound is not None
        return np.where(self.boot_on_bound[:, None], interp, law)


def seed_draws(seeds: list[Any], n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, len(seeds)) counts: each replicate draws len(seeds) seeds with replacement."""
    k = len(seeds)
    return rng.multinomial(k, np.full(k, 1.0 / k), size=n_boot).astype(float)


def replicate_means(points: list[tuple[float, ModelRuns]], universe: list[Any],
                    W: np.ndarray) -> np.ndarray:
    """Per size, the mean of each replicate's drawn seeds (a seed drawn twice counts twice).
    A replicate that drew none of the seeds a size has (a seed missing there) keeps the plain
    mean at that size."""
    index = {s: i for i, s in enumerate(universe)}
    cols = []
    for _, m in points:
        idx = np.array([index[s] for s in m.seeds])
        v = np.array(m.values, dtype=float)
        w = W[:, idx]
        tot = w.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            cols.append(np.where(tot > 0, (w @ v) / np.where(tot > 0, tot, 1), v.mean()))
    return np.stack(cols, axis=1)


@dataclass(frozen=True)
class Bracket:
    """Where B overtakes A between measured sizes; an open side is infinite."""

    lower: float = -math.inf
    upper: float = math.inf
    sizes: int = 0


def bracket(a: str, b: str, cells: list[CellSummary], confidence: float) -> Bracket | None:
    """Where B overtakes A, placed between measured sizes by Bonferroni-simultaneous
    t-intervals of A - B at every size both measured with a test (see st.crossover_range)."""
    pts = []
    for c in cells:
        for x in c.all_comparisons():
            if ({x.a, x.b} == {a, b} and x.se is not None and x.diff is not None
                    and c.row["n"] is not None):
                sign = 1.0 if x.a == a else -1.0
                pts.append((float(c.row["n"]), sign * x.diff, x.se, x.df))
    if not pts:
        return None
    pts.sort()
    n, diff, se, df = (np.array(v, dtype=float) for v in zip(*pts))
    lo, hi = st.simultaneous_t(diff, se, df, confidence)
    lower, upper = st.crossover_range(n, lo, hi)
    return Bracket(float(lower[0]), float(upper[0]), len(n))


def _range_text(a: str, b: str, br: Bracket, confidence: float) -> str:
    lower, upper = br.lower, br.upper
    how = f"simultaneous {confidence:.0%} t-intervals of the difference at {br.sizes} sizes"
    if math.isfinite(lower) and math.isfinite(upper):
        where = f"between n = {lower:,.0f} and {upper:,.0f}"
    elif math.isfinite(upper):
        where = f"at or below n = {upper:,.0f}, where {b} is first shown ahead"
    elif math.isfinite(lower):
        where = f"above n = {lower:,.0f}, the last size where {a} is shown ahead"
    else:
        return f"no measured size shows either ahead ({how})"
    return f"the measured sizes place it {where} ({how})"


def crossover(a: str, b: str, ca: Curve, cb: Curve, br: Bracket | None,
              confidence: float) -> dict[str, Any]:
    """Where B's error curve first drops below A's over the sizes both measured."""
    fa, fb = ca.fit, cb.fit
    method = fa["method"] if fa["method"] == fb["method"] else f"{fa['method']}/{fb['method']}"
    out: dict[str, Any] = {
        "a": a, "b": b, "n": None, "ci": None, "ci_open": None, "ci_method": None,
        "bootstrap_ci": None, "crossover_share": None, "no_crossover_share": None,
        "method": method, "direction": None, "better_throughout": None, "range": None,
        "text": ""}
    fallback = [f"{m}: {f['reason']}" for m, f in ((a, fa), (b, fb)) if f.get("at_bound")]
    how = method + (f"; {'; '.join(fallback)}" if fallback else "")
    lo, hi = max(ca.n.min(), cb.n.min()), min(ca.n.max(), cb.n.max())
    if not lo < hi:
        out["text"] = "no crossover can be placed: fewer than two training sizes measured for both"
        return out
    out["range"] = [lo, hi]
    grid = np.linspace(math.log(lo), math.log(hi), st.CROSS_GRID)
    D = cb.on(grid) - ca.on(grid)  # positive: A has the lower error
    x_ab = st.first_crossing(grid, D, "a_to_b")[0]
    Db = cb.on(grid, boot=True) - ca.on(grid, boot=True)
    reps = st.first_crossing(grid, Db, "a_to_b")
    found = np.isfinite(reps)
    out["crossover_share"] = float(found.mean())
    out["no_crossover_share"] = 1.0 - out["crossover_share"]
    span = f"n = {lo:,.0f}–{hi:,.0f}"
    if np.isfinite(x_ab):
        _placed(out, float(x_ab), grid, Db, reps, br, (lo, hi), confidence)
        out["text"] = (
            f"{b} overtakes {a} at n ≈ {out['n']:,.0f} (fit; {how}); "
            f"{_range_text(a, b, br or Bracket(), confidence)}; {out['crossover_share']:.0%} of "
            f"bootstrap replicates (whole seeds) have a crossover in {span}")
    else:
        _not_placed(out, grid, D, span, how)
    return out


def _placed(out: dict[str, Any], x_ab: float, grid: np.ndarray, Db: np.ndarray,
            reps: np.ndarray, br: Bracket | None, span: tuple[float, float],
            confidence: float) -> None:
    """A crossover inside the measured range: its n, its range and its bootstrap interval."""
    out["n"] = float(math.exp(x_ab))
    out["direction"] = "a_to_b"
    # a replicate without a crossover in range has it beyond one end: below the range when B is
    # already better at the first size where the curves differ, above it otherwise
    found = np.isfinite(reps)
    rest = Db[~found]
    nonzero = np.abs(rest) > TOL
    first = np.where(nonzero.any(1), rest[np.arange(len(rest)), np.argmax(nonzero, 1)], 1.0)
    vals = reps.copy()
    vals[~found] = np.where(first < 0, -np.inf, np.inf)
    boot = st.percentile_ci(vals, confidence)
    out["bootstrap_ci"] = [float(math.exp(min(max(x, grid[0]), grid[-1]))) for x in boot]
    br = br or Bracket()
    out["ci_open"] = [not math.isfinite(br.lower), not math.isfinite(br.upper)]
    out["ci"] = [br.lower if math.isfinite(br.lower) else float(span[0]),
                 br.upper if math.isfinite(br.upper) else float(span[1])]
    out["ci_method"] = ("between measured sizes: the last where A and the first where B is "
                        "ahead, by Bonferroni-simultaneous t-intervals")


def _not_placed(out: dict[str, Any], grid: np.ndarray, D: np.ndarray, span: str,
                how: str) -> None:
    """No crossover from A to B in range: the reverse one, or who is better throughout."""
    a, b = out["a"], out["b"]
    x_ba = st.first_crossing(grid, D, "b_to_a")[0]
    if np.isfinite(x_ba):
        out["direction"] = "b_to_a"
        out["reverse_n"] = float(math.exp(x_ba))
        out["text"] = (f"none in the measured range ({span}) in that direction: {b} is better at "
                       f"the small sizes and {a} overtakes it at n ≈ {out['reverse_n']:,.0f} "
                       f"({how})")
    elif np.all(D >= -TOL) and np.any(D > TOL):
        out["better_throughout"] = a
        out["text"] = (f"none in the measured range ({span}): {a} is better throughout "
                       f"({out['crossover_share']:.0%} of bootstrap replicates have one; "
                       f"{how})")
    elif np.all(D <= TOL) and np.any(D < -TOL):
        out["better_throughout"] = b
        out["text"] = f"none in the measured range ({span}): {b} is better throughout ({how})"
    else:
        out["text"] = f"none in the measured range ({span}): the curves coincide ({how})"


def _by_model(cells: list[CellSummary]) -> dict[str, list[SizePoint]]:
    """Each model's measured sizes of a task variant, smallest first."""
    out: dict[str, list[SizePoint]] = {}
    for c in sorted(cells, key=lambda c: c.row["n"] if c.row["n"] is not None else math.inf):
        if c.row["n"] is None:
            continue
        for row in c.models:
            if row.n_seeds:
                out.setdefault(row.model, []).append(
                    SizePoint(float(c.row["n"]), c.cell.models[row.model], row))
    return out


def scaling(task: str, vkey: str, cells: list[CellSummary], pairs: list[Pair],
            confidence: float, n_boot: int, seed: int) -> Scaling:
    """Per model the error against n and its fit; per asked pair the crossover."""
    metric, higher = cells[0].row["primary_metric"], cells[0].row["higher_is_better"]
    per_model = _by_model(cells)
    everything = np.array([v for pts in per_model.values() for p in pts for v in p.runs.values])
    scale = error_scale(metric, higher, everything)
    to_err = scale.to_error if scale else (lambda m: -m if higher else m)
    universe = sorted({s for pts in per_model.values() for p in pts for s in p.runs.seeds},
                      key=lambda s: (str(type(s)), s))
    W = (seed_draws(universe, n_boot, st.rng_for(seed, "scaling", task, vkey))
         if universe else np.zeros((n_boot, 0)))
    models, curves = {}, {}
    for name, pts in per_model.items():
        n = np.array([p.n for p in pts], dtype=float)
        err = to_err(np.array([p.row.mean for p in pts]))
        fit = model_fit(n, err, scale)
        boot = to_err(replicate_means([(p.n, p.runs) for p in pts], universe, W))
        curves[name] = Curve(n, err, fit, boot, scale.c_max if scale else 1.0)
        models[name] = {
            "n": [int(p.n) if float(p.n).is_integer() else p.n for p in pts],
            "mean": [p.row.mean for p in pts],
            "ci_lo": [p.row.ci[0] if p.row.ci else None for p in pts],
            "ci_hi": [p.row.ci[1] if p.row.ci else None for p in pts],
            "n_seeds": [p.row.n_seeds for p in pts],
            "fit": fit,
        }
    crossovers = [crossover(a, b, curves[a], curves[b], bracket(a, b, cells, confidence),
                            confidence)
                  for a, b in present(pairs, per_model)]
    return Scaling(task, vkey, metric, higher, scale.description if scale else None, models,
                   crossovers)
