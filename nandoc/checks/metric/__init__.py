"""Checks of custom metric functions."""
