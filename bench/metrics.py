"""Metric functions shared by tasks, built on torchmetrics and sacrebleu."""

from __future__ import annotations

from typing import Sequence


def classification_metrics(preds: Sequence[int], labels: Sequence[int], num_classes: int) -> dict:
    import torch
    from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score

    p, y = torch.as_tensor(list(preds)), torch.as_tensor(list(labels))
    # micro accuracy = share of correct predictions; macro-F1 weighs every class equally.
    return {
        "accuracy": float(multiclass_accuracy(p, y, num_classes, average="micro")),
        "macro_f1": float(multiclass_f1_score(p, y, num_classes, average="macro")),
    }


def sequence_metrics(preds: Sequence[Sequence[int]], refs: Sequence[Sequence[int]]) -> dict:
    """Exact-match sequence accuracy and position-wise token accuracy over reference tokens."""
    exact = sum(list(p) == list(r) for p, r in zip(preds, refs))
    right = sum(sum(a == b for a, b in zip(p, r)) for p, r in zip(preds, refs))
    total = sum(len(r) for r in refs)
    return {
        "exact_match": exact / max(len(refs), 1),
        "token_accuracy": right / max(total, 1),
    }


def bleu(hypotheses: Sequence[str], references: Sequence[str], pretokenized: bool = True) -> float:
    """Corpus BLEU on the 0-100 scale (sacrebleu).

    Task outputs are already space-tokenised, so by default sacrebleu must not tokenise again
    (its 13a tokeniser would split ``I_TURN_LEFT`` into five tokens and skew partial scores).
    """
    import sacrebleu

    kwargs = {"tokenize": "none", "force": True} if pretokenized else {}
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)], **kwargs).score)
