"""``FeatureMapsLoader``: how TensorBoard finds and configures the plugin (entry point ``feature_maps``).

Importing this module is cheap (no TensorFlow, no Keras, no NumPy work), so a
broken optional dependency can never keep TensorBoard from starting.
"""

from __future__ import annotations

from tensorboard.plugins import base_plugin

from ..format.metadata import PLUGIN_NAME

DEFAULT_SAMPLES = 0
"""Default ``--samples_per_plugin feature_maps=N``: 0 keeps every step.

Keeping every step is affordable: TensorBoard's memory grows by about the size
of the run's event files (measured in docs/http-api.md, "Memory"),
which the user chose to write; ``--samples_per_plugin feature_maps=N`` caps it.
"""


class FeatureMapsLoader(base_plugin.TBLoader):
    """Keeps every logged step by default and builds :class:`FeatureMapsPlugin`."""

    def fix_flags(self, flags) -> None:
        """Defaults ``samples_per_plugin[feature_maps]`` to keep all steps; a user's own value wins."""
        samples = getattr(flags, "samples_per_plugin", None)
        if samples is None:
            samples = flags.samples_per_plugin = {}
        samples.setdefault(PLUGIN_NAME, DEFAULT_SAMPLES)

    def load(self, context: base_plugin.TBContext):
        from .plugin import FeatureMapsPlugin

        return FeatureMapsPlugin(context)
