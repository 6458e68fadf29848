"""Checks of the optimizer the model was compiled with."""
