"""Vendor readers, detection, validation and the ingest runner; may import lake and settings."""
