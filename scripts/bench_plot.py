"""The benchmark's figures drawn to a PNG (scripts/benchmark.py --plot):
rates, times, and the embedding curve. Needs matplotlib (the `bench`
extra)."""


def pyplot():
  """matplotlib's pyplot, drawing to files; SystemExit with one line where
  it is not installed (checked before the benchmark runs, not after)."""
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise SystemExit("error: --plot needs matplotlib, which the `bench` "
                     "extra installs (pip install -e '.[bench]'): %s" % e)
  return plt


def plot(figures, path, plt):
  """Draws `figures` (benchmark.summarize's) to `path` with `plt`
  (pyplot())."""
  rates = ["raw_examples_per_s", "raw_tight_examples_per_s",
           "estimator_examples_per_s", "keras_examples_per_s",
           "cluster_1w_examples_per_s", "cluster_2w_examples_per_s",
           "keras_cluster_2w_examples_per_s"]
  times = ["estimator_startup_s", "keras_startup_s", "cluster_first_step_s",
           "keras_cluster_first_step_s", "chief_death_detect_s",
           "keras_chief_death_detect_s"]
  fig, (left, middle, right) = plt.subplots(1, 3, figsize=(16, 4))
  left.bar([k.replace("_examples_per_s", "") for k in rates],
           [figures[k] or 0 for k in rates])
  left.set_ylabel("examples/s (median of %d)" % figures["repeats"])
  middle.bar([k[:-2] for k in times], [figures[k] or 0 for k in times])
  middle.set_ylabel("seconds (median of %d)" % figures["repeats"])
  sizes = figures["embedding_table_sizes"]
  for key, label in (("embedding_steps_per_s", "lazy_adam, 1 process"),
                     ("embedding_dense_adam_steps_per_s",
                      "dense adam, 1 process"),
                     ("embedding_cluster_2ps_steps_per_s",
                      "lazy_adam, cluster 2 ps"),
                     ("embedding_keras_steps_per_s", "Keras, 1 process"),
                     ("embedding_keras_cluster_2ps_steps_per_s",
                      "Keras, cluster 2 ps")):
    right.plot(sizes, [figures[key].get(n) or 0 for n in sizes], marker="o",
               label=label)
  right.set_xscale("log")
  right.set_xlabel("embedding table rows")
  right.set_ylabel("steps/s")
  right.legend()
  for axis in (left, middle):
    axis.tick_params(axis="x", labelrotation=20)
  fig.suptitle("TF %s, %d cores" % (figures["tf_version"], figures["cores"]))
  fig.tight_layout()
  fig.savefig(path)
