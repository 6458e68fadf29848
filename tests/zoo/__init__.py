"""The NaN zoo: tiny real Keras 3 cases (pathological and healthy) with their expected causes."""
