"""tb-featuremaps: watch what a convolutional network sees while it trains.

``FeatureMapsCallback`` (a Keras callback) writes feature-map grids to a
TensorBoard logdir; the ``feature_maps`` TensorBoard plugin shows them. Importing
this package does not import Keras or TensorFlow until the callback is used, so
TensorBoard loads the plugin quickly.
"""

__version__ = "0.1.0"
__all__ = ["FeatureMapsCallback"]


def __getattr__(name: str):
    if name == "FeatureMapsCallback":
        from .callback import FeatureMapsCallback

        return FeatureMapsCallback
    raise AttributeError(f"module 'tb_featuremaps' has no attribute {name!r}")
