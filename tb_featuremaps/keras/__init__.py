"""The Keras producers: ``FeatureMapsCallback`` (``fit``'s hooks) on top of ``FeatureMapsLogger`` (any loop)."""

from .callback import FeatureMapsCallback, is_chief
from .logger import FeatureMapsLogger

__all__ = ["FeatureMapsCallback", "FeatureMapsLogger", "is_chief"]
