"""Which model converges faster: time to a pair's target in steps, seconds and FLOPs, log-rank
tests, and the validation curve's AUC. See docs/methods.md#time-to-target."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..records import Curves, RunRecord
from . import stats as st
from .cells import Cell, ModelRuns
from .outcomes import MIN_TEST_SEEDS, OUTCOME_TEXT, PRIVATE, Outcome, public

Point = tuple[float, float, float]  # (step, seconds, validation score)
Span = tuple[float, float]  # a step range
Timed = tuple[float | None, Any]  # a median time and its CI, +inf kept (never reached)

LADDER = (0.5, 0.75, 1.0)  # easier targets: this share of the way from chance to the reference
TARGET_RULE = ("per pair: the median of the two models' median best validation scores (the "
               "cell's rows and plots show its first pair's)")
UNITS = ("steps", "samples", "seconds", "flops")


@dataclass(frozen=True)
class TimeTo:
    """When one run first reached a target; +inf in every unit when it never did."""

    steps: float
    samples: float
    seconds: float
    reached: bool


@dataclass
class SpeedResult:
    """A vs B in time to the pair's own target."""

    target: float | None
    ttt: dict[str, dict[str, Any]]  # per model: ttt_summary
    logrank_steps: dict[str, float] | None = None
    logrank_seconds: dict[str, float] | None = None
    p_value: float | None = None
    p_holm: float | None = None
    faster: str | None = None
    auc_diff: float | None = None
    auc_ci: list[float] | None = None
    outcome: Outcome = Outcome.INCONCLUSIVE
    result: str = "inconclusive"
    reason: str = ""
    at_floor: bool = field(default=False, metadata=PRIVATE)  # both models at chance
    z: float | None = field(default=None, metadata=PRIVATE)  # log-rank z in steps: its sign
    # per model and unit: the median time and CI with +inf (the JSON writes None there)
    raw: dict[str, dict[str, Timed]] = field(default_factory=dict, metadata=PRIVATE)

    def to_dict(self) -> dict[str, Any]:
        return public(self)


@dataclass
class SpeedSide:
    """One model's runs against one target: the JSON summary, each run's time, each AUC."""

    ttt: dict[str, Any]
    times: list[TimeTo]
    auc: list[float | None]  # per finished run, over the pair's shared step range
    raw: dict[str, Timed] = field(default_factory=dict)  # per unit, +inf kept


def points(curves: Curves, run: RunRecord) -> list[Point]:
    """(step, seconds, value) of a run's validations, in step order."""
    pts = [(float(p["step"]), float(p.get("seconds") or 0.0), float(v))
           for p in curves.get(run.run_id, [])
           if (v := p.get("val_primary")) is not None and math.isfinite(v)]
    return sorted(pts)


def best_validation(run: RunRecord, curves: Curves, higher: bool) -> float | None:
    """A run's best validation score: its curve's best (what time-to-target reads), else the
    stored ``best_val``."""
    vals = [v for _, _, v in points(curves, run)]
    if vals:
        return max(vals) if higher else min(vals)
    return None if run.best_val is None else float(run.best_val)


def _reaches(v: float, target: float, higher: bool) -> bool:
    tol = 1e-12 * max(1.0, abs(target))
    return v >= target - tol if higher else v <= target + tol


def time_to(run: RunRecord, curves: Curves, target: float | None, higher: bool) -> TimeTo:
    """The run's first validation at or past ``target``; only finished runs can reach it."""
    if target is not None and run.status == "done":
        for p in sorted(curves.get(run.run_id, []), key=lambda p: p["step"]):
            v = p.get("val_primary")
            if v is not None and math.isfinite(v) and _reaches(v, target, higher):
                return TimeTo(float(p["step"]), float(p["samples"]), float(p["seconds"]), True)
    return TimeTo(st.INF, st.INF, st.INF, False)


