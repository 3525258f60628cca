"""Classifies paragraphs of text with a fine-tuned hub text embedding.

A TF1 Estimator project as users wrote it with hub.Module: an input
function reading CSV files, a model_fn, a RunConfig with device filters,
and tf.estimator.train_and_evaluate, on one machine or on a cluster
(TF_CONFIG).

  python text_classifier.py --hub_handle=H --data_dir=D --model_dir=M
  python text_classifier.py ... --mode=evaluate   # prints the metrics
"""

import argparse
import json
import os

import tensorflow as tf
import tensorflow_hub as hub

NUM_CLASSES = 5


def input_fn(csv_path, batch_size, training):
  dataset = tf.data.experimental.CsvDataset(
      csv_path, [tf.string, tf.int64], header=True)
  dataset = dataset.map(lambda text, label: ({"text": text}, label))
  if training:
    dataset = dataset.shuffle(2000, seed=0).repeat()
  return dataset.batch(batch_size)


def model_fn(features, labels, mode, params):
  # The text embedding, fine-tuned with the classifier.
  embed = hub.Module(params["hub_handle"], trainable=True)
  embeddings = embed(features["text"])
  logits = tf.compat.v1.layers.dense(embeddings, NUM_CLASSES, name="head")
  predictions = tf.argmax(logits, axis=1)
  if mode == tf.estimator.ModeKeys.PREDICT:
    return tf.estimator.EstimatorSpec(mode, predictions={"class": predictions})
  loss = tf.compat.v1.losses.sparse_softmax_cross_entropy(labels, logits)
  loss += tf.compat.v1.losses.get_regularization_loss()
  optimizer = tf.compat.v1.train.AdamOptimizer(params["learning_rate"])
  train_op = optimizer.minimize(
      loss, global_step=tf.compat.v1.train.get_global_step())
  metrics = {"accuracy": tf.compat.v1.metrics.accuracy(labels, predictions)}
  return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op,
                                    eval_metric_ops=metrics)


def run_config(model_dir):
  """Workers talk only to the ps tasks and themselves."""
  task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
  session_config = tf.compat.v1.ConfigProto()
  if task.get("type") == "worker":
    session_config.device_filters.extend(
        ["/job:ps", "/job:worker/task:%d" % task["index"]])
  elif task.get("type") == "chief":
    session_config.device_filters.extend(["/job:ps", "/job:chief"])
  return tf.estimator.RunConfig(model_dir=model_dir,
                                save_checkpoints_steps=200,
                                session_config=session_config)


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--hub_handle", required=True)
  parser.add_argument("--data_dir", required=True)
  parser.add_argument("--model_dir", required=True)
  parser.add_argument("--train_steps", type=int, default=600)
  parser.add_argument("--batch_size", type=int, default=32)
  parser.add_argument("--learning_rate", type=float, default=0.01)
  parser.add_argument("--mode", choices=["train", "evaluate"],
                      default="train")
  args = parser.parse_args()
  estimator = tf.estimator.Estimator(
      model_fn, config=run_config(args.model_dir),
      params={"hub_handle": args.hub_handle,
              "learning_rate": args.learning_rate})
  train_csv = os.path.join(args.data_dir, "text_train.csv")
  eval_csv = os.path.join(args.data_dir, "text_eval.csv")
  if args.mode == "train":
    tf.estimator.train_and_evaluate(
        estimator,
        tf.estimator.TrainSpec(
            lambda: input_fn(train_csv, args.batch_size, True),
            max_steps=args.train_steps),
        tf.estimator.EvalSpec(
            lambda: input_fn(eval_csv, args.batch_size, False), steps=None,
            throttle_secs=3600))
  else:
    metrics = estimator.evaluate(
        lambda: input_fn(eval_csv, args.batch_size, False))
    print(json.dumps({k: float(v) for k, v in metrics.items()}))


if __name__ == "__main__":
  main()
