"""tb-featuremaps: watch what a convolutional network sees while it trains.

Producers write feature-map grids to a TensorBoard logdir in one format
(``docs/format.md``): ``FeatureMapsCallback`` for Keras' ``fit``,
``FeatureMapsLogger`` for a Keras model in any loop, ``tb_featuremaps.torch``
for PyTorch modules (``tb_featuremaps.lightning`` for Lightning's ``Trainer``),
and ``FeatureMapsWriter`` for arrays from anywhere; ``Options`` holds the
options they share. The
``feature_maps`` TensorBoard plugin shows them; ``tb_featuremaps.reader`` reads
them back. Importing this package imports no framework: Keras (and TensorFlow)
only when a Keras producer is used (``pip install "tb-featuremaps[tensorflow]"``),
torch only with ``tb_featuremaps.torch``. The writer, the reader, the command
line and the plugin never import TensorFlow for a local log dir
(``format/filesystem.py``), so a PyTorch or JAX job stays free of it and
TensorBoard loads the plugin quickly.
"""

__version__ = "0.1.0"
__all__ = ["FeatureMapsCallback", "FeatureMapsLogger", "FeatureMapsWriter", "Options"]


def __getattr__(name: str):
    if name in ("FeatureMapsCallback", "FeatureMapsLogger"):
        from . import keras

        return getattr(keras, name)
    if name == "FeatureMapsWriter":
        from .writer import FeatureMapsWriter

        return FeatureMapsWriter
    if name == "Options":
        from .writer.options import Options

        return Options
    raise AttributeError(f"module 'tb_featuremaps' has no attribute {name!r}")
