"""The one diagnosis engine: inputs and observations in, a ranked Report out."""
