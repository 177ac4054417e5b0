"""onemon.wire package."""
