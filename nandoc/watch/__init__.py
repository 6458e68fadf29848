"""The watched train step, its snapshot and restore, and the loop that drives it."""