def auc(pts: list[Point], lo: float, hi: float) -> float | None:
    """Mean validation score over steps [lo, hi]: linear between validations, the first value
    before the first one, the last value after the run stopped (it had plateaued or diverged)."""
    if not pts:
        return None
    x = np.array([p[0] for p in pts])
    y = np.array([p[2] for p in pts])
    if hi <= lo:
        return float(y[-1])
    grid = np.unique(np.concatenate([[lo, hi], x[(x > lo) & (x < hi)]]))
    v = np.interp(grid, x, y)
    return float(np.sum((v[1:] + v[:-1]) / 2 * np.diff(grid)) / (hi - lo))


def ttt_summary(times: np.ndarray, reached: int, of: int, rng_key: tuple[Any, ...],
                confidence: float, n_boot: int, seed: int) -> tuple[dict[str, Any],
                                                                 dict[str, Timed]]:
    """Median time-to-target with a bootstrap CI in each currency: the columns of ``times`` are
    steps, samples, seconds and (when every run counted its step's cost) FLOPs. Returns the
    JSON summary (+inf as None) and, per unit, the median and CI with +inf."""
    out: dict[str, Any] = {"reached": reached, "of": of}
    raw: dict[str, Timed] = {}
    for j, name in enumerate(UNITS[:times.shape[1]]):
        col = times[:, j]
        med = st.median(col) if len(col) else None
        ci = st.bootstrap_median_ci(col, confidence, n_boot, st.rng_for(seed, *rng_key, name))
        raw[name] = (med, ci)
        out[f"median_{name}"] = None if med is None or math.isinf(med) else med
        out[f"{name}_ci"] = None if ci is None else [None if math.isinf(x) else x for x in ci]
        out[f"{name}_ci_infinite"] = bool(ci is not None and any(math.isinf(x) for x in ci))
    steps = raw["steps"][0]
    out["censored_median"] = bool(steps is not None and math.isinf(steps))
    return out, raw


def speed_side(m: ModelRuns, cell: Cell, curves: Curves, target: float | None,
               horizon: Span | None, confidence: float, n_boot: int, seed: int) -> SpeedSide:
    """One model's time to ``target`` and its runs' validation AUC over ``horizon``.

    A run that never got there has an infinite time: see docs/methods.md#time-to-target."""
    runs = m.done + m.diverged
    times = [time_to(r, curves, target, cell.higher_is_better) for r in runs]
    table = np.array([(t.steps, t.samples, t.seconds) for t in times], dtype=float).reshape(-1, 3)
    step_flops = [r.step_flops for r in runs]
    if runs and all(step_flops):
        # FLOPs to target = steps to target x the run's FLOPs per step (inf stays inf): a model
        # that needs fewer steps of a costlier step does not look faster than it is.
        table = np.column_stack([table, table[:, 0] * np.array(step_flops, dtype=float)])
    aucs = {r.run_id: auc(points(curves, r), *horizon) for r in m.done} if horizon else {}
    key = ("ttt", cell.task, cell.variant_key, cell.train_size, m.name)
    reached = sum(t.reached for t in times)
    summary, raw = ttt_summary(table, reached, len(runs), key, confidence, n_boot, seed)
    return SpeedSide(summary, times, [aucs.get(r.run_id) for r in m.done], raw)


def ladder_rows(m: ModelRuns, curves: Curves, ladder: list[tuple[float, float]],
                higher: bool) -> list[dict[str, Any]]:
    """Median steps to each of the easier targets (see docs/methods.md#time-to-target)."""
    rows = []
    for level, value in ladder:
        times = [time_to(r, curves, value, higher) for r in m.done + m.diverged]
        med = st.median([t.steps for t in times]) if times else None
        rows.append({"level": level, "target": value, "reached": sum(t.reached for t in times),
                     "of": len(times),
                     "median_steps": None if med is None or math.isinf(med) else med})
    return rows


