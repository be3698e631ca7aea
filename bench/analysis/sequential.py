"""Sequential decisions on paired seed differences, valid when looking after every round.

``bench decide``'s two rules: repeated confidence intervals with a planned maximum (Pocock-type
alpha spending) and a t-mixture confidence sequence without one. Both give mean +/- h(n) * s over
the paired differences; the verdict is read off that interval. See
docs/methods.md#sequential-decisions.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats
from scipy.special import ndtr  # the normal CDF without scipy.stats' per-call overhead

VERDICTS = ("undecided", "a", "b", "equivalent")  # codes 0..3 returned by replay()
CALIBRATION_PATHS = 1 << 19  # MC error of the spent alpha ~ sqrt(alpha / 2**19) ~ 0.0003
CALIBRATION_SEED = 12  # fixed: the same boundaries on every call and every machine
LAI_G = 2.0  # prior variance of delta/sigma in Lai's mixture; minimises the width near n = 8
LIKELY = 0.8  # seeds_to_decide_estimate: chance of a decision at the projected seed count
OPEN_HORIZON = 1000  # seeds_to_decide_estimate looks no further without a planned maximum


@dataclass(frozen=True)
class Decision:
    """The comparison after ``n`` paired differences (``estimate`` = their mean, ``sd`` their
    sample SD; NaN with too few seeds). ``low``/``high`` are -inf/+inf before ``n_min`` seeds
    (map them to null for JSON). ``valid_at_any_stop`` is
    False only beyond ``n_max``: the alpha is spent, the interval is a plain fixed-n t-interval
    for information, and the verdict is "undecided"."""

    verdict: str  # "a" | "b" | "equivalent" | "undecided"
    estimate: float
    low: float
    high: float
    n: int
    valid_at_any_stop: bool
    sd: float
    margin: float


@dataclass(frozen=True)
class BestDecision:
    """``decide_best``: ``comparisons[m]`` is the Decision on best - m (positive: best is better,
    in the direction of ``higher_is_better``). ``verdict`` is the best model when it is better
    than every other one, "equivalent" when every other one is either worse or equivalent to it
    and at least one is equivalent (``tied`` lists the best and those), else "undecided".
    ``more_seeds`` is seeds_to_decide_estimate over the undecided comparisons (0 when decided,
    None when not likely within the design)."""

    best: str
    verdict: str
    tied: tuple[str, ...]
    comparisons: dict[str, Decision]
    n: int
    alpha_per_pair: float
    valid_at_any_stop: bool
    more_seeds: int | None


N_MIN = 3  # the earliest look: no verdict from fewer paired seeds (an SD needs two)


def pocock_spending(alpha: float, tau: float) -> float:
    """Lan-DeMets Pocock-type spending: the alpha spent by information fraction tau in [0, 1]."""
    return alpha * math.log1p((math.e - 1.0) * tau)


@functools.lru_cache(maxsize=32)
def _planned_factors(alpha: float, n_min: int, n_max: int) -> tuple[float, ...]:
    """h(n) for n = 0..n_max (inf before n_min) by simulating the t-statistics of null paths.

    At each look, the boundary c_n on |t_n| is set so that the paths crossing for the first time
    there make up exactly the alpha newly spent; h(n) = c_n / sqrt(n). One vector per look (not
    a paths x looks matrix) keeps the memory at a few MB."""
    rng = np.random.default_rng(CALIBRATION_SEED)
    m = CALIBRATION_PATHS
    total, squares = np.zeros(m), np.zeros(m)
    alive = np.ones(m, dtype=bool)
    factors = [math.inf] * (n_max + 1)
    for n in range(1, n_max + 1):
        x = rng.standard_normal(m)
        total += x
        squares += x * x
        if n < n_min:
            continue
        mean = total / n
        t = np.abs(mean) / np.sqrt((squares - n * mean * mean) / (n - 1) / n)
        # Counting from the cumulative target avoids rounding drift over the looks.
        cross = round(pocock_spending(alpha, n / n_max) * m) - int(m - alive.sum())
        left = np.sort(t[alive])
        if cross <= 0:
            c = left[-1] * 1.0000001 if len(left) else math.inf  # spend nothing at this look
        else:
            c = 0.5 * (left[-cross - 1] + left[-cross])  # exactly `cross` paths lie above c
        alive &= t <= c
        factors[n] = float(c / math.sqrt(n))
    return tuple(factors)


def lai_factor(n: int, alpha: float, g: float = LAI_G) -> float:
    """h(n) of Lai's t-mixture confidence sequence: the BF_10 of the one-sample test of mean mu,

        BF = (1 + n g)^(-1/2) * [(S + n (xbar - mu)^2) / (S + n (xbar - mu)^2 / (1 + n g))]^(n/2)

    with S the sum of squared deviations, stays below 1/alpha exactly when
    |xbar - mu| < h(n) * s. Solved in closed form for r = n (xbar - mu)^2 / S."""
    if n < 2:
        return math.inf
    ng = n * g
    c = math.exp((0.5 * math.log1p(ng) - math.log(alpha)) * 2.0 / n)
    if c >= 1.0 + ng:
        return math.inf  # too few seeds for this alpha: every mu is still plausible
    r = (c - 1.0) / (1.0 - c / (1.0 + ng))
    return math.sqrt(r * (n - 1) / n)


def t_factor(n: int, alpha: float) -> float:
    """h(n) of the ordinary fixed-n two-sided t-interval (not valid under peeking)."""
    return math.inf if n < 2 else float(stats.t.ppf(1 - alpha / 2, n - 1) / math.sqrt(n))


def verdict_codes(low: ArrayLike, high: ArrayLike, margin: float) -> np.ndarray:
    """VERDICTS codes for arrays of intervals (equivalence first, see the module notes)."""
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    codes = np.zeros(np.broadcast(low, high).shape, dtype=np.int8)
    codes[low > 0] = 1
    codes[high < 0] = 2
    codes[(low > -margin) & (high < margin)] = 3
    return codes


def replay(paths: ArrayLike, factors: Sequence[float], margin: float,
           n_min: int) -> tuple[np.ndarray, np.ndarray]:
    """Run a stopping rule over many paths of differences at once (simulations): stop at the
    first look n >= n_min whose interval mean +/- factors[n] * s gives a verdict.

    ``paths`` is (sims, n); ``factors[k]`` is h(k) for k = 0..n. Returns (codes, stops): the
    VERDICTS code at the stop and the seeds it took (0 where no verdict came)."""
    x = np.asarray(paths, dtype=float)
    sims, n_seen = x.shape
    ns = np.arange(1, n_seen + 1)
    means = np.cumsum(x, axis=1) / ns
    sq = np.cumsum(x * x, axis=1) - ns * means * means
    sds = np.sqrt(np.clip(sq, 0.0, None) / np.maximum(ns - 1, 1))
    codes, stops = np.zeros(sims, dtype=np.int8), np.zeros(sims, dtype=np.int64)
    for n in range(max(n_min, 2), n_seen + 1):
        h = factors[n]
        if not math.isfinite(h):
            continue
        half = h * sds[:, n - 1]
        new = verdict_codes(means[:, n - 1] - half, means[:, n - 1] + half, margin)
        first = (stops == 0) & (new > 0)
        codes[first], stops[first] = new[first], n
    return codes, stops


def _as_differences(values: ArrayLike) -> np.ndarray:
    d = np.asarray(values, dtype=float)
    if d.ndim != 1:
        raise ValueError(f"differences must be one value per seed (1-D), got shape {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError("differences must be finite numbers (a NaN or inf slipped in)")
    return d


class Sequential:
    """The stopping rule for one pair of models.

    ``margin`` (>= 0, in the metric's units): differences inside +/- margin count as equivalent
    (0: equivalence is never declared). ``alpha``: the chance of any wrong verdict, at any stop.
    ``n_max``: the planned maximum of seeds (group-sequential design), or None for an open-ended
    confidence sequence. ``n_min`` (>= 2): no verdict before this many seeds.

    ``decide(differences)`` takes *all* paired differences so far (the state lives in the
    results database, so a resumed decision simply passes the longer list)."""

    def __init__(self, margin: float, alpha: float = 0.05, n_max: int | None = 20,
                 n_min: int = N_MIN):
        if not (math.isfinite(margin) and margin >= 0):
            raise ValueError(f"margin must be a finite number >= 0, got {margin}")
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must lie between 0 and 1, got {alpha}")
        if int(n_min) != n_min or n_min < 2:
            raise ValueError(f"n_min must be an integer >= 2 (an SD needs two seeds), got {n_min}")
        if n_max is not None and (int(n_max) != n_max or n_max < n_min):
            raise ValueError(f"n_max must be an integer >= n_min ({n_min}), got {n_max}")
        self.margin, self.alpha = float(margin), float(alpha)
        self.n_min = int(n_min)
        self.n_max = None if n_max is None else int(n_max)

    def __repr__(self) -> str:
        return (f"Sequential(margin={self.margin}, alpha={self.alpha}, n_max={self.n_max}, "
                f"n_min={self.n_min})")

    def radius_factor(self, n: int) -> float:
        """h(n): the interval's half-width in units of the sample SD after n seeds (inf where
        the rule gives no verdict: before n_min and beyond n_max)."""
        if n < self.n_min or (self.n_max is not None and n > self.n_max):
            return math.inf
        if self.n_max is None:
            return lai_factor(n, self.alpha)
        return _planned_factors(self.alpha, self.n_min, self.n_max)[n]

    def factors(self, upto: int) -> list[float]:
        """[h(0), ..., h(upto)], for ``replay``."""
        return [self.radius_factor(n) for n in range(upto + 1)]

    def replay(self, paths: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """This rule over many simulated paths at once (see the module-level ``replay``);
        columns beyond n_max are ignored."""
        x = np.asarray(paths, dtype=float)
        if self.n_max is not None:
            x = x[:, : self.n_max]
        return replay(x, self.factors(x.shape[1]), self.margin, self.n_min)

    def decide(self, differences: ArrayLike) -> Decision:
        d = _as_differences(differences)
        n = len(d)
        est = float(d.mean()) if n else math.nan
        sd = float(d.std(ddof=1)) if n >= 2 else math.nan
        beyond = self.n_max is not None and n > self.n_max
        h = t_factor(n, self.alpha) if beyond else self.radius_factor(n)
        if math.isfinite(h):
            low, high = est - h * sd, est + h * sd
        else:
            low, high = -math.inf, math.inf
        code = 0 if beyond else int(verdict_codes(low, high, self.margin))
        return Decision(verdict=VERDICTS[code], estimate=est, low=low, high=high, n=n,
                        valid_at_any_stop=not beyond, sd=sd, margin=self.margin)

    def seeds_to_decide_estimate(self, differences: ArrayLike) -> int | None:
        """How many more seeds would likely decide: the smallest k such that, if the current
        mean and SD were the truth, the interval after n + k seeds gives a verdict with chance
        >= LIKELY (0 when already decided; None with fewer than 2 seeds, or when that is not
        within n_max, or within OPEN_HORIZON more seeds when open-ended). A plug-in guess for
        the "not decided yet" message, not a guarantee: the current mean is itself noisy."""
        d = _as_differences(differences)
        n = len(d)
        if n < 2:
            return None
        if self.decide(d).verdict != "undecided":
            return 0
        horizon = self.n_max if self.n_max is not None else n + OPEN_HORIZON
        ks = np.arange(max(n + 1, self.n_min), horizon + 1)
        if len(ks) == 0:
            return None
        est, sd = abs(float(d.mean())), float(d.std(ddof=1))
        fac = np.array([self.radius_factor(int(k)) for k in ks])
        if sd == 0:  # the interval will be the point est: decided at the first finite look
            ok = np.isfinite(fac) & ((est > 0) | (est < self.margin))
        else:
            half = fac * sd
            se = sd / np.sqrt(ks)
            p_better = ndtr((est - half) / se)
            room = self.margin - half  # the estimate must land inside (-room, room)
            p_equal = np.where(room > 0, ndtr((room - est) / se)
                               - ndtr((-room - est) / se), 0.0)
            ok = np.maximum(p_better, p_equal) >= LIKELY
        hits = np.flatnonzero(ok)
        return int(ks[hits[0]] - n) if len(hits) else None


def decide_best(scores: Mapping[str, Sequence[float]], margin: float, *, alpha: float = 0.05,
                n_max: int | None = 20, n_min: int = N_MIN,
                higher_is_better: bool = True) -> BestDecision:
    """The best model (highest mean score, or lowest when ``higher_is_better`` is False; the
    first listed on a tie) against each other one. ``scores[model]`` lists the model's score per
    evaluation seed, in the same seed order for every model (paired). See ``BestDecision``."""
    if len(scores) < 2:
        raise ValueError(f"decide_best needs at least two models, got {len(scores)}")
    names = list(scores)
    rows = {m: _as_differences(scores[m]) for m in names}
    lengths = {len(v) for v in rows.values()}
    if len(lengths) != 1:
        raise ValueError("every model needs a score for the same seeds (paired), got "
                         + ", ".join(f"{m}: {len(v)}" for m, v in rows.items()))
    sign = 1.0 if higher_is_better else -1.0
    n = lengths.pop()
    means = [sign * v.mean() if n else 0.0 for v in rows.values()]
    best = names[int(np.argmax(means))]
    k = len(names)
    rule = Sequential(margin, alpha / (k * (k - 1) / 2), n_max=n_max, n_min=n_min)
    others = [m for m in names if m != best]
    comps = {m: rule.decide(sign * (rows[best] - rows[m])) for m in others}
    verdicts = {m: c.verdict for m, c in comps.items()}
    tied: tuple[str, ...]
    if all(v == "a" for v in verdicts.values()):
        verdict, tied = best, (best,)
    elif all(v in ("a", "equivalent") for v in verdicts.values()):
        verdict = "equivalent"
        tied = (best, *[m for m in others if verdicts[m] == "equivalent"])
    else:
        verdict, tied = "undecided", ()
    more: int | None = 0
    if verdict == "undecided":
        guesses = [rule.seeds_to_decide_estimate(sign * (rows[best] - rows[m]))
                   for m in others if verdicts[m] == "undecided"]
        known = [g for g in guesses if g is not None]
        more = max(known) if len(known) == len(guesses) else None
    return BestDecision(best=best, verdict=verdict, tied=tied, comparisons=comps, n=n,
                        alpha_per_pair=rule.alpha,
                        valid_at_any_stop=all(c.valid_at_any_stop for c in comps.values()),
                        more_seeds=more)
