"""Trust: leakage paths, data safety, validation before computation."""
