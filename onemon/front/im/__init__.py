"""The IM driver: agents on the nodes, started, stopped, synced and kept alive over SSH."""
