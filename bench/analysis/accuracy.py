"""Which model scores better in one cell: the t-test of A vs B over seeds, equivalence within the
practical margin, the floor/ceiling and budget guards, Holm over a family. See
docs/methods.md#comparisons."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import stats as st
from .cells import Cell, ModelRuns
from .outcomes import MIN_TEST_SEEDS, OUTCOME_TEXT, PRIVATE, Outcome, public
from .speed import SpeedResult, SpeedSide, compare_speed, decide_speed, paired_seeds

FLOOR_RULE = ("a model is at the floor when its scores cannot be told from chance: its "
              "t-interval reaches the declared chance level")


@dataclass
class Comparison:
    """A vs B in one cell: the test, equivalence, the guards, the outcome and the speed result."""

    a: str
    b: str
    n_a: int = 0
    n_b: int = 0
    paired: bool = False
    positive_means: str = ""
    diff: float | None = None  # positive: A better
    se: float | None = None
    df: float | None = None
    ci: list[float] | None = None
    test: str = "none"
    p_value: float | None = None
    p_holm: float | None = None
    holm_family: int | None = None
    margin: float | None = None
    equivalence_ci: list[float] | None = None
    equivalence_level: float | None = None
    equivalence_ci_unadjusted: list[float] | None = None
    tost_p: float | None = None
    tost_p_holm: float | None = None
    p_permutation: float | None = None
    permutation_exact: bool | None = None
    guard: str | None = None  # "floor", "ceiling", "unavailable"
    at_floor: list[str] = field(default_factory=list)
    budget_limited: bool = False
    budget_steps: int | None = None
    outcome: Outcome = Outcome.INCONCLUSIVE
    winner: str | None = None
    result: str = "inconclusive"
    reason: str = ""
    speed: SpeedResult | None = None
    holm_scope: str | None = None
    chance: float | None = field(default=None, metadata=PRIVATE)
    perfect: float | None = field(default=None, metadata=PRIVATE)
    size: Any = field(default=None, metadata=PRIVATE)  # the cell's n, for the Holm scope
    diverged: str = field(default="", metadata=PRIVATE)  # "lstm: 2", who lost seeds
    td: st.TDiff | None = field(default=None, metadata=PRIVATE)  # for the equivalence interval

    def to_dict(self) -> dict[str, Any]:
        out = public(self)
        out["speed"] = None if self.speed is None else self.speed.to_dict()
        return out
def guard_of(cell: Cell, margin: float | None) -> dict[str, Any]:
    """What the floor and ceiling guards can use in this cell (see docs/methods.md#guards)."""
    chance, perfect = cell.extras.get("chance"), cell.extras.get("perfect")
    out = {"chance": chance, "perfect": perfect,
           "floor_rule": FLOOR_RULE if chance is not None else None,
           "ceiling_margin": margin if perfect is not None else None, "note": None}
    if chance is None:
        out["note"] = ("the task declares no chance level, so the floor guard could not be "
                       "applied")
    elif perfect is not None and margin is None:
        out["note"] = "no practical margin for this metric, so no ceiling guard"
    return out


def _at_floor(m: ModelRuns, chance: float, higher: bool, confidence: float) -> bool:
    """Its scores cannot be told from chance: its t-interval reaches chance (or lies past it;
    one seed: its score is no better than chance)."""
    sign = 1.0 if higher else -1.0
    ci = st.mean_ci(m.values, confidence)
    worst = min(sign * ci[0], sign * ci[1]) if ci else sign * m.values[0]
    return bool(worst <= sign * chance)


def _where(m: ModelRuns, guard: dict[str, Any], higher: bool, confidence: float) -> str | None:
    """"floor" when the model's scores cannot be told from chance, "ceiling" when its mean sits
    within the practical margin of the best attainable value."""
    if not m.values:
        return None
    if guard["floor_rule"] and _at_floor(m, guard["chance"], higher, confidence):
        return "floor"
    ceiling = guard["ceiling_margin"]
    if ceiling is not None and (1 if higher else -1) * (guard["perfect"] - m.mean) <= ceiling:
        return "ceiling"
    return None


def compare(sa: SpeedSide, sb: SpeedSide, ma: ModelRuns, mb: ModelRuns, cell: Cell,
            margin: float | None, guard: dict[str, Any], target: float | None,
            confidence: float, seed: int) -> Comparison:
    """Everything about A vs B in one cell that needs no other cell; :func:`decide` adds the
    Holm-adjusted p-values and the outcome."""
    sign = 1.0 if cell.higher_is_better else -1.0
    out = Comparison(ma.name, mb.name, len(ma.values), len(mb.values),
                     positive_means=f"{ma.name} better", margin=margin, chance=guard["chance"],
                     perfect=guard["perfect"])
    if not ma.values or not mb.values:
        out.reason = f"no finished runs of {ma.name if not ma.values else mb.name}"
        out.speed = compare_speed(sa, sb, ma, mb, target, False, False, sign, confidence)
        return out
    va, vb, paired = paired_seeds(ma, mb, sign * np.array(ma.values), sign * np.array(mb.values))
    out.paired = paired
    out.diff = float(va.mean() - vb.mean())
    places = {m.name: _where(m, guard, cell.higher_is_better, confidence) for m in (ma, mb)}
    out.at_floor = [name for name, w in places.items() if w == "floor"]
    where = set(places.values())
    if len(where) == 1 and None not in where:
        out.guard = where.pop()
    elif guard["floor_rule"] is None:
        out.guard = "unavailable"
    out.speed = compare_speed(sa, sb, ma, mb, target, out.guard == "floor", paired, sign,
                              confidence)
    _test(out, va, vb, paired, cell, margin, confidence, seed)
    return out


def _test(out: Comparison, va: np.ndarray, vb: np.ndarray, paired: bool, cell: Cell,
          margin: float | None, confidence: float, seed: int) -> None:
    """The t-interval, its p, TOST against the margin and the permutation p."""
    td = st.t_diff(va, vb, paired)
    if td is None:
        out.reason = "too few seeds"
        return
    out.se, out.df, out.ci = td.se, td.df, list(td.ci(confidence))
    out.test = "paired t" if paired else "Welch t"
    if min(len(va), len(vb)) < MIN_TEST_SEEDS:
        out.reason = "too few seeds"
        return
    out.p_value = td.p_value()
    if margin is not None:
        out.equivalence_ci_unadjusted = list(td.ci(1 - 2 * (1 - confidence)))
        out.tost_p = td.tost_p(margin)
        out.td = td
    rng = st.rng_for(seed, "compare", cell.task, cell.variant_key, cell.train_size, out.a, out.b)
    p, exact = st.sign_flip_test(va - vb, rng) if paired else st.two_sample_test(va, vb, rng)
    out.p_permutation, out.permutation_exact = p, exact


def decide(cmps: list[Comparison], confidence: float) -> None:
    """Holm over one family of comparisons (one pair's at the sizes of a task variant, or every
    pair's there), then each outcome."""
    alpha = 1.0 - confidence
    for c, p in zip(cmps, st.holm([c.p_value for c in cmps])):
        c.p_holm = p
    for c, p in zip(cmps, st.holm([c.tost_p for c in cmps])):
        c.tost_p_holm = p
    tested = [c for c in cmps if c.p_value is not None]
    family = len(tested)
    n_pairs = len({(c.a, c.b) for c in tested})
    n_sizes = len({c.size for c in tested})
    scope = (f"{family} comparisons ({n_pairs} pairs × {n_sizes} sizes)" if n_pairs > 1
             else f"{family} size{'s' * (family != 1)}")
    for c in cmps:
        _equivalence_interval(c, alpha, family)
    speed_adj = st.holm([c.speed.p_value if c.speed else None for c in cmps])
    for c, sp in zip(cmps, speed_adj):
        c.holm_family = family if c.p_value is not None else None
        c.holm_scope = scope if c.p_value is not None else None
        _outcome(c, alpha)
        if c.speed is not None:
            c.speed.p_holm = sp
            decide_speed(c.speed, c.a, c.b, alpha)
        if c.budget_limited:
            _budget_words(c)


def _equivalence_interval(c: Comparison, alpha: float, family: int) -> None:
    """The interval whose lying inside +-margin is the Holm-adjusted TOST's rejection: level
    1 - 2 alpha p/p_adj (Bonferroni's 1 - 2 alpha/m when p_adj = m p)."""
    td, p, adj = c.td, c.tost_p, c.tost_p_holm
    if td is None or p is None or adj is None:
        return
    share = p / adj if p > 0 and adj > 0 else 1.0 / family
    c.equivalence_level = 1 - 2 * alpha * share
    c.equivalence_ci = list(td.ci(c.equivalence_level))


def _budget_words(c: Comparison) -> None:
    """A cell whose runs ran out of steps measured who is ahead after N steps: its results say
    so, in the place where "not measurable" would stand."""
    steps = f"{c.budget_steps:,}"
    if c.outcome in (Outcome.A_BETTER, Outcome.B_BETTER):
        c.result = f"budget-limited: {c.winner} ahead after {steps} steps"
    elif c.outcome == Outcome.EQUIVALENT:
        c.result = f"budget-limited: within ±{c.margin:g} after {steps} steps"
    elif c.outcome == Outcome.INCONCLUSIVE:
        c.result = f"budget-limited: neither ahead after {steps} steps"
    s = c.speed
    if s is None or s.outcome == Outcome.NOT_MEASURABLE:
        return
    s.result = (f"budget-limited: {s.faster} reached the target sooner within {steps} steps"
                if s.faster else f"budget-limited: inconclusive within {steps} steps")


def _outcome(c: Comparison, alpha: float) -> None:
    if c.diff is None:
        return  # no finished runs of one side: the reason says so
    if c.guard in ("floor", "ceiling"):
        _not_measurable(c)
    elif c.p_value is None or c.p_holm is None:
        return  # too few seeds
    elif c.diverged:
        c.reason = ("seeds that diverged have no test score (" + c.diverged + "): "
                    "comparing the survivors would favour the unstable model")
    elif c.tost_p_holm is not None and c.tost_p_holm < alpha:
        c.outcome, c.result = Outcome.EQUIVALENT, OUTCOME_TEXT[Outcome.EQUIVALENT]
        c.reason = (f"the Holm-adjusted {c.equivalence_level:.1%} interval lies inside "
                    f"±{c.margin:g}"
                    + (" (significant, but smaller than the margin)" if c.p_holm < alpha else ""))
    elif c.p_holm < alpha:
        c.winner = c.a if c.diff > 0 else c.b
        c.outcome = Outcome.A_BETTER if c.diff > 0 else Outcome.B_BETTER
        c.result = f"{c.winner} better"
        c.reason = "significant after Holm correction"
    elif c.p_value < alpha:
        c.reason = (f"not significant after Holm correction over {c.holm_scope} "
                    f"(p = {c.p_value:.3g}, adjusted {c.p_holm:.3g})")
    else:
        c.reason = "no significant difference"
        if c.margin is not None:
            c.reason += f", and not shown to be within ±{c.margin:g}"


def _not_measurable(c: Comparison) -> None:
    c.outcome = Outcome.NOT_MEASURABLE
    c.result = OUTCOME_TEXT[Outcome.NOT_MEASURABLE]
    if c.guard == "floor":
        c.reason = (f"both models' scores cannot be told from chance ({c.chance:g}): "
                    "their t-intervals reach it (floor)")
    else:
        c.reason = (f"both models are within the practical margin ±{c.margin:g} of "
                    f"the best attainable score ({c.perfect:g}) (ceiling)")
