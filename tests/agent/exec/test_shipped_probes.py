"""The shipped probe tree: layout, and its probes run here and print templates that parse."""

from __future__ import annotations

import os
import py_compile
import shutil
import sys
from pathlib import Path

import pytest

from onemon.agent import monitor_config
from onemon.agent.exec import discover, run_group, to_template

TREE = Path(__file__).parents[3] / "onemon" / "probes"
FAKE_VIRSH = Path(__file__).parents[2] / "fixtures" / "probes" / "fakevirsh"
GROUPS = ["host/beacon", "host/system", "host/monitor", "vm/monitor", "vm/status",
          "vm/execution", "vm/snapshot"]  # fmt: skip
SHIPPED = {
    ("kvm", "host/system"): ["cpu_features.sh", "machines_models", "memory_encryption",
                             "nfs_automounted"],
    ("lxc", "host/system"): ["nfs_automounted"],
}  # fmt: skip
KVM_SYSTEM = {"KVM_CPU_FEATURES", "KVM_MACHINES", "KVM_CPU_MODELS", "KVM_CPU_MODEL",
              "MEMORY_ENCRYPTION", "AUTONFS_MOUNT"}  # fmt: skip
ARGS = ["kvm", "0", "node0"]


needs_virsh = pytest.mark.skipif(shutil.which("virsh") is None, reason="virsh is not installed")


async def _run(
    hv: str, env: dict[str, str], stdin: bytes = b"", group: str = "host/system"
) -> dict[str, object]:
    """Run a shipped group and return its parsed template (failing the test otherwise)."""
    result = await run_group(discover(TREE, hv, group), [hv, "0", "node0"], stdin, env=env)
    assert result.ok, result.error
    parsed = to_template(result, group)
    assert parsed.ok, parsed.error
    return parsed.template


@pytest.mark.parametrize("hv", ["kvm", "lxc"])
@pytest.mark.parametrize("group", GROUPS)
def test_layout_readme_and_keep_in_every_group(hv: str, group: str) -> None:
    directory = TREE / f"{hv}-probes.d" / group
    assert (directory / ".keep").is_file()
    readme = directory / "README"
    assert "Error executing" in readme.read_text()
    assert not os.access(readme, os.X_OK)
    assert [p.name for p in discover(TREE, hv, group)] == SHIPPED.get((hv, group), [])


def test_shipped_probes_are_standalone_programs(tmp_path: Path) -> None:
    probes = {p.resolve() for hv in ("kvm", "lxc") for p in discover(TREE, hv, "host/system")}
    for probe in probes:
        text = probe.read_text()
        assert text.startswith(("#!/bin/sh\n", "#!/usr/bin/env python3\n")), probe
        assert "onemon" not in text, probe
        if "python3" in text.splitlines()[0]:
            py_compile.compile(str(probe), cfile=str(tmp_path / "x.pyc"), doraise=True)
            assert "import " not in text or all(
                line.split()[1].split(".")[0]
                in {"glob", "os", "platform", "re", "shutil", "subprocess", "sys", "xml"}
                for line in text.splitlines()
                if line.startswith("import ")
            ), probe


