"""Packaging for tb-featuremaps: a Keras callback and a TensorBoard plugin."""

from pathlib import Path

from setuptools import find_packages, setup

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
    install_requires=[
        "tensorflow>=2.16",
        "tensorboard>=2.16",
        "numpy",
        "matplotlib",
        "pillow",
    ],
    extras_require={
        "train": ["mlxtend"],
        "torch": ["torch"],
        "lightning": ["torch", "pytorch-lightning>=2"],
        "test": [
            "mlxtend",
            "pytest",
            "hypothesis",
            "jax",
            "playwright",
            "ruff",
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
