"""Statistical primitives for ``seqbench.analysis``: numpy/scipy only, no records, no I/O.

Student-t means and differences, TOST, Holm, log-rank, bootstrap medians, permutation p-values and
the bounded power-law fit; see docs/methods.md#statistical-primitives.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

EXACT_LIMIT = 100_000
N_PERM = 20_000
INF = math.inf
B_MAX = 3.0
B_COARSE = np.linspace(0.0, B_MAX, 61)  # profile grid over the exponent b (step 0.05) ...
B_FINE = np.linspace(-0.05, 0.05, 21)  # ... refined around the best coarse b (step 0.005)
CROSS_GRID = 1001  # log-spaced points over the measured range when looking for a crossover


def rng_for(seed: int, *key: object) -> np.random.Generator:
    """A generator that depends on the seed and a stable key only (not on evaluation order)."""
    return np.random.default_rng([int(seed), zlib.crc32("|".join(map(str, key)).encode())])


# ---------------------------------------------------------------------------- Student t


def t_quantile(p: ArrayLike, df: ArrayLike) -> Any:
    """The p-quantile of Student's t with ``df`` degrees of freedom (arrays broadcast)."""
    from scipy.stats import t

    return t.ppf(p, df)


def _t_sf(x: ArrayLike, df: ArrayLike) -> Any:
    from scipy.stats import t

    return t.sf(x, df)


def mean_ci(values: ArrayLike, confidence: float) -> Any:
    """Student-t interval of the mean over the last axis: (lo, hi), floats for a 1-D input,
    arrays for a stack of samples; None for fewer than two values."""
    x = np.asarray(values, dtype=float)
    n = x.shape[-1]
    if n < 2:
        return None
    m = x.mean(axis=-1)
    half = t_quantile(0.5 + confidence / 2, n - 1) * x.std(axis=-1, ddof=1) / math.sqrt(n)
    if np.ndim(m) == 0:
        return float(m - half), float(m + half)
    return m - half, m + half


@dataclass(frozen=True)
class TDiff:
    """mean(a) - mean(b) with its standard error and degrees of freedom (paired or Welch)."""

    diff: float
    se: float
    df: float
    paired: bool

    def ci(self, confidence: float) -> tuple[float, float]:
        half = float(t_quantile(0.5 + confidence / 2, self.df)) * self.se
        return self.diff - half, self.diff + half

    def p_value(self) -> float:
        """Two-sided p of H0: difference = 0 (0 when every seed differs by the same nonzero
        amount, 1 when the samples are identical: the t statistic's limits)."""
        if self.se == 0:
            return 1.0 if self.diff == 0 else 0.0
        return float(min(1.0, 2 * _t_sf(abs(self.diff) / self.se, self.df)))

    def tost_p(self, margin: float) -> float:
        """TOST p of H0: |difference| >= margin. p < alpha  <=>  the (1 - 2 alpha) interval
        lies inside (-margin, margin)."""
        if self.se == 0:
            return 0.0 if abs(self.diff) < margin else 1.0
        p_low = _t_sf((self.diff + margin) / self.se, self.df)  # H0: diff <= -margin
        p_high = _t_sf((margin - self.diff) / self.se, self.df)  # H0: diff >= +margin
        return float(max(p_low, p_high))


