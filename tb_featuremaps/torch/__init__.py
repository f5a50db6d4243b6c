"""The PyTorch producer: ``FeatureMapsLogger`` logs an ``nn.Module``'s feature maps from any training loop.

Importing this package imports ``torch`` (``pip install -e ".[torch]"``);
``import tb_featuremaps`` never does.

```python
from tb_featuremaps.torch import FeatureMapsLogger

logger = FeatureMapsLogger(model, "logs", probes=x_val[:8])
logger.log(step)  # in the training loop, every N steps
```
"""

from .logger import SPATIAL_MODULE_TYPES, FeatureMapsLogger, module_kernel, select_modules

__all__ = ["SPATIAL_MODULE_TYPES", "FeatureMapsLogger", "module_kernel", "select_modules"]
