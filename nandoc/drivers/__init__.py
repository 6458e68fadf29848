"""The drivers: each gathers inputs and observations its own way, then calls the engine."""
