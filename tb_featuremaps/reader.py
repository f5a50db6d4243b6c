"""Public alias of :mod:`tb_featuremaps.format.reader`: ``from tb_featuremaps import reader; reader.load("logs")``."""

from .format.reader import LayerLog, ReadFailure, ReadWarning, RunLog, Runs, load

__all__ = ["LayerLog", "ReadFailure", "ReadWarning", "RunLog", "Runs", "load"]
