"""Model-structure detectors: what the saved architecture itself guarantees, before any step."""
