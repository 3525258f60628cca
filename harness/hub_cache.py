"""tensorflow_hub's cache directory, as an environment variable names it.

hub resolves a URL or archive handle into TFHUB_CACHE_DIR (hub's
`resolver.tfhub_cache_dir`); the trainer fetches there (trainer.hub_model.
handles), and the job generators point every pod or task at a shared one
(cluster.engines). No TensorFlow is imported.
"""

CACHE_ENV = "TFHUB_CACHE_DIR"
