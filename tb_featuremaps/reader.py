"""Public alias of :mod:`tb_featuremaps.format.reader`: ``from tb_featuremaps import reader; reader.load("logs")``."""

from .format.reader import LayerLog, RunLog, load

__all__ = ["LayerLog", "RunLog", "load"]
