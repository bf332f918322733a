"""Seeded synthetic people written in real vendor formats; may import lake and settings."""
