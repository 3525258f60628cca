"""Classifies handwritten digits with a legacy TF1 Hub format model.

A TF1 Estimator project as users wrote it with hub.Module: the model is
used frozen, with its tags and its signature `sig`, which takes two images
(x1, x2) and returns their features and the distance between them; the
classifier sees each digit and its mirror image.

  python legacy_digits.py --hub_handle=H --data_dir=D --model_dir=M
  python legacy_digits.py ... --mode=evaluate   # prints the metrics
"""

import argparse
import json
import os

import tensorflow as tf
import tensorflow_hub as hub

NUM_CLASSES = 5
PIXELS = 64


def input_fn(csv_path, batch_size, training):
  def parse(pixels, label):
    values = tf.io.decode_csv(tf.strings.regex_replace(pixels, " ", ","),
                              [[0.0]] * PIXELS)
    return {"pixels": tf.stack(values)}, label

  dataset = tf.data.experimental.CsvDataset(
      csv_path, [tf.string, tf.int64], header=True).map(parse)
  if training:
    dataset = dataset.shuffle(1000, seed=0).repeat()
  return dataset.batch(batch_size)


def model_fn(features, labels, mode, params):
  module = hub.Module(params["hub_handle"], tags={"foo", "bar"})
  pixels = features["pixels"]
  mirrored = tf.reshape(tf.reverse(tf.reshape(pixels, [-1, 8, 8]), [2]),
                        [-1, PIXELS])
  outputs = module(dict(x1=pixels, x2=mirrored), signature="sig",
                   as_dict=True)
  net = tf.concat([outputs["features"], outputs["distance"]], axis=1)
  logits = tf.compat.v1.layers.dense(net, NUM_CLASSES)
  predictions = tf.argmax(logits, axis=1)
  if mode == tf.estimator.ModeKeys.PREDICT:
    return tf.estimator.EstimatorSpec(mode, predictions={"class": predictions})
  loss = tf.compat.v1.losses.sparse_softmax_cross_entropy(labels, logits)
  optimizer = tf.compat.v1.train.AdamOptimizer(params["learning_rate"])
  train_op = optimizer.minimize(
      loss, global_step=tf.compat.v1.train.get_global_step())
  metrics = {"accuracy": tf.compat.v1.metrics.accuracy(labels, predictions)}
  return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op,
                                    eval_metric_ops=metrics)


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
  config = tf.estimator.RunConfig(model_dir=args.model_dir,
                                  save_checkpoints_steps=200)
  estimator = tf.estimator.Estimator(
      model_fn, config=config,
      params={"hub_handle": args.hub_handle,
              "learning_rate": args.learning_rate})
  train_csv = os.path.join(args.data_dir, "digits_train.csv")
  eval_csv = os.path.join(args.data_dir, "digits_eval.csv")
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
