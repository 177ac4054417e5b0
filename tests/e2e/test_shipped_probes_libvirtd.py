"""The shipped KVM host/system probes against the real libvirtd (qemu:///system) the e2e tier runs.

``tests/agent/exec/test_shipped_probes.py`` runs them against libvirt's test driver and a fake
``virsh``; here the probe tree gets no ``LIBVIRT_URI``, as on a node, and must find the system
daemon, its machine types and the host CPU's features.
"""

from __future__ import annotations

import os

import pytest

from tests.agent.exec.test_shipped_probes import KVM_SYSTEM, _run
from tests.e2e.infra import libvirtd

pytestmark = pytest.mark.skipif(
    os.environ.get("ONEMON_E2E") == "0", reason="ONEMON_E2E=0 skips the e2e tier"
)


async def test_kvm_system_probes_on_this_host_libvirtd(libvirtd_daemons: libvirtd.Daemons) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LIBVIRT_URI"}
    template = await _run("kvm", env)
    assert set(template) == KVM_SYSTEM
    assert template["MEMORY_ENCRYPTION"] in {"NONE", "SEV", "SEV-ES", "SEV-SNP", "TDX"}
    machines = str(template["KVM_MACHINES"]).split()
    assert machines and any(m.startswith("pc") for m in machines)
    features = str(template["KVM_CPU_FEATURES"]).split(",")
    assert features and all(features)
    assert str(template["KVM_CPU_MODELS"]).split()
