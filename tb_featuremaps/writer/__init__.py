"""The framework-neutral producer: ``FeatureMapsWriter`` takes arrays and writes the format.

Its parts: :mod:`.writer` (the writer), :mod:`.runs` (which run folder),
:mod:`.probes` (probe inputs), :mod:`.summary` (events of one step), :mod:`.budget` (the step budget's order of degradation),
:mod:`.arguments` (validated constructor arguments), :mod:`.options` (every producer option, declared and checked once).
"""

from .writer import STAGES, FeatureMapsWriter, LayerDescription, StageTimer, kernel_maps, timed

__all__ = ["STAGES", "FeatureMapsWriter", "LayerDescription", "StageTimer", "kernel_maps", "timed"]
