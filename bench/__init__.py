"""seqbench: does an LSTM beat a Transformer on your small data set? Measure it."""

from .hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]
