"""Benchmarks of tb-featuremaps: callback overhead, TensorBoard-side latency and memory.

Run ``python -m benchmarks.run [--quick]`` from the repository root; docs/benchmarks.md has the
results. They start TensorBoard and Chromium as the tests do, with the tests' launcher
(``tests/helpers/tensorboard.py``, ``tests/helpers/browser.py``), and write their logdirs
with ``FeatureMapsWriter``, the callback's own pipeline.
"""
