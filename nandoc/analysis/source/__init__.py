"""The static read of custom-object source: taint walk, sites, and the findings it suspects."""

from nandoc.analysis.source.suspects import static_suspects

__all__ = ["static_suspects"]
