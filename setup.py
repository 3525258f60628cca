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
    packages=setuptools.find_packages(include=[
        "harness", "harness.*", "trainer", "trainer.*", "cluster",
        "cluster.*", "example_kit", "example_kit.*", "hub_migrate",
        "hub_migrate.*"]),
    install_requires=[
        # tf.estimator was removed in TF 2.16. The CPU build: the harness
        # trains on parameter-server clusters of CPUs, and the full build's
        # CUDA stubs print errors at every import on machines without GPUs.
        "tensorflow-cpu>=2.15,<2.16",
        "tensorflow-estimator~=2.15.0",
        # hub 0.16 needs tf-keras; unpinned it pulls a release that breaks.
        # 2.15.0, not 2.15.1: the latter requires the full `tensorflow`
        # package, which would be installed beside tensorflow-cpu.
        "tf-keras==2.15.0",
        "tensorflow-hub>=0.16,<0.17",
        "absl-py>=1.0",
        "portpicker>=1.5",
        "numpy<2",
        # The Kubernetes manifests (python -m cluster.tfjob).
        "pyyaml>=6",
        # hub-migrate rewrites code on its concrete syntax tree.
        "libcst>=1.1,<2",
    ],
    extras_require={
        # The example kit (python -m example_kit, the demo's models and
        # data): the handwritten digits ship with scikit-learn.
        "examples": ["scikit-learn>=1.3"],
        "test": ["pytest>=7", "pytest-xdist>=3", "scikit-learn>=1.3",
                 "jsonschema>=4",
                 # TensorBoard's profile plugin: the test of --profile_steps.
                 "tensorboard-plugin-profile>=2.15,<2.16"],
        "bench": ["matplotlib>=3.5", "scikit-learn>=1.3"],
    },
    entry_points={
        "console_scripts": [
            "hub-trainer=trainer.task:console_main",
            "hub-cluster=cluster.local:console_main",
            "hub-tfjob=cluster.tfjob:console_main",
            "hub-slurm=cluster.slurm:console_main",
            "hub-migrate=hub_migrate.cli:console_main",
        ],
    },
)