def t_diff(a: ArrayLike, b: ArrayLike, paired: bool) -> TDiff | None:
    """Paired t over aligned seeds (``a[i]`` and ``b[i]`` share seed i), else Welch; None when a
    side has fewer than two values."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if paired:
        if len(a) != len(b):
            raise ValueError("a paired difference needs one value per seed on each side")
        if len(a) < 2:
            return None
        d = a - b
        return TDiff(float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d))), len(d) - 1, True)
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        df = float(len(a) + len(b) - 2)
    else:  # Welch-Satterthwaite
        df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return TDiff(float(a.mean() - b.mean()), float(se), float(df), False)


def welch_ci(a: ArrayLike, b: ArrayLike, confidence: float) -> tuple[float, float] | None:
    """Welch interval of mean(a) - mean(b) over the last axis (vectorised, for simulations)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    na, nb = a.shape[-1], b.shape[-1]
    va, vb = a.var(axis=-1, ddof=1) / na, b.var(axis=-1, ddof=1) / nb
    df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    half = t_quantile(0.5 + confidence / 2, df) * np.sqrt(va + vb)
    d = a.mean(axis=-1) - b.mean(axis=-1)
    return d - half, d + half


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values, in the input order; None entries are not tested and
    stay None (they do not count towards the family size)."""
    tested = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m = len(tested)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * float(p)))
        out[i] = running
    return out


# ---------------------------------------------------------------------------- censored times


def logrank(times_a: Sequence[float], reached_a: Sequence[bool], times_b: Sequence[float],
            reached_b: Sequence[bool]) -> tuple[float, float] | None:
    """Two-sided log-rank test of equal time-to-event distributions: (z, p).

    ``times``: the event time where ``reached``, else the censoring time (how long the run was
    watched; +inf: it never gets there, at risk beyond every event). z > 0: group A had more
    events than expected, i.e. reached the target sooner. The same statistic as
    ``scipy.stats.logrank`` (scipy >= 1.11); None when nothing happened in either group (no
    event: nothing to compare).
    """
    ta, ea = np.asarray(times_a, dtype=float), np.asarray(reached_a, dtype=bool)
    tb, eb = np.asarray(times_b, dtype=float), np.asarray(reached_b, dtype=bool)
    t = np.concatenate([ta, tb])
    e = np.concatenate([ea, eb])
    in_a = np.concatenate([np.ones(len(ta), bool), np.zeros(len(tb), bool)])
    event_times = np.unique(t[e])
    if not len(event_times):
        return None
    # at risk just before each event time: still watched at that time (censored at t counts)
    at_risk = t[None, :] >= event_times[:, None]  # (J, N)
    died = (t[None, :] == event_times[:, None]) & e[None, :]
    n = at_risk.sum(1).astype(float)
    na = (at_risk & in_a).sum(1).astype(float)
    o = died.sum(1).astype(float)
    oa = (died & in_a).sum(1).astype(float)
    ea_ = o * na / n
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(n > 1, ea_ * (n - o) / n * (n - na) / (n - 1), 0.0)
    var = float(v.sum())
    obs = float((oa - ea_).sum())
    if var <= 0:
        return (0.0, 1.0) if obs == 0 else (math.copysign(INF, obs), 0.0)
    z = obs / math.sqrt(var)
    from scipy.stats import norm

    return z, float(min(1.0, 2 * norm.sf(abs(z))))


# ---------------------------------------------------------------------------- quantiles, medians


def quantile(values: ArrayLike, q: float) -> float:
    """Linear-interpolation quantile that returns +-inf (not NaN) next to an infinite value."""
    s = np.sort(np.asarray(values, dtype=float))
    pos = q * (len(s) - 1)
    lo, hi = int(math.floor(pos)), int(math.ceil(pos))
    frac = pos - lo
    if frac == 0 or s[lo] == s[hi]:
        return float(s[lo])
    if math.isinf(s[lo]) or math.isinf(s[hi]):
        return float(s[hi]) if math.isinf(s[hi]) and s[hi] > 0 else float(s[lo])
    return float(s[lo] + frac * (s[hi] - s[lo]))


def percentile_ci(samples: ArrayLike, confidence: float) -> tuple[float, float]:
    alpha = 1.0 - confidence
    return quantile(samples, alpha / 2), quantile(samples, 1 - alpha / 2)


def median(values: ArrayLike) -> float:
    """The sample median; +inf when the middle value(s) are censored (more than half censored
    always gives +inf; with an even count, exactly half censored does too)."""
    v = np.asarray(values, dtype=float)
    return float(np.median(v)) if len(v) else math.nan


def bootstrap_median_ci(values: ArrayLike, confidence: float, n_boot: int,
                        rng: np.random.Generator) -> tuple[float, float] | None:
    """Percentile interval of the median (no closed form for censored times)."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return None
    idx = rng.integers(0, len(v), size=(n_boot, len(v)))
    return percentile_ci(np.median(v[idx], axis=1), confidence)


# ---------------------------------------------------------------------------- permutation tests


def _tol(x: float) -> float:
    return 1e-9 * max(1.0, abs(x))


def sign_flip_test(d: ArrayLike, rng: np.random.Generator) -> tuple[float, bool]:
    """Two-sided paired sign-flip permutation test of mean(d) = 0: (p, exact)."""
    d = np.asarray(d, dtype=float)
    n = len(d)
    obs = abs(d.mean())
    if 2**n <= EXACT_LIMIT:
        bits = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
        stats = np.abs((1 - 2 * bits) @ d) / n
        return float(np.mean(stats >= obs - _tol(obs))), True
    signs = rng.choice(np.array([-1.0, 1.0]), size=(N_PERM, n))
    k = int(np.sum(np.abs(signs @ d) / n >= obs - _tol(obs)))
    return (1 + k) / (1 + N_PERM), False


