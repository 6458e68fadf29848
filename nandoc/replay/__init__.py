"""`nandoc replay`: re-train a copy of the model, watching every step, stop at the first
non-finite value, localise it, explain it, and prove the fixes."""
