"""Weekly coach pages and lifestyle suggestions; may import models, features, lake, settings."""
