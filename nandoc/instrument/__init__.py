"""Instruments: run the model, its loss and its gradients on real values and measure them."""
