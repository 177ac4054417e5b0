"""The built packages: versions, files and layout, conffiles, dependencies, scripts."""

from __future__ import annotations

import ast
import posixpath
import re
import shutil
import sys
import tomllib
from pathlib import Path

import pytest

from onemon.agent.config import AgentConfig
from onemon.settings import load_file
from tests.packaging import pkgtools
from tests.packaging.pkgtools import FORMATS, NAMES, REPO, Built, Entry

PYDIR = {"deb": "/usr/lib/python3/dist-packages", "rpm": "/usr/share/onemon/python"}
UNITDIR = {"deb": "/lib/systemd/system", "rpm": "/usr/lib/systemd/system"}
PROBES = "/usr/lib/onemon/probes"
DROPIN = "/etc/one/one-agent/probes"
OWNERS = {"onemon.agent": "one-agent", "onemon.collector": "one-collector",
          "onemon.front": "one-collector"}  # fmt: skip
"""Console scripts go with the package of their module."""
MODULES = {
    "python3-onemon": ("__init__.py", "py.typed", "settings.py", "safexml.py", "systemd.py", "wire/"),
    "one-agent": ("agent/",),
    "one-collector": ("collector/", "front/"),
}
IMPORT_PACKAGES = {
    "cbor2": "python3-cbor2",
    "cryptography": "python3-cryptography",
    "libvirt": "python3-libvirt",
    "aiohttp": "python3-aiohttp",
    "sqlalchemy": "python3-sqlalchemy",
    "uvloop": "python3-uvloop",
}
"""Third-party imports and the distribution package providing each (same name on Debian, EL)."""
OPTIONAL_IMPORTS = {"psycopg", "psycopg2", "pymysql", "MySQLdb"}
"""Database drivers, looked up at run time; suggested, not required."""


def conffiles() -> dict[str, list[str]]:
    """Each package's conffiles: /etc/one/<script>.toml for each script with a sample config."""
    with (REPO / "pyproject.toml").open("rb") as handle:
        scripts = tomllib.load(handle)["project"]["scripts"]
    found: dict[str, list[str]] = {name: [] for name in NAMES}
    for script, entry in scripts.items():
        module = entry.partition(":")[0]
        owner = next(o for prefix, o in OWNERS.items() if module.startswith(prefix))
        if (REPO / "packaging" / "config" / f"{script}.toml").exists():
            found[owner].append(f"/etc/one/{script}.toml")
    return {name: sorted(paths) for name, paths in found.items()}


def deb_depends(deb: Path) -> dict[str, str]:
    """Depends of a .deb: package name (without :any) -> version constraint."""
    found = {}
    for item in pkgtools.deb_field(deb, "Depends").split(","):
        match = re.fullmatch(r"\s*([a-z0-9.+-]+)(?::any)?\s*(?:\((.*)\))?\s*", item)
        assert match, item
        found[match.group(1)] = match.group(2) or ""
    return found


def rpm_requires(rpm: Path) -> dict[str, str]:
    """Requires of an .rpm (rpmlib() ones left out): name -> constraint."""
    found = {}
    for line in pkgtools.rpm_query(rpm, "--requires"):
        if line.startswith("rpmlib("):
            continue
        name, _, constraint = line.partition(" ")
        found[name] = constraint
    return found


def depends(built: Built, name: str, fmt: str) -> dict[str, str]:
    """A package's dependencies in one format."""
    path = built.path(name, fmt)
    return deb_depends(path) if fmt == "deb" else rpm_requires(path)


def resolve(entry: Entry) -> str:
    """Where a symbolic link in the package points, as an absolute path."""
    if entry.link.startswith("/"):
        return entry.link
    return posixpath.normpath(posixpath.join(posixpath.dirname(entry.path), entry.link))


