"""onemon.agent package."""
