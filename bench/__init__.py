"""Benchmarks that print figures; each module runs alone with ``python -m bench.<name>``."""