def test_names_and_versions_are_the_projects(built: Built) -> None:
    version = pkgtools.project_version()
    for name in NAMES:
        deb = built.path(name, "deb")
        assert pkgtools.deb_field(deb, "Package") == name
        assert pkgtools.deb_field(deb, "Version") == f"{version}-1"
        assert pkgtools.deb_field(deb, "Architecture") == "all"
        rpm = built.path(name, "rpm")
        fields = pkgtools.rpm_query(rpm, "--qf", "%{NAME} %{VERSION} %{RELEASE} %{ARCH}\n")
        assert fields == [f"{name} {version} 1 noarch"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_source_file_is_in_exactly_one_package(built: Built, fmt: str) -> None:
    source = REPO / "onemon"
    expected = {
        p.relative_to(source).as_posix()
        for p in source.rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and p.parts[len(source.parts)] != "probes"
        and not p.name.startswith(".")
    }
    prefix = f"{PYDIR[fmt]}/onemon/"
    owners: dict[str, list[str]] = {}
    for name in NAMES:
        for path, entry in pkgtools.entries(built.path(name, fmt)).items():
            if path.startswith(prefix) and entry.is_file:
                relative = path.removeprefix(prefix)
                owners.setdefault(relative, []).append(name)
                assert relative.startswith(MODULES[name]), f"{relative} in {name}"
    assert sorted(owners) == sorted(expected)
    assert {f: o for f, o in owners.items() if len(o) > 1} == {}


@pytest.mark.parametrize("fmt", FORMATS)
def test_layout(built: Built, fmt: str) -> None:
    common = pkgtools.entries(built.path("python3-onemon", fmt))
    agent = pkgtools.entries(built.path("one-agent", fmt))
    collector = pkgtools.entries(built.path("one-collector", fmt))
    onemon = f"{PYDIR[fmt]}/onemon"

    probe = common[f"{PROBES}/kvm-probes.d/host/system/cpu_features.sh"]
    assert probe.is_file and probe.mode & 0o777 == 0o755
    link = common[f"{onemon}/probes"]
    assert link.is_link and resolve(link) == PROBES  # the code's default tree works too
    assert f"{onemon}/agent/cli.py" in agent
    assert f"{onemon}/collector/cli.py" in collector
    assert f"{onemon}/front/cli.py" in collector

    for entries, programs, units in (
        (agent, ["one-agent"], ["one-agent.service"]),
        (collector, ["one-collector", "onemon"], ["one-collector.service"]),
    ):
        for program in programs:
            assert entries[f"/usr/bin/{program}"].mode & 0o777 == 0o755
        for unit in units:
            assert entries[f"{UNITDIR[fmt]}/{unit}"].is_file
        for program in [p.removeprefix("/usr/bin/") for p in entries if p.startswith("/usr/bin/")]:
            pages = [
                p for p in entries if re.fullmatch(rf"/usr/share/man/man\d/{program}\.\d\.gz", p)
            ]
            assert pages, f"no man page for /usr/bin/{program}"
        assert entries["/etc/one/onemon"].is_dir

    for entries in (common, agent, collector):
        for path, entry in entries.items():
            assert not path.startswith(("/usr/local", "/home", "/var", "/tmp", "/opt")), path
            if entry.is_file:
                assert entry.mode & 0o777 in (0o644, 0o755), f"{path} {entry.mode:o}"


@pytest.mark.parametrize("fmt", FORMATS)
def test_dropin_tree_links_every_shipped_probe(built: Built, fmt: str) -> None:
    common = pkgtools.entries(built.path("python3-onemon", fmt))
    agent = pkgtools.entries(built.path("one-agent", fmt))
    shipped = {p.removeprefix(PROBES) for p, e in common.items() if p.startswith(PROBES + "/")}
    shipped_files = {p for p in shipped if not common[PROBES + p].is_dir}
    dropin = {p.removeprefix(DROPIN): e for p, e in agent.items() if p.startswith(DROPIN + "/")}
    assert {p for p, e in dropin.items() if e.is_link} == shipped_files
    assert {p for p, e in dropin.items() if e.is_dir} == shipped - shipped_files
    assert not [p for p, e in dropin.items() if e.is_file]  # the admin's files only
    for relative, entry in dropin.items():
        if entry.is_link:
            assert resolve(entry) == PROBES + relative
    groups = {"host/beacon", "host/system", "host/monitor", "vm/status", "vm/monitor"}
    for hv in ("kvm", "lxc"):
        for group in groups:
            assert dropin[f"/{hv}-probes.d/{group}"].is_dir


def test_conffiles(built: Built) -> None:
    expected_all = conffiles()
    assert expected_all["one-agent"] == ["/etc/one/one-agent.toml"]
    assert "/etc/one/one-collector.toml" in expected_all["one-collector"]
    for name, expected in expected_all.items():
        deb = built.path(name, "deb")
        assert sorted(pkgtools.deb_control_file(deb, "conffiles").split()) == expected
        rpm = built.path(name, "rpm")
        config = sorted(pkgtools.rpm_query(rpm, "--configfiles"))
        assert config == expected or (config == ["(contains no files)"] and not expected)
        flags = pkgtools.rpm_query(rpm, "--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]")
        for path in expected:
            assert f"{path} cn" in flags  # %config(noreplace)


@pytest.mark.parametrize("fmt", FORMATS)
def test_installed_configurations(built: Built, fmt: str, tmp_path: Path) -> None:
    agent_file = tmp_path / "one-agent.toml"
    agent_file.write_bytes(pkgtools.member(built.path("one-agent", fmt), "/etc/one/one-agent.toml"))
    installed = load_file(AgentConfig, agent_file)
    sample = load_file(AgentConfig, REPO / "packaging" / "config" / "one-agent.toml")
    assert installed.warnings == []
    assert installed.config.probes.tree == Path(DROPIN)
    assert installed.config.send == sample.config.send
    assert installed.config.periods == sample.config.periods
    assert installed.config.state_dir == Path("/var/lib/one-agent")
    for path in conffiles()["one-collector"]:  # the samples as they are
        shipped = pkgtools.member(built.path("one-collector", fmt), path)
        assert shipped == (REPO / "packaging" / "config" / Path(path).name).read_bytes()


def test_deb_depends_on_debian_python_packages(built: Built) -> None:
    version = built.version
    common = depends(built, "python3-onemon", "deb")
    assert common == {
        "python3": ">= 3.11~",
        "python3-cbor2": ">= 5.4.6",
        "python3-cryptography": ">= 38.0.4",
    }
    agent = depends(built, "one-agent", "deb")
    assert agent["python3-onemon"] == f"= {version}-1"
    assert agent["python3-libvirt"] == ">= 9.0"
    assert "adduser" in agent
    collector = depends(built, "one-collector", "deb")
    assert collector["python3-onemon"] == f"= {version}-1"
    assert collector["python3-sqlalchemy"] == ">= 1.4.46"  # Debian 12's 1.4: postgresql+psycopg2
    assert collector["python3-aiohttp"] == ">= 3.8.4"
    assert collector["python3-uvloop"] == ">= 0.17"


def test_rpm_requires_el_python_packages(built: Built) -> None:
    version = built.version
    assert depends(built, "python3-onemon", "rpm") == {
        "python3": ">= 3.11",  # EL9's python3 is 3.9: EL10 / Fedora
        "python3-cbor2": ">= 5.4",  # EPEL
        "python3-cryptography": ">= 36",
    }
    agent = depends(built, "one-agent", "rpm")
    assert agent["python3-onemon"] == f"= {version}"
    assert agent["python3-libvirt"] == ">= 9.0"
    assert "shadow-utils" in agent
    collector = depends(built, "one-collector", "rpm")
    assert collector["python3-sqlalchemy"] == ">= 1.4.46"
    assert {"python3-aiohttp", "python3-uvloop"} <= collector.keys()


def third_party_imports(directory: Path) -> set[str]:
    """Top-level names of the non-stdlib modules imported anywhere below ``directory``."""
    found: set[str] = set()
    files = [directory] if directory.is_file() else sorted(directory.rglob("*.py"))
    for path in files:
        if path.suffix != ".py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("onemon", "__future__"):
                    found.add(top)
    return found


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_third_party_import_is_a_dependency(built: Built, fmt: str) -> None:
    common = set(depends(built, "python3-onemon", fmt))
    for name, modules in MODULES.items():
        imports: set[str] = set()
        for module in modules:
            imports |= third_party_imports(REPO / "onemon" / module.rstrip("/"))
        unknown = sorted(imports - IMPORT_PACKAGES.keys() - OPTIONAL_IMPORTS)
        assert unknown == [], f"{name} imports {unknown}: add the distro package to its yaml"
        have = common | set(depends(built, name, fmt))
        missing = sorted({IMPORT_PACKAGES[i] for i in imports & IMPORT_PACKAGES.keys()} - have)
        assert missing == [], f"{name} ({fmt}) lacks {missing}"


def test_debian_can_satisfy_the_dependencies(built: Built) -> None:
    if shutil.which("apt-get") is None or not Path("/etc/debian_version").exists():
        pytest.skip("not a Debian system")
    if not pkgtools.run(["apt-cache", "policy", "python3-cbor2"]).stdout.strip():
        pytest.skip("apt lists are empty (apt-get update)")
    debs = [str(p) for p in built.all("deb")]
    done = pkgtools.run(["apt-get", "install", "--simulate", "--no-install-recommends", *debs],
                        check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("fmt", FORMATS)
def test_console_scripts_run_the_entry_points_with_the_system_python(
    built: Built, fmt: str
) -> None:
    with (REPO / "pyproject.toml").open("rb") as handle:
        scripts = tomllib.load(handle)["project"]["scripts"]
    shipped: dict[str, bytes] = {}
    for name in ("one-agent", "one-collector"):
        package = built.path(name, fmt)
        for path in pkgtools.entries(package):
            if path.startswith("/usr/bin/"):
                shipped[path.removeprefix("/usr/bin/")] = pkgtools.member(package, path)
    assert sorted(shipped) == sorted(scripts)
    for name, text in shipped.items():
        module, _, function = scripts[name].partition(":")
        code = text.decode()
        assert code.startswith("#!/usr/bin/python3 -I\n"), name
        assert f"from {module} import {function}\n" in code
        assert ('sys.path.insert(0, "/usr/share/onemon/python")' in code) == (fmt == "rpm")
        compile(code, name, "exec")


def maintainer_scripts(built: Built) -> dict[str, str]:
    """Every maintainer script of every package: "<package> <format> <script>" -> text."""
    found = {}
    for name in NAMES:
        deb = built.path(name, "deb")
        for script in ("preinst", "postinst", "prerm", "postrm"):
            text = pkgtools.deb_control_file(deb, script)
            if text:
                found[f"{name} deb {script}"] = text
        rpm = built.path(name, "rpm")
        for tag in ("PREIN", "POSTIN", "PREUN", "POSTUN"):
            text = "\n".join(pkgtools.rpm_query(rpm, "--qf", f"%{{{tag}}}\n"))
            if text and text != "(none)":
                found[f"{name} rpm {tag}"] = text
    return found


def test_maintainer_scripts_are_posix_sh_with_placeholders_filled(
    built: Built, tmp_path: Path
) -> None:
    scripts = maintainer_scripts(built)
    assert {k for k in scripts if "one-agent" in k} >= {
        "one-agent deb postinst", "one-agent deb prerm", "one-agent deb postrm",
        "one-agent rpm PREIN", "one-agent rpm POSTIN", "one-agent rpm PREUN",
    }  # fmt: skip
    for key, text in scripts.items():
        assert not re.search(r"@[A-Z_]+@", text), key
        path = tmp_path / key.replace(" ", "_")
        path.write_text(text)
        done = pkgtools.run(["sh", "-n", str(path)], check=False)
        assert done.returncode == 0, f"{key}: {done.stderr}"


def test_maintainer_scripts_create_users_and_the_key(built: Built) -> None:
    scripts = maintainer_scripts(built)
    agent = scripts["one-agent deb postinst"]
    assert "adduser --system --group --quiet --home /var/lib/one-agent" in agent
    assert "for group in libvirt oneadmin" in agent
    assert "deb-systemd-helper enable" in agent
    assert "scp -p" in agent  # how to hand the key over
    collector = scripts["one-collector deb postinst"]
    assert "adduser --system --group --quiet --home /var/lib/onemon" in collector
    assert 'one-collector --generate-key "$KEY"' in collector
    assert "scp -p $KEY root@NODE:$KEY" in collector
    assert "useradd -r -g one-agent" in scripts["one-agent rpm PREIN"]
    assert "--generate-key" in scripts["one-collector rpm POSTIN"]
    assert "rm -rf /var/lib/one-agent" in scripts["one-agent deb postrm"]
