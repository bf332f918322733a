"""tunewell: wearable and sleep exports to a personal, private Parquet lake."""

__version__ = "0.1.0"
