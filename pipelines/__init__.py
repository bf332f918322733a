"""Prefect flows, the CLI and the run report: orchestration only; may import every layer."""
