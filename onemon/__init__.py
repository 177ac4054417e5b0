"""onemon: OpenNebula-compatible host and VM monitoring."""

__version__ = "0.1.0"
