"""onemon.collector package."""
