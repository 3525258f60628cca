"""Distributed training of TF Hub models on parameter-server clusters."""

import setuptools

# The tuner (python -m cluster.tune); the tests run it too.
TUNE = ["optuna>=4,<6", "matplotlib>=3.5"]

setuptools.setup(
    name="hub-estimator-harness",
    version="0.1.0",
    description=("Train models on TF Hub SavedModels on parameter-server "
                 "clusters: tf.estimator (TF <= 2.15) or TF2's own "
                 "parameter-server training (any TF from 2.15)."),
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9,<3.14",
    packages=setuptools.find_packages(include=[
        "harness", "harness.*", "trainer", "trainer.*", "cluster",
        "cluster.*", "example_kit", "example_kit.*", "hub_migrate",
        "hub_migrate.*"]),
    # Two stacks, chosen by the Python version (README, "Install"):
    # - Python 3.9-3.11: TF 2.15, the last TF with tf.estimator; both
    #   backends.
    # - Python 3.12-3.13: TF 2.21 (no TF 2.15 wheels there); the Keras
    #   backend (--backend=auto picks it).
    # TensorFlow itself comes from an extra, `cpu` or `gpu`, so that the
    # harness installs beside a GPU build without forcing the CPU-only
    # package onto it.
    install_requires=[
        "tensorflow-estimator~=2.15.0; python_version<'3.12'",
        # hub 0.16 needs tf-keras (hub.KerasLayer is a Keras 2 layer; the
        # Keras backend builds its model with it). 2.15.0, not 2.15.1: the
        # latter requires the full `tensorflow` package, which would be
        # installed beside tensorflow-cpu. tf-keras 2.21 requires
        # `tensorflow` 2.21 itself.
        "tf-keras==2.15.0; python_version<'3.12'",
        "tf-keras~=2.21.0; python_version>='3.12'",
        "tensorflow-hub>=0.16,<0.17",
        # hub 0.16 imports pkg_resources, which setuptools 81+ no longer
        # ships and a Python 3.12 venv does not have.
        "setuptools<81",
        "absl-py>=1.0",
        "portpicker>=1.5",
        "numpy<2; python_version<'3.12'",
        # The Kubernetes manifests (python -m cluster.tfjob).
        "pyyaml>=6",
        # hub-migrate rewrites code on its concrete syntax tree.
        "libcst>=1.1,<2",
    ],
    extras_require={
        # TensorFlow for CPUs. On 3.9-3.11 the CPU-only build (the full
        # one's CUDA stubs print errors at every import without a GPU); on
        # 3.12+ the `tensorflow` package tf-keras 2.21 requires anyway.
        "cpu": ["tensorflow-cpu~=2.15.0; python_version<'3.12'",
                "tensorflow~=2.21.0; python_version>='3.12'"],
        # TensorFlow with its CUDA libraries, for workers on GPUs.
        "gpu": ["tensorflow[and-cuda]~=2.15.0; python_version<'3.12'",
                "tensorflow[and-cuda]~=2.21.0; python_version>='3.12'"],
        # The example kit (python -m example_kit, the demo's models and
        # data): the handwritten digits ship with scikit-learn.
        "examples": ["scikit-learn>=1.3"],
        "test": ["pytest>=7", "pytest-xdist>=3", "pytest-timeout>=2",
                 "scikit-learn>=1.3",
                 "jsonschema>=4",
                 # The real TensorBoard and its profile plugin: the tests of
                 # the scalars and of --profile_steps (TF 2.21 does not
                 # bring TensorBoard itself).
                 "tensorboard",
                 "tensorboard-plugin-profile>=2.15,<2.16; "
                 "python_version<'3.12'",
                 "tensorboard-plugin-profile>=2.19; python_version>='3.12'",
                 # Google's own CustomJobSpec type, to parse the Vertex AI
                 # specs (tests/test_vertex.py); TF 2.15 keeps protobuf < 5.
                 "google-cloud-aiplatform>=1.60",
                 # Vertex AI's own reporter, to check the trainer's
                 # metric file against what it writes (tests/test_tune.py).
                 "cloudml-hypertune>=0.1.0.dev6"] + TUNE,
        "bench": ["matplotlib>=3.5", "scikit-learn>=1.3"],
        # python -m cluster.tune: Optuna's studies and its plots.
        "tune": TUNE,
    },
    entry_points={
        "console_scripts": [
            "hub-trainer=trainer.task:console_main",
            "hub-cluster=cluster.local:console_main",
            "hub-tfjob=cluster.tfjob:console_main",
            "hub-jobset=cluster.jobset:console_main",
            "hub-trainjob=cluster.trainjob:console_main",
            "hub-slurm=cluster.slurm:console_main",
            "hub-vertex=cluster.vertex:console_main",
            "hub-tune=cluster.tune:console_main",
            "hub-host=cluster.hosts:console_main",
            "hub-migrate=hub_migrate.cli:console_main",
        ],
    },
)