def paired_seeds(ma: ModelRuns, mb: ModelRuns, va: np.ndarray,
                 vb: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """(va, vb reordered to va's seeds, paired): paired when both ran exactly the same seeds."""
    paired = (len(set(ma.seeds)) == len(ma.seeds) == len(mb.seeds) == len(set(mb.seeds))
              and set(ma.seeds) == set(mb.seeds))
    if paired:
        order = {s: i for i, s in enumerate(mb.seeds)}
        vb = vb[[order[s] for s in ma.seeds]]
    return va, vb, paired


def compare_speed(sa: SpeedSide, sb: SpeedSide, ma: ModelRuns, mb: ModelRuns,
                  target: float | None, guard_floor: bool, paired: bool, sign: float,
                  confidence: float) -> SpeedResult:
    """A vs B in time to the pair's own target; :func:`decide_speed` adds the outcome."""
    out = SpeedResult(target, {ma.name: sa.ttt, mb.name: sb.ttt}, at_floor=guard_floor,
                      raw={ma.name: sa.raw, mb.name: sb.raw})
    if target is None:
        out.reason = "no validation target (no finished run has a validation score)"
        return out
    if min(len(sa.times), len(sb.times)) < MIN_TEST_SEEDS:
        out.reason = f"fewer than {MIN_TEST_SEEDS} runs a side"
        return out
    if not _logrank(out, sa.times, sb.times):
        return out
    _auc_difference(out, sa, sb, ma, mb, paired, sign, confidence)
    return out


def _logrank(out: SpeedResult, ta: list[TimeTo], tb: list[TimeTo]) -> bool:
    """Log-rank in steps and in seconds; False when either could not be run."""
    tests = []
    for unit in ("steps", "seconds"):
        res = st.logrank([getattr(t, unit) for t in ta], [t.reached for t in ta],
                         [getattr(t, unit) for t in tb], [t.reached for t in tb])
        setattr(out, f"logrank_{unit}", None if res is None else {"z": res[0], "p": res[1]})
        tests.append(res)
    steps, seconds = tests
    if steps is None or seconds is None:
        out.reason = "neither model reached the target"
        return False
    # intersection-union: "faster" must hold in steps and in seconds, so both tests must reject
    # (p = the larger) and agree on the direction
    out.p_value = max(steps[1], seconds[1])
    if steps[0] * seconds[0] < 0:
        out.p_value = 1.0
        out.reason = "the log-rank tests in steps and in seconds point different ways"
    out.z = steps[0]
    return True


def _auc_difference(out: SpeedResult, sa: SpeedSide, sb: SpeedSide, ma: ModelRuns,
                    mb: ModelRuns, paired: bool, sign: float, confidence: float) -> None:
    """The AUC difference, a supporting figure oriented like accuracy (positive: A better)."""
    xa = np.array([v for v in sa.auc if v is not None]) * sign
    xb = np.array([v for v in sb.auc if v is not None]) * sign
    if not (len(xa) and len(xb)):
        return
    out.auc_diff = float(xa.mean() - xb.mean())
    if paired and len(xa) == len(ma.done) and len(xb) == len(mb.done):
        xa, xb, _ = paired_seeds(ma, mb, xa, xb)
    td = st.t_diff(xa, xb, paired and len(xa) == len(xb))
    if td is not None:
        out.auc_ci = list(td.ci(confidence))


def decide_speed(s: SpeedResult, a: str, b: str, alpha: float) -> None:
    """The speed outcome of A vs B once its Holm-adjusted p is known."""
    if s.at_floor:
        s.outcome, s.result = Outcome.NOT_MEASURABLE, OUTCOME_TEXT[Outcome.NOT_MEASURABLE]
        s.reason = "both models are at the floor: the target is a chance-level score"
        return
    if s.p_holm is None or s.z is None:
        return
    if s.p_holm >= alpha:
        s.reason = s.reason or ("no significant difference in time to target (log-rank in steps "
                                "and in seconds, Holm-adjusted)")
        return
    faster, slower = (a, b) if s.z > 0 else (b, a)
    if s.auc_diff and (s.auc_diff < 0) == (faster == a):
        s.reason = f"the log-rank tests favour {faster}, but its AUC is worse"
        return
    mine, theirs = s.raw[faster]["steps"][0], s.raw[slower]["steps"][0]  # both ran: not None
    if mine is not None and theirs is not None and mine > theirs:
        s.reason = (f"the log-rank tests favour {faster}, but its median time to the target "
                    "is longer")
        return
    s.faster = faster
    s.outcome = Outcome.A_FASTER if faster == a else Outcome.B_FASTER
    s.result = f"{faster} faster"
    s.reason = "log-rank in steps and seconds, Holm-adjusted; the AUC agrees"
