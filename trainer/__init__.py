"""Estimator trainer on top of TF Hub models."""
