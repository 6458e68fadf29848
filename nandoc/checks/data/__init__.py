"""Checks of the data file: non-finite cells, scale, labels against the loss, validation size."""
