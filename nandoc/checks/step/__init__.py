"""Checks that run the model layer by layer, forward and backward, on real batches."""
