"""The contract between seqbench's core and its plugins.

A model plugin hands the core a :class:`ModelPlugin`; a task plugin hands it a :class:`TaskPlugin`;
an executor plugin hands it a factory of :class:`Executor`. Everything here is plain Python (torch
is imported lazily by the builders), so listing plugins stays cheap: ``bench plugins`` must never
pay for importing Lightning or building a data set.

The three :class:`Kind` values fix the tensors a model sees; :class:`SequenceModel` and
:class:`Seq2SeqModel` say what a built model accepts and returns, with shapes. Padding id is always
:data:`PAD` and every model must ignore padded positions.

One module per part: :mod:`.params` (parameters and search spaces), :mod:`.data` (what a task
hands the training path), :mod:`.models` (what a built model is), :mod:`.plugins` (what plugins
register), :mod:`.executors` (what an executor's factory returns), :mod:`.errors`.
"""

from .data import (
    BOS, EOS, PAD, SPECIALS, UNK, Kind, Loader, Scorer, Split, TaskData, TaskShape, Vocab, kinds_of,
)
from .errors import PluginError
from .executors import Executor, ExecutorFactory, LoggerFactory, OnRecord, OnStart
from .models import Builder, Seq2SeqModel, SequenceModel
from .params import (
    DEFAULT_SEARCH_SPACE, TUNABLE_RECIPE, Choice, Param, Range, check_space, resolve_params,
)
from .plugins import LazyTarget, ModelPlugin, TaskPlugin

__all__ = [
    "BOS", "DEFAULT_SEARCH_SPACE", "EOS", "PAD", "SPECIALS", "TUNABLE_RECIPE", "UNK", "Builder",
    "Choice", "Executor", "ExecutorFactory", "Kind", "LazyTarget", "Loader", "LoggerFactory",
    "ModelPlugin", "OnRecord", "OnStart", "Param", "PluginError", "Range", "Scorer",
    "Seq2SeqModel", "SequenceModel", "Split", "TaskData", "TaskPlugin", "TaskShape", "Vocab",
    "check_space", "kinds_of", "resolve_params",
]
