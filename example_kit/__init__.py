"""The example kit: hub models and data sets made here, for the demo and tests.

No model hub or data set can be downloaded on the project's machines, so the
kit builds its own with real TensorFlow code (`hub_models`) from data that
ships inside installed packages (`datasets`: scikit-learn's handwritten
digits, NumPy's docstrings). `assets.prepare(root)` builds what is missing;
`python -m example_kit --out=demo_assets` does it from the command line.

The trainer does not import this package: the demo runs it as a command when
its files are missing (see trainer/config/demo.py).
"""
