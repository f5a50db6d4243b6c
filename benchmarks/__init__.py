"""Benchmarks of tb-featuremaps: callback overhead, TensorBoard-side latency and memory.

Run ``python -m benchmarks.run [--quick]``; docs/benchmarks.md has the results.
"""
