"""scikit-learn estimators and the gold scores; may import features, lake and settings."""
