"""Estimator distributed-training harness for TF Hub models."""

import setuptools

setuptools.setup(
    name="hub-estimator-harness",
    version="0.1.0",
    description=("Train tf.estimator models on TF Hub SavedModels, on "
                 "parameter-server clusters."),
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9,<3.12",
    packages=setuptools.find_packages(include=["trainer", "trainer.*",
                                               "cluster", "cluster.*"]),
    install_requires=[
        # tf.estimator was removed in TF 2.16.
        "tensorflow>=2.15,<2.16",
        "tensorflow-estimator~=2.15.0",
        # hub 0.16 needs tf-keras; unpinned it pulls a release that breaks.
        "tf-keras~=2.15.0",
        "tensorflow-hub>=0.16,<0.17",
        "absl-py>=1.0",
        "portpicker>=1.5",
        # The demo's real data (handwritten digits) ships with scikit-learn.
        "scikit-learn>=1.3",
        "numpy<2",
    ],
    extras_require={
        "test": ["pytest>=7", "pytest-xdist>=3"],
        "bench": ["matplotlib>=3.5"],
    },
    entry_points={
        "console_scripts": [
            "hub-trainer=trainer.task:console_main",
            "hub-cluster=cluster.local:console_main",
        ],
    },
)
