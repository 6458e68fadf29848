"""Checks that run the user's custom losses on the values the model's output can reach."""
