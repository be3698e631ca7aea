"""What a model plugin builds: the tensors a built model accepts and returns, by kind (B batch,
S source length, T target length, C classes, V target vocabulary). The core calls a model
positionally; it may take extra keywords of its own."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol, runtime_checkable

from .data import Kind, TaskShape

if TYPE_CHECKING:
    from torch import Tensor
    from torch.nn import Parameter


@runtime_checkable
class SequenceModel(Protocol):
    """A built model (a ``torch.nn.Module``), called by kind:

    classification: ``model(src (B, S), src_len (B,)) -> logits (B, C)``;
    aligned: ``model(src (B, S), src_len (B,)) -> logits (B, S, V)``, causal: output t depends
    on inputs <= t only;
    seq2seq: ``model(src (B, S), src_len (B,), tgt_in (B, T)) -> logits (B, T, V)``, teacher
    forcing (``tgt_in`` starts with :data:`BOS`), and :meth:`Seq2SeqModel.generate`.
    """

    def __call__(self, src: Tensor, src_len: Tensor, *tgt_in: Tensor, **extra: Any) -> Tensor: ...

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]: ...

    def train(self, mode: bool = True) -> Any: ...

    def eval(self) -> Any: ...


@runtime_checkable
class Seq2SeqModel(SequenceModel, Protocol):
    """A seq2seq model: a :class:`SequenceModel` that also decodes greedily."""

    def generate(self, src: Tensor, src_len: Tensor, max_len: int) -> Tensor:
        """ids (B, <=max_len), stopping once every row has produced :data:`EOS`; a row keeps
        its EOS and is :data:`PAD` after it."""
        ...


Builder = Callable[[Kind, TaskShape, dict[str, Any]], SequenceModel]
