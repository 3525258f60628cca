"""Benchmark part: a table of the user's model split over the ps (the
Keras backend's --ps_shard_bytes), side by side in one run.

example_kit.wide_model's table (1M x 32, or the smoke run's 20k x 16)
beside the hub text model, on a Keras cluster of one worker: one ps; two,
split over them (the default --ps_shard_bytes); two, kept whole. For each:
steps/s, each ps's peak resident memory, and the variable bytes the chief
says it placed on each (scripts.bench_cluster).

The smoke run makes it only where TF has no tf.estimator, as it does the
data part's Keras reads: CI runs the smoke run on both stacks, and these
three Keras clusters were a third of its time on the Estimator's stack.
"""

from scripts import bench_cluster

# A table of the user's model on a Keras cluster: one ps; two, split over
# them (the default --ps_shard_bytes); two, kept whole.
SPLIT_RUNS = (("1ps", 1, ()), ("2ps_split", 2, ()),
              ("2ps_whole", 2, ("--ps_shard_bytes=0",)))


def split_table(s, work_dir, assets, batch_size, log):
  """example_kit.wide_model's table (1M x 32, or the smoke run's 20k x 16)
  beside the hub text model, on a Keras cluster of one worker: steps/s,
  each ps's peak resident memory and the variable bytes the chief placed
  on it, for each of SPLIT_RUNS. One run per point."""
  figures = {}
  for name, num_ps, extra in SPLIT_RUNS:
    log("a table of your model, %s" % name)
    cluster = bench_cluster.cluster_figures(
        work_dir, "split-%s" % name, 1, s["text_cluster_steps"], batch_size,
        num_ps=num_ps, sample_ps=True, trainer_args=[
            "--backend=keras", "--module_handle=" + assets.text_model,
            "--trainable", "--n_classes=5", "--model=" + s["split_model"],
            "--train_files=" + assets.data("text_train.csv"),
            "--novalidate_data",
            "--save_checkpoints_steps=%d" % (10 * s["text_cluster_steps"])
        ] + list(extra))
    rate = cluster.pop("examples_per_s")
    figures[name] = dict(cluster,
                         steps_per_s=rate / batch_size if rate else None)

  def spread(name):  # The largest ps's peak memory over the smallest's.
    peaks = figures[name]["ps_peak_rss_mb"].values()
    return max(peaks) / min(peaks) if min(peaks) else None
  rates = [figures[name]["steps_per_s"] for name in ("2ps_split", "1ps")]
  return dict(split_table=figures, split_table_model=s["split_model"],
              split_ps_rss_max_vs_min=spread("2ps_split"),
              whole_ps_rss_max_vs_min=spread("2ps_whole"),
              split_2ps_vs_1ps_steps=(rates[0] / rates[1] if all(rates)
                                      else None))


def not_made(s):
  """split_table's figures where the run does not make it (None)."""
  return dict(split_table=None, split_table_model=s["split_model"],
              split_ps_rss_max_vs_min=None, whole_ps_rss_max_vs_min=None,
              split_2ps_vs_1ps_steps=None)


def split_lines(figures):
  """The split table's lines (split_table)."""
  if figures["split_table"] is None:
    return ["a table of your model: n/a (the smoke run makes it where TF "
            "has no tf.estimator)"]
  lines = ["a table of your model (%s), Keras cluster, 1 worker:" %
           figures["split_table_model"]]
  for name, _, _ in SPLIT_RUNS:
    f = figures["split_table"][name]
    lines.append("  %-10s %s steps/s; ps peak memory %s; variables placed %s"
                 % (name, "n/a" if f["steps_per_s"] is None else
                    "%.1f" % f["steps_per_s"], ", ".join(
                        "%s %.0f MB" % item for item in
                        sorted(f["ps_peak_rss_mb"].items())), ", ".join(
                            "%s %d KB" % item for item in
                            sorted(f["ps_placed_kb"].items()))))
  shown = lambda v: "n/a" if v is None else "%.3f" % v
  lines.append("  ps peak memory, largest / smallest: split %s, whole %s; "
               "steps/s 2 ps split / 1 ps %s" % (
                   shown(figures["split_ps_rss_max_vs_min"]),
                   shown(figures["whole_ps_rss_max_vs_min"]),
                   shown(figures["split_2ps_vs_1ps_steps"])))
  return lines
