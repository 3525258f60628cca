"""The data: what each file is, which files each task reads, and the pipeline.

  data_format.py  CSV or TFRecord, plain, GZIP or ZLIB, told from the bytes
  data_share.py   which training files each task reads, and its seed (pure)
  data.py         the input pipelines, shaped by the model's inputs
  validate.py     the data check before training, sampled or full

Used by the pre-flight (trainer.plan) and by both backends. Imports harness
and trainer.config (the data settings) only.
"""
