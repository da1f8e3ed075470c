"""Model definitions shared by studies (leaves: they import nothing from above)."""
