"""Parameter budgets: compare model families at (nearly) the same number of parameters.

"LSTM vs Transformer" is only a fair question at equal capacity, so a run may ask for a budget and
let :func:`fit_to_budget` choose the plugin's width (``ModelPlugin.width_param``) that gets
closest to it, all other hyperparameters fixed.
"""

from __future__ import annotations

from ..api import ModelPlugin, PluginError, TaskShape
from ..limits import MAX_PARAMS


def count_params(module) -> int:
    """Number of trainable parameters (elements, not tensors) of a ``torch.nn.Module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _size(plugin: ModelPlugin, kind: str, shape: TaskShape, hparams: dict) -> int:
    """Parameter count of the model ``hparams`` builds, without allocating or touching the RNG.

    Built on the ``meta`` device (shapes only, no memory, no initialisation work), so probing a
    wide model is as cheap as a narrow one and the caller's random stream stays as it was. A
    plugin whose builder cannot run on ``meta`` is built on the CPU under a forked RNG instead.
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        try:
            with torch.device("meta"):
                return count_params(plugin.build(kind, shape, hparams))
        except PluginError:
            raise
        except Exception:
            return count_params(plugin.build(kind, shape, hparams))


def fit_to_budget(
    plugin: ModelPlugin, kind: str, shape: TaskShape, hparams: dict, budget: int
) -> dict:
    """A copy of ``hparams`` with ``plugin.width_param`` set so the model's parameter count is
    as close as possible to ``budget``.

    Widths are searched in steps of ``hparams[plugin.width_multiple_of]`` when the plugin names
    one (e.g. d_model in multiples of n_heads). The count grows with the width, so the search
    doubles the width until it reaches the budget, then bisects, and keeps whichever neighbour
    of the crossing is closer. Raises :class:`PluginError` when even the smallest width is more
    than 10% over the budget.
    """
    if budget < 1:
        raise PluginError(f"parameter budget {budget} must be positive")
    width = plugin.width_param
    step = 1
    if plugin.width_multiple_of:
        step = int(hparams[plugin.width_multiple_of])
        if step < 1:
            raise PluginError(f"parameter {plugin.width_multiple_of!r} must be at least 1")

    sizes: dict[int, int] = {}  # multiple k -> parameter count at width k * step

    def size(k: int) -> int:
        if k not in sizes:
            sizes[k] = _size(plugin, kind, shape, {**hparams, width: k * step})
        return sizes[k]

    if size(1) > 1.1 * budget:
        raise PluginError(
            f"model {plugin.name!r} needs {size(1):,} parameters even at {width}={step}, "
            f"more than 10% over the budget of {budget:,}"
        )
    lo = hi = 1
    while size(hi) < budget:  # invariant afterwards: size(lo) < budget <= size(hi), or lo == hi
        if hi > 2**20:
            raise PluginError(
                f"model {plugin.name!r}: {width} does not grow the parameter count towards "
                f"the budget of {budget:,} (reached {size(hi):,} at {width}={hi * step})"
            )
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if size(mid) < budget:
            lo = mid
        else:
            hi = mid
    best = min((lo, hi), key=lambda k: (abs(size(k) - budget), k))
    return {**hparams, width: best * step}


def planned_size(plugin: ModelPlugin, kind: str, shape: TaskShape, hparams: dict,
                 budget: int = 0) -> int | None:
    """The parameter count of the model a run will build (after fitting ``budget``), checked
    against :data:`~seqbench.limits.MAX_PARAMS` before anything is allocated; PluginError (one
    line) when it is over, or when the budget cannot be met.

    Counted on the ``meta`` device only: ``None`` (not checked) for a plugin whose builder cannot
    run there, rather than risk allocating the very model that may be too large.
    """
    import torch

    if budget:
        hparams = fit_to_budget(plugin, kind, shape, hparams, budget)
    with torch.random.fork_rng(devices=[]):
        try:
            with torch.device("meta"):
                n = count_params(plugin.build(kind, shape, hparams))
        except PluginError:
            raise
        except Exception:
            return None
    if n > MAX_PARAMS:
        raise PluginError(
            f"model {plugin.name!r} would have {n:,} parameters, more than the limit of "
            f"{MAX_PARAMS:,}; use smaller widths or set a parameter budget"
        )
    return n
