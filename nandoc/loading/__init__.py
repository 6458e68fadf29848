"""Reading the user's files: config-named model, custom objects and data. Never writes them."""
