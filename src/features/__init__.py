"""Nightly features in polars (sleep, HRV, circadian, load); may import lake and settings."""
