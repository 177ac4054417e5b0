"""onemon.front package."""
