"""Which training algorithm a recipe asks for, and whether it can work: plain Python, so that
planning a matrix never imports torch (the algorithms themselves: ``tbptt.py``)."""

from __future__ import annotations

import math

from ..api import PluginError

RTRL_MODES = ("off", "online", "accumulated")


def algorithm(training: dict) -> str:
    """``"bptt"``, ``"tbptt"`` or ``"rtrl"`` for a training recipe (keys may be absent in
    records older than these options)."""
    if training.get("rtrl", "off") != "off":
        return "rtrl"
    return "tbptt" if training.get("tbptt", 0) else "bptt"


def check_recipe(training: dict, kind: str, where: str = "training") -> None:
    """One-line errors for settings that cannot work, before anything runs."""
    k = training.get("tbptt", 0) or 0
    if k >= 1 and not float(k).is_integer():
        raise PluginError(
            f"{where}: tbptt = {k!r}: give a whole number of steps (>= 1), a share of the "
            "sequence length (between 0 and 1), or 0 for full BPTT"
        )
    rtrl = training.get("rtrl", "off")
    if k and rtrl != "off":
        raise PluginError(f"{where}: tbptt and rtrl exclude each other; set one of them")
    if (k or rtrl != "off") and kind != "aligned":
        what = "tbptt" if k else "rtrl"
        raise PluginError(
            f"{where}: {what} trains on one target per input position, so it applies to aligned "
            f"tasks only, not {kind}"
        )


def window_size(setting: float, length: int) -> int:
    """K from the ``tbptt`` setting: whole steps if >= 1, else that share of ``length``."""
    if setting >= 1:
        return int(setting)
    return max(1, math.ceil(setting * length))
