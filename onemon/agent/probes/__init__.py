"""Built-in probes: in-process replacements for OpenNebula's probe groups."""
