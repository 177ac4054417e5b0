"""Real-parts test infrastructure: libvirtd, QEMU/TCG guests, LXC, netns, Prometheus.

Each module owns one concern and is usable from pytest fixtures (``tests/e2e/conftest.py``),
from benchmarks and from scripts. Everything runs as root on Debian 12 (see
/work/shared/TESTING.md); :mod:`requirements` says why something cannot run here.
Subprocesses always get argument lists.
"""