def two_sample_test(a: ArrayLike, b: ArrayLike,
                    rng: np.random.Generator) -> tuple[float, bool]:
    """Two-sided permutation test of mean(a) = mean(b) over relabellings: (p, exact)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    pooled = np.concatenate([a, b])
    na, n = len(a), len(a) + len(b)
    total = pooled.sum()
    obs = abs(a.mean() - b.mean())
    if math.comb(n, na) <= EXACT_LIMIT:
        idx = np.array(list(itertools.combinations(range(n), na)), dtype=int)
        sa = pooled[idx].sum(axis=1)
        stats = np.abs(sa / na - (total - sa) / (n - na))
        return float(np.mean(stats >= obs - _tol(obs))), True
    perms = rng.permuted(np.tile(pooled, (N_PERM, 1)), axis=1)
    sa = perms[:, :na].sum(axis=1)
    stats = np.abs(sa / na - (total - sa) / (n - na))
    return (1 + int(np.sum(stats >= obs - _tol(obs)))) / (1 + N_PERM), False


# ---------------------------------------------------------------------------- scaling fits


def power_law(n: ArrayLike, a: Any, b: Any, c: Any) -> Any:
    return a * np.power(np.asarray(n, dtype=float), -b) + c


def _profile(n: np.ndarray, Y: np.ndarray, B: np.ndarray, c_max: float) -> list[np.ndarray]:
    """For every row r of Y and exponent B[r, g] (B may have one row for all), the exact
    least-squares (a, c) with a >= 0, 0 <= c <= c_max, and its squared error: (R, G) arrays."""
    k = n.size
    x = np.power(n, -B[..., None])  # (R or 1, G, k)
    Sx, Sxx = x.sum(-1), (x * x).sum(-1)
    Sy, Syy = Y.sum(1)[:, None], (Y * Y).sum(1)[:, None]  # (R, 1)
    Sxy = (x * Y[:, None, :]).sum(-1)  # (R, G)
    shape = Sxy.shape

    def sse(a: Any, c: Any) -> Any:
        return Syy - 2 * a * Sxy - 2 * c * Sy + a * a * Sxx + 2 * a * c * Sx + k * c * c

    best = [np.full(shape, np.inf), np.zeros(shape), np.zeros(shape)]  # sse, a, c

    def consider(a: Any, c: Any, valid: Any = True) -> None:
        a, c = np.broadcast_to(a, shape), np.broadcast_to(c, shape)
        s = np.where(valid, sse(a, c), np.inf)
        better = s < best[0]
        for arr, new in zip(best, (s, a, c)):
            arr[better] = new[better]

    var = Sxx - Sx * Sx / k
    with np.errstate(divide="ignore", invalid="ignore"):
        a1 = (Sxy - Sx * Sy / k) / var  # unconstrained solution
        c1 = (Sy - a1 * Sx) / k
        ok = (var > 1e-12) & (a1 >= 0) & (c1 >= 0) & (c1 <= c_max)
    consider(np.where(ok, a1, 0.0), np.where(ok, c1, 0.0), ok)
    consider(0.0, np.clip(Sy / k, 0.0, c_max))  # a = 0
    consider(np.maximum(0.0, Sxy / Sxx), 0.0)  # c = 0
    consider(np.maximum(0.0, (Sxy - c_max * Sx) / Sxx), c_max)  # c = c_max
    return best


def profile_fit(n: ArrayLike, Y: ArrayLike, c_max: float = 1.0) -> np.ndarray:
    """Least-squares a*n^-b + c for every row of Y at once (rows: bootstrap replicates).
    For each b the bounded (a, c) is exact; b is searched on a grid of step 0.05 over [0, 3],
    then refined on a grid of step 0.005 around the best. Returns an (R, 3) array of (a, b, c)."""
    n = np.asarray(n, dtype=float)
    Y = np.atleast_2d(np.asarray(Y, dtype=float))
    r = np.arange(len(Y))
    sse, _, _ = _profile(n, Y, B_COARSE[None, :], c_max)
    b0 = B_COARSE[np.argmin(sse, axis=1)]
    B = np.clip(b0[:, None] + B_FINE[None, :], 0.0, B_MAX)
    sse, a, c = _profile(n, Y, B, c_max)
    g = np.argmin(sse, axis=1)
    return np.stack([a[r, g], B[r, g], c[r, g]], axis=1)


def fit_power_law(n: ArrayLike, y: ArrayLike,
                  c_max: float = 1.0) -> tuple[float, float, float] | None:
    """scipy.optimize.curve_fit of a*n^-b + c, started from the profile-grid solution.
    None when the fit fails (the caller falls back to interpolation)."""
    import warnings

    from scipy.optimize import OptimizeWarning, curve_fit

    n, y = np.asarray(n, dtype=float), np.asarray(y, dtype=float)
    p0 = profile_fit(n, y[None, :], c_max)[0]
    lo, hi = np.array([0.0, 0.0, 0.0]), np.array([np.inf, B_MAX, c_max])
    p0 = np.clip(p0, lo, hi - 1e-12)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            p, _ = curve_fit(power_law, n, y, p0=p0, bounds=(lo, hi), maxfev=20_000)
    except (RuntimeError, ValueError):
        return None
    if not np.all(np.isfinite(p)):
        return None
    # keep whichever of the grid start and the refinement has the smaller squared error
    if np.sum((power_law(n, *p0) - y) ** 2) < np.sum((power_law(n, *p) - y) ** 2):
        p = p0
    return float(p[0]), float(p[1]), float(p[2])


def bound_mask(params: ArrayLike, c_max: float, rel: float = 1e-3) -> dict[str, np.ndarray]:
    """For (R, 3) power-law parameters, which rows sit on each bound of the search that makes
    the curve's shape an artefact (a = 0: flat; b = 0 or 3; c = c_max). c = 0 is not one: an
    error that goes to zero is a real asymptote (a task the model learns completely)."""
    p = np.atleast_2d(np.asarray(params, dtype=float))
    a, b, c = p[:, 0], p[:, 1], p[:, 2]
    return {"a = 0": a <= 1e-6,  # curve_fit stops a hair inside its bounds (1e-10 and the like)
            "b = 0": b <= rel * B_MAX, f"b = {B_MAX:g}": b >= B_MAX * (1 - rel),
            f"c = {c_max:g}": c >= c_max - rel * max(c_max, 1e-12)}


def at_bounds(params: ArrayLike, c_max: float, rel: float = 1e-3) -> list[str]:
    """The bounds one power-law fit sits on (see :func:`bound_mask`)."""
    return [name for name, hit in bound_mask(params, c_max, rel).items() if hit[0]]


# ---------------------------------------------------------------------------- crossovers


def first_crossing(logn: np.ndarray, D: np.ndarray, direction: str = "a_to_b") -> np.ndarray:
    """For each row of D = err_b - err_a on the grid ``logn`` (positive: A better), the log n where
    the sign first turns from A-better to B-better (``a_to_b``) or the reverse; NaN if never."""
    D = np.atleast_2d(D)
    tol = 1e-12
    before, after = (D > tol, D < -tol) if direction == "a_to_b" else (D < -tol, D > tol)
    seen = np.maximum.accumulate(before, axis=1)
    cand = np.zeros_like(after)
    cand[:, 1:] = after[:, 1:] & seen[:, :-1]
    has = cand.any(axis=1)
    j = np.argmax(cand, axis=1)
    out = np.full(len(D), np.nan)
    if has.any():
        r = np.nonzero(has)[0]
        jj = j[r]
        d0, d1 = D[r, jj - 1], D[r, jj]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(d0 != d1, d0 / (d0 - d1), 0.0)
        t = np.clip(np.nan_to_num(t), 0.0, 1.0)
        out[r] = logn[jj - 1] + t * (logn[jj] - logn[jj - 1])
    return out


def simultaneous_t(diff: np.ndarray, se: np.ndarray, df: np.ndarray,
                   confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Bonferroni-simultaneous t-intervals of k differences (arrays over the last axis): all k
    cover their true values together with probability >= ``confidence``."""
    diff, se, df = (np.asarray(x, dtype=float) for x in (diff, se, df))
    k = diff.shape[-1]
    half = t_quantile(1 - (1 - confidence) / (2 * k), df) * se
    return diff - half, diff + half


def crossover_range(n: np.ndarray, lo: np.ndarray,
                    hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where B overtakes A, bracketed by the measured sizes: (L, U) per row of simultaneous
    intervals ``lo``/``hi`` of A - B (positive: A better) at sizes ``n``. U is the first size
    where B is significantly better, L the last size before it where A is; -inf/+inf when there
    is none (the bound is open). If the difference changes sign once, the crossover lies in
    (L, U) whenever every interval covers, so with probability >= their joint confidence."""
    n = np.asarray(n, dtype=float)
    lo, hi = np.atleast_2d(lo), np.atleast_2d(hi)
    b_ahead = hi < 0
    upper = np.where(b_ahead.any(1), n[np.argmax(b_ahead, 1)], np.inf)
    a_ahead = (lo > 0) & (n[None, :] < upper[:, None])
    lower = np.where(a_ahead, n[None, :], -np.inf).max(1)
    return lower, upper
