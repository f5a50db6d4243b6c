"""The Keras producers: ``FeatureMapsCallback`` (``fit``'s hooks) on top of ``FeatureMapsLogger`` (any loop).

They need Keras 3 and one of its backends; ``pip install "tb-featuremaps[tensorflow]"``
installs TensorFlow (which brings Keras). Without them, importing this package
is an ``ImportError`` that says so.
"""

try:
    import keras  # noqa: F401 (Keras imports its backend: TensorFlow unless KERAS_BACKEND names another)
except ImportError as error:
    raise ImportError(
        f"the Keras producers (FeatureMapsCallback, FeatureMapsLogger) need Keras and a backend, which could not be imported ({error}); "
        'pip install "tb-featuremaps[tensorflow]" (or install keras with JAX or PyTorch and set KERAS_BACKEND). '
        "PyTorch modules log through tb_featuremaps.torch, arrays from any loop through tb_featuremaps.FeatureMapsWriter, without Keras."
    ) from error

from .callback import FeatureMapsCallback, is_chief
from .logger import FeatureMapsLogger

__all__ = ["FeatureMapsCallback", "FeatureMapsLogger", "is_chief"]