async def test_without_virsh_only_nfs_is_reported(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(os.path.realpath(sys.executable))
    template = await _run("kvm", {"PATH": str(bin_dir)})
    assert template == {"AUTONFS_MOUNT": ""}
    assert await _run("lxc", {"PATH": str(bin_dir)}) == {"AUTONFS_MOUNT": ""}


@needs_virsh
async def test_with_libvirt_test_driver() -> None:
    template = await _run("kvm", {**os.environ, "LIBVIRT_URI": "test:///default"})
    assert set(template) <= KVM_SYSTEM
    assert template["KVM_MACHINES"] == ""  # the test driver's guests list no machine
    assert "qemu64" in str(template["KVM_CPU_MODELS"]).split()


# --------------------------------------------------------------------------- fake virsh


def _fake(tmp_path: Path, **outputs: str) -> dict[str, str]:
    """Environment whose virsh prints ``outputs[command]`` (cpu_models for cpu-models…)."""
    data = tmp_path / "virsh-data"
    data.mkdir(parents=True, exist_ok=True)
    for command, text in outputs.items():
        (data / f"{command.replace('_', '-')}.out").write_text(text)
    path = f"{FAKE_VIRSH}{os.pathsep}{os.environ['PATH']}"
    return {**os.environ, "PATH": path, "FAKE_VIRSH": str(data)}


async def _probe(name: str, env: dict[str, str], stdin: bytes = b"") -> str:
    """Output of one shipped KVM host/system probe."""
    probe = TREE / "kvm-probes.d" / "host" / "system" / name
    result = await run_group([probe], ARGS, stdin, env=env)
    assert result.ok, result.error
    return result.output


def _domcaps(features: str) -> str:
    return f"<domainCapabilities><features>{features}</features></domainCapabilities>\n"


@pytest.mark.parametrize(
    ("features", "expected"),
    [
        ("<sev supported='no'/>", "NONE"),
        ("<sev supported='yes'><maxESGuests>0</maxESGuests></sev>", "SEV"),
        ("<sev supported='yes'><maxGuests>15</maxGuests></sev>", "SEV"),
        ("<sev supported='yes'><maxESGuests>494</maxESGuests></sev>", "SEV-ES"),
        ("<sev supported='yes'><sevsnp supported='yes'/></sev>", "SEV-SNP"),
        (
            "<sev supported='yes'/><launchSecurity supported='yes'><enum name='sectype'>"
            "<value>sev</value><value>sev-snp</value></enum></launchSecurity>",
            "SEV-SNP",
        ),
        ("<sev supported='no'/><tdx supported='yes'/>", "TDX"),
        ("<tdx supported='no'/>", "NONE"),
    ],
)
async def test_memory_encryption(tmp_path: Path, features: str, expected: str) -> None:
    env = _fake(tmp_path, domcapabilities=_domcaps(features))
    assert await _probe("memory_encryption", env) == f"MEMORY_ENCRYPTION={expected}\n"


async def test_memory_encryption_unreadable_or_unavailable(tmp_path: Path) -> None:
    assert await _probe("memory_encryption", _fake(tmp_path)) == ""  # virsh fails
    env = _fake(tmp_path, domcapabilities="<not xml")
    assert await _probe("memory_encryption", env) == "MEMORY_ENCRYPTION=NONE\n"


CAPABILITIES = """<capabilities>
  <host><cpu><arch>x86_64</arch><model>EPYC-Rome</model><vendor>AMD</vendor>
    <feature name='vme'/><feature name='x2apic'/></cpu></host>
  <guest><os_type>hvm</os_type><arch name='i686'>
    <machine>pc-i440fx-8.2</machine><machine canonical='pc-i440fx-8.2'>pc</machine>
    <domain type='qemu'/></arch></guest>
  <guest><os_type>hvm</os_type><arch name='x86_64'>
    <machine>pc-i440fx-8.2</machine>
    <domain type='qemu'/>
    <domain type='kvm'><machine>pc-q35-8.2</machine>
      <machine canonical='pc-q35-8.2'>
        q35
      </machine><machine>pc-i440fx-8.2</machine></domain></arch></guest>
  <guest><os_type>hvm</os_type><arch name='aarch64'><machine>virt</machine>
    <domain type='qemu'/></arch></guest>
</capabilities>
"""


async def test_machines_and_models(tmp_path: Path) -> None:
    env = _fake(
        tmp_path,
        capabilities=CAPABILITIES,
        cpu_models='qemu64\nEPYC\nSkylake-Client\n\nall CPU models are accepted\nbad"name\n',
        domcapabilities="<domainCapabilities><cpu><mode name='custom' supported='yes'>"
        "<model usable='yes'>EPYC</model><model usable='no'>Skylake-Client</model>"
        "</mode></cpu></domainCapabilities>",
    )
    assert await _probe("machines_models", env) == (
        'KVM_MACHINES="pc-i440fx-8.2 pc pc-q35-8.2 q35"\n'
        'KVM_CPU_MODELS="qemu64 EPYC"\n'
        'KVM_CPU_MODEL="EPYC-Rome"\n'
    )


async def test_machines_models_without_libvirt(tmp_path: Path) -> None:
    assert await _probe("machines_models", _fake(tmp_path)) == ""


async def test_cpu_features_from_baseline(tmp_path: Path) -> None:
    baseline = (
        "<cpu mode='custom' match='exact'>\n  <model fallback='forbid'>EPYC</model>\n"
        "  <feature policy='require' name='3dnowprefetch'/>\n"
        "  <feature policy='require' name='avx512-bf16'/>\n"
        "  <feature policy='disable' name='svm'/>\n"
        "  <feature policy='require' name='sse4.2'/>\n</cpu>\n"
    )
    env = _fake(tmp_path, capabilities=CAPABILITIES, cpu_baseline=baseline)
    output = await _probe("cpu_features.sh", env)
    assert output == 'KVM_CPU_FEATURES="3dnowprefetch,avx512-bf16,sse4.2"\n'


async def test_cpu_features_fall_back_to_capabilities(tmp_path: Path) -> None:
    env = _fake(tmp_path, capabilities=CAPABILITIES)
    assert await _probe("cpu_features.sh", env) == 'KVM_CPU_FEATURES="vme,x2apic"\n'
    assert await _probe("cpu_features.sh", _fake(tmp_path / "none")) == ""


# --------------------------------------------------------------------------- nfs_automounted


async def test_nfs_automounted_reads_stdin_and_mountinfo(tmp_path: Path) -> None:
    datastores = tmp_path / "data stores"
    for ds in ("100", "101", "102"):
        (datastores / ds).mkdir(parents=True)
    (datastores / "100" / ".automounted").touch()  # mounted: reported
    (datastores / "101" / ".automounted").touch()  # not a mount point: skipped
    mount_point = str(datastores / "100").replace(" ", "\\040")
    other = str(datastores / "102").replace(" ", "\\040")
    procfs = tmp_path / "proc"
    (procfs / "self").mkdir(parents=True)
    (procfs / "self" / "mountinfo").write_text(
        f"36 35 0:40 / {mount_point} rw,relatime shared:1 - nfs4 old:/export rw\n"
        f"37 36 0:41 / {mount_point} rw,relatime shared:2 - nfs4 nfs.example:/export/ds rw\n"
        f"38 35 0:42 / {other} rw,relatime - nfs4 nfs.example:/export/other rw\n"
    )
    stdin = monitor_config.build(0, datastore_location=str(datastores))
    env = {**os.environ, "PROCFS": str(procfs)}
    output = await _probe("nfs_automounted", env, stdin)
    assert output == 'AUTONFS_MOUNT="nfs.example:/export/ds"\n'
    lxc = TREE / "lxc-probes.d" / "host" / "system" / "nfs_automounted"
    result = await run_group([lxc], ["lxc", "0", "n"], stdin, env=env)
    assert result.output == output
