"""cmadev."""
