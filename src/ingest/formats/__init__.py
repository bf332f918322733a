"""One module per vendor format; each implements the interface in ``tunewell.ingest.base``."""
