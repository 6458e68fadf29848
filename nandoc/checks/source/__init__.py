"""Static checks that read the user's custom-object source (losses, layers, metrics) with `ast`:
each reports its share of the shared measurement `suspects` (nandoc.analysis.source)."""
