"""Evaluation metrics shared by studies (leaves: they import nothing from above)."""
