"""Static checks that read the user's custom-object source (losses, layers, metrics) with `ast`."""
