"""The contract: table schemas, sleep and time rules, the Parquet store; may import settings."""
