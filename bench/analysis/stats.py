"""Statistical primitives for ``seqbench.analysis``: numpy/scipy only, no records, no I/O.

* Bootstrap CIs are percentile intervals from a seeded ``numpy.random.Generator``.
* Values may be ``+inf`` (a run that never reached a target is censored, never dropped): medians
  and quantiles then stay infinite instead of turning into NaN.
* Permutation tests are two-sided on the absolute difference of means, exact when the number of
  relabellings is at most ``EXACT_LIMIT``, otherwise sampled (``N_PERM`` draws, p = (1+k)/(1+N)).
* Scaling fits: error(n) = a * n**(-b) + c with a >= 0, 0 <= b <= 3, 0 <= c <= c_max.
"""

from __future__ import annotations

import itertools
import math
import zlib

import numpy as np

EXACT_LIMIT = 100_000
N_PERM = 20_000
INF = math.inf
B_COARSE = np.linspace(0.0, 3.0, 61)  # profile grid over the exponent b (step 0.05) ...
B_FINE = np.linspace(-0.05, 0.05, 21)  # ... refined around the best coarse b (step 0.005)
CROSS_GRID = 1001  # log-spaced points over the measured range when looking for a crossover


def rng_for(seed: int, *key) -> np.random.Generator:
    """A generator that depends on the seed and a stable key only (not on evaluation order)."""
    return np.random.default_rng([int(seed), zlib.crc32("|".join(map(str, key)).encode())])


# ---------------------------------------------------------------------------- quantiles, medians


def quantile(values, q: float) -> float:
    """Linear-interpolation quantile that returns +inf (not NaN) next to an infinite value."""
    s = np.sort(np.asarray(values, dtype=float))
    pos = q * (len(s) - 1)
    lo, hi = int(math.floor(pos)), int(math.ceil(pos))
    frac = pos - lo
    if frac == 0 or s[lo] == s[hi]:
        return float(s[lo])
    if math.isinf(s[lo]) or math.isinf(s[hi]):
        return INF
    return float(s[lo] + frac * (s[hi] - s[lo]))


def percentile_ci(samples, confidence: float) -> tuple[float, float]:
    alpha = 1.0 - confidence
    return quantile(samples, alpha / 2), quantile(samples, 1 - alpha / 2)


def median(values) -> float:
    """The sample median; +inf when the middle value(s) are censored (more than half censored
    always gives +inf; with an even count, exactly half censored does too)."""
    v = np.asarray(values, dtype=float)
    return float(np.median(v)) if len(v) else math.nan


# ---------------------------------------------------------------------------- bootstrap


def _indices(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    return rng.integers(0, n, size=(n_boot, n))


def bootstrap_mean_ci(values, confidence: float, n_boot: int, rng) -> tuple[float, float] | None:
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return None
    return percentile_ci(v[_indices(rng, len(v), n_boot)].mean(axis=1), confidence)


def bootstrap_median_ci(values, confidence: float, n_boot: int, rng) -> tuple[float, float] | None:
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return None
    return percentile_ci(np.median(v[_indices(rng, len(v), n_boot)], axis=1), confidence)


def bootstrap_diff_ci(a, b, paired: bool, confidence: float, n_boot: int, rng):
    """CI of mean(a) - mean(b): resampling seed pairs when paired, each side alone otherwise."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return None
    if paired:
        d = a - b
        return percentile_ci(d[_indices(rng, len(d), n_boot)].mean(axis=1), confidence)
    ma = a[_indices(rng, len(a), n_boot)].mean(axis=1)
    mb = b[_indices(rng, len(b), n_boot)].mean(axis=1)
    return percentile_ci(ma - mb, confidence)


# ---------------------------------------------------------------------------- permutation tests


def _tol(x: float) -> float:
    return 1e-9 * max(1.0, abs(x))


def sign_flip_test(d, rng) -> tuple[float, bool]:
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


def two_sample_test(a, b, rng) -> tuple[float, bool]:
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


def power_law(n, a, b, c):
    return a * np.power(np.asarray(n, dtype=float), -b) + c


def _profile(n: np.ndarray, Y: np.ndarray, B: np.ndarray, c_max: float):
    """For every row r of Y and exponent B[r, g] (B may have one row for all), the exact
    least-squares (a, c) with a >= 0, 0 <= c <= c_max, and its squared error: (R, G) arrays."""
    k = n.size
    x = np.power(n, -B[..., None])  # (R or 1, G, k)
    Sx, Sxx = x.sum(-1), (x * x).sum(-1)
    Sy, Syy = Y.sum(1)[:, None], (Y * Y).sum(1)[:, None]  # (R, 1)
    Sxy = (x * Y[:, None, :]).sum(-1)  # (R, G)
    shape = Sxy.shape

    def sse(a, c):
        return Syy - 2 * a * Sxy - 2 * c * Sy + a * a * Sxx + 2 * a * c * Sx + k * c * c

    best = [np.full(shape, np.inf), np.zeros(shape), np.zeros(shape)]  # sse, a, c

    def consider(a, c, valid=True):
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


def profile_fit(n, Y, c_max: float = 1.0) -> np.ndarray:
    """Least-squares a*n^-b + c for every row of Y at once (rows: bootstrap replicates).
    For each b the bounded (a, c) is exact; b is searched on a grid of step 0.05 over [0, 3],
    then refined on a grid of step 0.005 around the best. Returns an (R, 3) array of (a, b, c)."""
    n = np.asarray(n, dtype=float)
    Y = np.atleast_2d(np.asarray(Y, dtype=float))
    r = np.arange(len(Y))
    sse, _, _ = _profile(n, Y, B_COARSE[None, :], c_max)
    b0 = B_COARSE[np.argmin(sse, axis=1)]
    B = np.clip(b0[:, None] + B_FINE[None, :], 0.0, 3.0)
    sse, a, c = _profile(n, Y, B, c_max)
    g = np.argmin(sse, axis=1)
    return np.stack([a[r, g], B[r, g], c[r, g]], axis=1)


def fit_power_law(n, y, c_max: float = 1.0) -> tuple[float, float, float] | None:
    """scipy.optimize.curve_fit of a*n^-b + c, started from the profile-grid solution.
    None when the fit fails (the caller falls back to interpolation)."""
    import warnings

    from scipy.optimize import OptimizeWarning, curve_fit

    n, y = np.asarray(n, dtype=float), np.asarray(y, dtype=float)
    p0 = profile_fit(n, y[None, :], c_max)[0]
    lo, hi = np.array([0.0, 0.0, 0.0]), np.array([np.inf, 3.0, c_max])
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
