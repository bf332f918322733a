"""tunewell: wearable and sleep exports to a personal, private Parquet lake."""

import os as _os

# polars allocates through its own jemalloc, which reads these options from the environment once,
# when polars is first imported; every tunewell module imports polars only after this package,
# so set here they apply to the CLI, the nightly flow, workers and the benchmarks alike. One
# arena instead of one per thread: the feature build (one person after another) peaked at
# 344-350 MB instead of 401-442 MB over 10 person-years, at no more CPU (bench/README.md).
# A value the user set themselves wins.
_os.environ.setdefault("_RJEM_MALLOC_CONF", "narenas:1")

__version__ = "0.1.0"
