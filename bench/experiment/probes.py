"""Gradient probes (``--probe-gradients``): how much of the training signal reaches each input
position, and the gradient's size at every step. See docs/methods.md#gradient-probes.

The result (``record["gradients"]``, stored in the ``gradients`` table)::

    {"probes": [{"step": 0, "input_grad_norm": [...one per source position...]}, ...],
     "grad_norm": {"step": [...], "median": [...], "max": [...]},
     "clip_fraction": 0.0}

``grad_norm`` has one entry per validation (and one for the steps after the last);
``clip_fraction`` is ``None`` when clipping is off; ``note`` appears only when probes were skipped.
"""

from __future__ import annotations

import math
import random

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from ..api import PAD, Split

PROBE_BATCH = 32


class RandomState:
    """Every generator a probe could touch, saved on entry and restored on exit."""

    def __enter__(self):
        self.torch = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
        self.python = random.getstate()
        try:
            import numpy

            self.numpy = numpy.random.get_state()
        except ImportError:  # pragma: no cover - numpy is a dependency
            self.numpy = None
        return self

    def __exit__(self, *exc):
        torch.set_rng_state(self.torch)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(self.cuda)
        random.setstate(self.python)
        if self.numpy is not None:
            import numpy

            numpy.random.set_state(self.numpy)
        return False


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a is b or (a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a, b)))


def final_position_loss(kind: str, logits: torch.Tensor, batch: dict) -> torch.Tensor:
    """The per-example loss at the final output position, summed over the batch."""
    y = batch["y"]
    if kind == "classification":
        return F.cross_entropy(logits, y, reduction="sum")
    if kind == "aligned":  # the last real position of each row
        last = (batch["src_len"] - 1).clamp(min=0)
        rows = torch.arange(y.size(0), device=y.device)
        return F.cross_entropy(logits[rows, last], y[rows, last], ignore_index=PAD, reduction="sum")
    # seq2seq: each row's mean loss over its target tokens
    per_token = F.cross_entropy(logits.transpose(1, 2), y, ignore_index=PAD, reduction="none")
    counts = (y != PAD).sum(1).clamp(min=1)
    return (per_token.sum(1) / counts).sum()


def input_gradient_norms(
    model: torch.nn.Module, kind: str, batch: dict
) -> list[float | None] | None:
    """Mean over the batch of ``‖∂L/∂x_t‖`` for every source position ``t`` (rows shorter than
    ``t + 1`` left out; ``None`` where no row reaches ``t``), or ``None`` if the model has no
    ``nn.Embedding`` applied to the source batch. Eval mode; the model's mode, the random
    generators and every parameter's ``.grad`` are left as they were."""
    embeddings = [m for m in model.modules() if isinstance(m, torch.nn.Embedding)]
    if not embeddings:
        return None
    src = batch["src"]
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def hook(module, inputs, output):
        if not output.requires_grad:  # a frozen embedding: make its output a leaf to probe
            output = output.detach().requires_grad_()
        calls.append((inputs[0], output))
        return output

    handles = [m.register_forward_hook(hook) for m in embeddings]
    was_training = model.training
    model.eval()
    try:
        # Validation runs under inference mode; the probe needs autograd back, for itself only.
        with RandomState(), torch.inference_mode(False), torch.enable_grad():
            if kind == "seq2seq":
                logits = model(batch["src"], batch["src_len"], batch["tgt_in"])
            else:
                logits = model(batch["src"], batch["src_len"])
            x = next((out for inp, out in calls if inp is src), None)
            if x is None:
                x = next((out for inp, out in calls if _same(inp, src)), None)
            if x is None:
                return None
            loss = final_position_loss(kind, logits, batch)
            (grad,) = torch.autograd.grad(loss, [x], allow_unused=True)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if grad is None:
        grad = torch.zeros_like(x)
    norms = torch.linalg.vector_norm(grad.detach().float(), dim=-1)  # (B, S)
    positions = torch.arange(norms.size(1), device=norms.device)
    real = positions[None, :] < batch["src_len"][:, None].to(norms.device)  # (B, S)
    counts = real.sum(0)
    means = (norms * real).sum(0) / counts.clamp(min=1)
    return [float(m) if int(c) else None for m, c in zip(means.tolist(), counts.tolist())]


def probe_batch(split: Split, kind: str) -> dict:
    """The first ``PROBE_BATCH`` training examples, collated as the training loader does."""
    from .lit import Batches

    data = Batches(split, kind)
    return data.collate(list(range(min(PROBE_BATCH, len(data)))))


def _to(batch: dict, device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


class GradientProbe(pl.Callback):
    """Records the probes and gradient norms of one run into :attr:`data` (kept current as
    training goes, so a run that diverges keeps what it had)."""

    def __init__(self, split: Split, kind: str, grad_clip: float):
        self.kind = kind
        self.batch = probe_batch(split, kind)
        self.grad_clip = grad_clip or 0.0
        self.norms: list[torch.Tensor] = []  # since the last summary, on the device
        self._updates = 0
        self._clipped = 0
        self.data: dict = {
            "probes": [],
            "grad_norm": {"step": [], "median": [], "max": []},
            "clip_fraction": None if not self.grad_clip else 0.0,
        }

    # -- probes

    def probe(self, module, step: int) -> None:
        norms = input_gradient_norms(module.model, self.kind, _to(self.batch, module.device))
        if norms is None:
            self.data["note"] = (
                f"no gradient probes: {type(module.model).__name__} applies no nn.Embedding "
                "to the source tokens"
            )
            return
        self.data["probes"].append({"step": step, "input_grad_norm": norms})

    def on_train_start(self, trainer, module) -> None:
        self.probe(module, 0)

    def on_validation_end(self, trainer, module) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        self.summarise(trainer.global_step)
        if "note" not in self.data:
            self.probe(module, trainer.global_step)

    # -- gradient norms

    def on_before_optimizer_step(self, trainer, module, optimizer) -> None:
        if module.automatic_optimization:  # before Lightning clips; manual runs record their own
            params = [p for g in optimizer.param_groups for p in g["params"]]
            from .tbptt import total_norm

            self.norms.append(total_norm(params).detach())

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        updates = getattr(module, "update_norms", None)
        if updates:
            self.norms.extend(updates)
            updates.clear()

    def on_train_end(self, trainer, module) -> None:
        self.summarise(trainer.global_step)

    def summarise(self, step: int) -> None:
        if not self.norms:
            return
        values = torch.stack(self.norms).float().cpu()  # one sync per validation, not per step
        self.norms = []
        g = self.data["grad_norm"]
        finite = values[torch.isfinite(values)]
        g["step"].append(step)
        g["median"].append(float(finite.quantile(0.5)) if finite.numel() else math.nan)
        g["max"].append(float(values.max()))
        self._updates += values.numel()
        if self.grad_clip:
            self._clipped += int((values > self.grad_clip).sum())
            self.data["clip_fraction"] = self._clipped / self._updates
