"""The ``feature_maps`` TensorBoard plugin: the "Feature Maps" tab.

TensorBoard loads it through the ``tensorboard_plugins`` entry point
``feature_maps = tb_featuremaps.plugin.loader:FeatureMapsLoader``. Modules:

- ``loader``: flag defaults and plugin construction;
- ``plugin``: the HTTP routes (docs/http-api.md);
- ``catalog``: the ``runs`` listing;
- ``series``: reads through the data provider, with caches;
- ``params``: query parameter validation;
- ``static``: the panel's files, from an allow-list;
- ``cache``: a cost-bounded LRU cache.

Nothing here imports TensorFlow or Keras.
"""
