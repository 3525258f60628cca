"""The benchmark and the reliability runs, run from a clone's root:

  python -m scripts.benchmark --quick --json=bench.json --plot=bench.png
  python -m scripts.bench_data --quick --json=data.json
  python -m scripts.chaos --runs=5 --signal=SIGKILL --json=chaos.json

Not installed with the package (nothing here is a library); they import the
installed harness and each other as `scripts.*`.
"""
