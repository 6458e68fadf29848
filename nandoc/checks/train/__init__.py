"""Training-time checks: they read the per-step log that replay and the callback fill in."""
