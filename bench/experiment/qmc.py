"""Trials as Optuna points: scrambled Sobol points (``QMCSampler``) in one model's own search
space, the same for a seed on every launch and machine. See docs/methods.md#tuning.
"""

from __future__ import annotations

import functools
import logging
import warnings

from ..api import Choice, Range
from .sampling import SEED, columns

QMC_SEED = SEED  # the scrambling seed of every model's sequence: fixed, so run ids are too


def _distribution(dist: Range | Choice):
    from optuna.distributions import FloatDistribution, IntDistribution

    if isinstance(dist, Choice):
        return IntDistribution(0, len(dist.values) - 1)  # the value's index
    if dist.integer:
        return IntDistribution(int(dist.low), int(dist.high), log=dist.log)
    return FloatDistribution(float(dist.low), float(dist.high), log=dist.log)


def _value(dist: Range | Choice, value):
    if isinstance(dist, Choice):
        return dist.values[value]
    # Floats keep three significant digits, as Range.at gives them: a trial reads lr=0.00316.
    if not dist.integer:
        return float(f"{value:.3g}")
    return value


@functools.lru_cache(maxsize=64)
def _points(space: tuple, count: int, seed: int) -> tuple:
    import optuna
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(logging.WARNING)
    dists = {k: _distribution(d) for k, d in space}
    with warnings.catch_warnings():  # "experimental" since Optuna 3.0; the points are checked
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=seed)
    study = optuna.create_study(sampler=sampler)
    # QMCSampler reads the search space off the study's first trial and samples that first one
    # at random: a valueless template trial declares the space, so trial 0 is Sobol point 0.
    corner = {k: d.low for k, d in dists.items()}
    study.add_trial(create_trial(params=corner, distributions=dists, state=TrialState.PRUNED))
    out = []
    for _ in range(count):
        trial = study.ask(dists)
        out.append(tuple((k, _value(d, trial.params[k])) for k, d in space))
    return tuple(out)


def draw(space: dict[str, Range | Choice], count: int, seed: int = QMC_SEED) -> list[dict]:
    """The first ``count`` points of the space's scrambled Sobol sequence (name -> value)."""
    ordered = tuple((k, space[k]) for k in columns(space))  # lr first, then by name
    return [dict(point) for point in _points(ordered, count, seed)]
