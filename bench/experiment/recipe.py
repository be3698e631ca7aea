"""The training recipe: its keys with their bounds, which of them join a run's identity, and
which a schedule reads."""

from __future__ import annotations

from typing import Mapping

from ..api import Param, PluginError
from ..limits import MAX_PARAMS, MAX_TRAIN_SIZE
from .algorithms import RTRL_MODES
from .schedule import Kind, Schedule, unread_keys
from .tuning import LR

# one recipe for every model of a task (a fair comparison); tuning varies only api.TUNABLE_RECIPE
TRAINING: dict[str, Param] = {
    # upper bounds: what a machine can honour, checked before anything is allocated
    "max_steps": Param(1000, "optimizer steps at most", minimum=1, maximum=10_000_000),
    "batch_size": Param(32, "examples per step", minimum=1, maximum=65_536),
    "lr": LR,
    "weight_decay": Param(0.01, "AdamW weight decay", minimum=0.0, maximum=10.0),
    "schedule": Param("wsd", "learning-rate schedule: wsd (warm-up, constant, then a cooldown "
                      "once early stopping's patience runs out or before the step cap), or the "
                      "earlier cosine / constant over max_steps", tuple(k.value for k in Kind)),
    "warmup_steps": Param(100, "wsd: optimizer steps of linear warm-up, the same for every model "
                          "(at most until the step cap's cooldown)", minimum=0,
                          maximum=10_000_000),
    "cooldown": Param(0.2, "wsd: cooldown length as a share of the steps trained before it (at "
                      "least 2 validations); the rate decays to 0 as 1 - sqrt", minimum=0.0,
                      maximum=1.0, min_open=True),
    "warmup": Param(0.05, "cosine, constant: share of max_steps spent warming the learning rate "
                    "up from 0", minimum=0.0, maximum=0.5),
    "grad_clip": Param(1.0, "gradient-norm clipping threshold; 0 turns clipping off", minimum=0.0),
    "val_every": Param(100, "validate every this many steps", minimum=1, maximum=10_000_000),
    "patience": Param(5, "stop after this many validations without improvement; 0 = never",
                      minimum=0, maximum=100_000),
    "val_limit": Param(0, "score at most this many validation examples; 0 = all", minimum=0,
                       maximum=MAX_TRAIN_SIZE),
    "param_budget": Param(0, "size each model's width to this many parameters; 0 = off",
                          minimum=0, maximum=MAX_PARAMS),
    # Mechanisms under study: gradient probes (probes.py), truncated BPTT and RTRL (tbptt.py).
    "probe_gradients": Param(False, "record gradient probes: per-position input-gradient norms "
                             "at step 0 and every validation, the pre-clip norm every step"),
    "tbptt": Param(0.0, "truncated BPTT window (aligned tasks, recurrent models): K steps (a "
                   "whole number), a share of the sequence length (below 1), or 0 = full BPTT",
                   minimum=0.0),
    "rtrl": Param("off", "real-time recurrent learning (aligned tasks, one-layer Elman RNN): "
                  "an update every time step (online) or one per batch (accumulated)",
                  RTRL_MODES),
}
# in a run's identity only when not these values, so runs stored before the keys keep their ids
IDENTITY_IF_NOT = {"tbptt": 0.0, "rtrl": "off"}
NOT_IDENTITY = ("probe_gradients",)  # probing records gradients; the result is the same
# the GRU's update_bias = 0 is torch's initialisation, which runs before the key had
MODEL_IDENTITY_IF_NOT = {"update_bias": 0.0}


def check_schedule_keys(recipe: dict, given: Mapping) -> None:
    """A recipe key the chosen schedule does not read is a mistake, never silently ignored: an
    older matrix file that sets ``warmup`` (a share) meant the cosine schedule, once the default."""
    unread = sorted(unread_keys(recipe) & set(given))
    if unread:
        key = unread[0]
        raise PluginError(
            f"training key {key!r} is not read by schedule {recipe['schedule']!r}"
            + (" (it warms up over warmup_steps); set schedule = \"cosine\" to reproduce runs "
               "made before wsd became the default" if key == "warmup" else
               f"; it belongs to schedule {Kind.WSD.value!r}")
        )
    # The default warm-up shortens to fit a short budget; one the matrix asks for must fit.
    if "warmup_steps" in given and recipe["schedule"] == Kind.WSD:
        cap_start = Schedule.from_recipe(recipe).cap_start
        if recipe["warmup_steps"] > cap_start:
            raise PluginError(
                f"warmup_steps = {recipe['warmup_steps']:,} does not fit max_steps = "
                f"{recipe['max_steps']:,}: the cooldown before the step cap starts at step "
                f"{cap_start:,}; lower warmup_steps or raise max_steps"
            )
