"""System packages without a container: the host's apt resolves and downloads them against the
image's own apt sources, keys and dpkg status; layers.dpkg unpacks them into one layer.

apt runs with a private configuration (`APT_CONFIG`) that reads nothing from the host's or the
image's apt.conf.d (their hooks would run on the host), only the image's sources, keyrings and
preferences; package lists and downloaded .debs are cached under the ociasm store. A package
whose installation needs dpkg to really run something (see layers.dpkg.container_reasons)
raises `NeedsContainer`, and the build installs the whole list in a container instead.
The layer is cached by the layers below it and the package list; the record keeps the
versions apt resolved.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import unquote, urlsplit

from ociasm.errors import OciasmError
from ociasm.image import Layer, StoredLayer
from ociasm.progress import Progress
from ociasm.store import BlobStore

from . import dpkg
from .dpkg import NeedsContainer
from .rootfs import MemoryReader
from . import recipe
from .tarstream import Entry, write_layer

RECIPE_VERSION = 1
# Package lists younger than this are used as they are: tini and system_packages share one update.
LISTS_FRESH_SECONDS = 600
TOOLS = ("apt-get", "apt-config", "dpkg-deb")
# What apt reads from the image (keyrings may live in either place Debian and Ubuntu use).
_APT_FILES = ("etc/apt/", "usr/share/keyrings/")
_OPTIONS_FROM_IMAGE = ("APT::Install-Recommends", "APT::Install-Suggests")
_DEB_ARCH = {"amd64": "amd64", "arm64": "arm64", "386": "i386", "arm": "armhf", "ppc64le": "ppc64el",
             "s390x": "s390x"}
_INST = re.compile(r"^Inst (\S+) (?:\[(\S+)\] )?\((\S+) .*\[(\S+)\]\)", re.M)
_REMV = re.compile(r"^Remv (\S+)", re.M)
_URI = re.compile(r"^'([^']+)' (\S+) ", re.M)


@dataclass(frozen=True)
class AptRequest:
    packages: tuple[str, ...]
    recommends: bool | None = None             # None: as the image's apt configuration says
    links: tuple[tuple[str, str], ...] = ()    # extra symlinks: (path, target)
    source: str = "system_packages"            # named in errors

    def key_inputs(self) -> dict:
        return {"packages": sorted(set(self.packages)), "recommends": self.recommends,
                "links": sorted(self.links)}


@dataclass(frozen=True)
class AptLayer:
    layer: StoredLayer | None   # None: everything asked for is installed already
    installed: tuple[str, ...]  # name=version, in apt's order


def host_problem() -> str | None:
    """Why this host cannot install packages daemonlessly, or None."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    return f"this host has no {', '.join(missing)}" if missing else None


def recipe_key(lower: list[Layer], request: AptRequest) -> str:
    return recipe.key(v=RECIPE_VERSION, below=[l.diff_id for l in lower], **request.key_inputs())


def cached(store: BlobStore, key: str) -> AptLayer | None:
    hit = recipe.cached_layer(store, "apt", key)
    return AptLayer(hit[0], tuple(hit[1]["installed"])) if hit else None


def _wanted(path: str) -> bool:
    return path.startswith(_APT_FILES) or dpkg.Database.wanted(path)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One apt at a time per cache: apt's own locks would make a second build fail, not wait."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _linked_files(reader: MemoryReader) -> list[tuple[str, bytes]]:
    """apt's files that are symlinks in the image (Ubuntu links its trusted.gpg.d keys to
    /usr/share/keyrings), as copies of what they point at."""
    found = []
    for path in reader.symlinks:
        if path.startswith(_APT_FILES) and (pointee := reader.pointee(path)) in reader.files:
            found.append((path, reader.files[pointee]))
    return found


def _rewrite_keyrings(text: str, root: Path) -> str:
    """Point Signed-By paths (deb822 and one-line forms) at the image's copies under `root`."""
    text = re.sub(r"(?im)^(Signed-By:[ \t]*)(/\S.*)$",
                  lambda m: m.group(1) + " ".join(f"{root}{p}" for p in m.group(2).split()), text)
    return re.sub(r"(signed-by=)(/[^\s\],]+)", lambda m: f"{m.group(1)}{root}{m.group(2)}", text)


@dataclass(frozen=True)
class Planned:
    name: str
    version: str
    arch: str
    replaces: str | None  # the version being upgraded

    def deb_name(self) -> str:
        return f"{self.name}_{self.version.replace(':', '%3a')}_{self.arch}.deb"


class _Apt:
    """apt-get against the image's sources, in a private root under `work`."""

    def __init__(self, store: BlobStore, reader: MemoryReader, work: Path, arch: str,
                 recommends: bool | None, source: str) -> None:
        self.work, self.source = work, source
        root = work / "image"
        for path, data in [*reader.files.items(), *_linked_files(reader)]:
            if path.startswith(_APT_FILES) or path == f"{dpkg.DPKG}/status":
                dest = root / path
                dest.parent.mkdir(parents=True, exist_ok=True)
                is_source = path.startswith("etc/apt/sources.list")
                dest.write_bytes(_rewrite_keyrings(data.decode(errors="surrogateescape"), root)
                                 .encode(errors="surrogateescape") if is_source else data)
        for sub in ("etc/apt/apt.conf.d", "etc/apt/preferences.d", "etc/apt/trusted.gpg.d",
                    "etc/apt/sources.list.d", "empty", "state", "cache", "log"):
            (root / sub if sub.startswith("etc") else work / sub).mkdir(parents=True, exist_ok=True)
        sources = b"".join(path.encode() + data for path, data in sorted(reader.files.items())
                           if path.startswith("etc/apt/sources.list"))
        cache = store.root / "apt"
        self.lock = cache / "lock"
        lists = self.lists = cache / "lists" / hashlib.sha256(sources + arch.encode()).hexdigest()[:24]
        archives = self.archives = cache / "archives"
        for d in (lists / "partial", archives / "partial"):
            d.mkdir(parents=True, exist_ok=True)
        foreign = (reader.text(f"{dpkg.DPKG}/arch") or "").split()
        options = {
            "Dir::Etc": f"{root}/etc/apt/", "Dir::Etc::main": "/dev/null",
            "Dir::Etc::parts": f"{work}/empty/",  # never apt.conf.d: its hooks would run on the host
            "Dir::State": f"{work}/state/", "Dir::State::lists": f"{lists}/",
            "Dir::State::status": f"{root}/{dpkg.DPKG}/status",
            "Dir::Cache": f"{work}/cache/", "Dir::Cache::archives": f"{archives}/",
            "Dir::Log": f"{work}/log/", "APT::Architecture": arch,
            "Acquire::Languages": "none", "Debug::NoLocking": "true",
            **self._image_options(root),
        }
        if os.geteuid() == 0:
            options["APT::Sandbox::User"] = "root"  # _apt cannot reach a private cache directory
        if recommends is not None:
            options["APT::Install-Recommends"] = "true" if recommends else "false"
        arches = " ".join(f'"{a}";' for a in dict.fromkeys([arch, *foreign]))
        self.config = work / "apt.conf"
        self.config.write_text("".join(f'{k} "{v}";\n' for k, v in options.items())
                               + f"APT::Architectures {{ {arches} }};\n")

    def _image_options(self, root: Path) -> dict[str, str]:
        """The few settings of the image's apt.conf.d that change what gets installed."""
        conf = self.work / "image-apt.conf"
        conf.write_text(f'Dir::Etc::parts "{root}/etc/apt/apt.conf.d/";\nDir::Etc::main "/dev/null";\n')
        proc = subprocess.run(["apt-config", "dump"], capture_output=True, text=True,
                              env={**os.environ, "APT_CONFIG": str(conf)})
        found = {}
        for line in proc.stdout.splitlines():
            name, _, value = line.partition(" ")
            if name in _OPTIONS_FROM_IMAGE:
                found[name] = value.strip().rstrip(";").strip('"')
        return found

    def run(self, *args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "APT_CONFIG": str(self.config), "DEBIAN_FRONTEND": "noninteractive",
               "LC_ALL": "C"}
        proc = subprocess.run(["apt-get", "-q", *args], capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            errors = [l[3:] for l in proc.stderr.splitlines() if l.startswith("E: ")]
            reason = errors[0] if errors else (proc.stderr.strip().splitlines() or ["apt-get failed"])[-1]
            raise OciasmError(f"{self.source}: apt-get {args[0]} against the base image's sources "
                              f"failed: {reason}")
        return proc

    def _update(self, warn: Callable[[str], None]) -> None:
        """As in Cog's container, a source that cannot be reached is a warning, not a failure."""
        stamp = self.lists / "ociasm-updated"
        with _locked(self.lock):
            if stamp.exists() and time.time() - stamp.stat().st_mtime < LISTS_FRESH_SECONDS:
                return
            stderr = self.run("update").stderr
            if failed := [l[3:] for l in stderr.splitlines() if l.startswith("W: Failed to fetch")]:
                warn(f"{self.source}: apt could not update every source of the base image: {failed[0]}")
            else:
                stamp.touch()

    def plan(self, packages: tuple[str, ...], warn: Callable[[str], None]) -> list[Planned]:
        self._update(warn)
        out = self.run("install", "--simulate", "--yes", *packages).stdout
        if removals := _REMV.findall(out):
            raise NeedsContainer([f"installing them removes {', '.join(removals)}"])
        return [Planned(n.split(":")[0], v, a, old or None) for n, old, v, a in _INST.findall(out)]

    def download(self, packages: tuple[str, ...], planned: list[Planned]) -> list[Path]:
        """The .debs, fetched into the shared archive (file: repositories are read in place)."""
        with _locked(self.lock):
            local = {name: unquote(urlsplit(uri).path) for uri, name in
                     _URI.findall(self.run("install", "--print-uris", "--yes", *packages).stdout)
                     if uri.startswith("file:")}
            self.run("install", "--download-only", "--yes", *packages)
        debs = [Path(local.get(p.deb_name()) or self.archives / p.deb_name()) for p in planned]
        if missing := [d.name for d in debs if not d.is_file()]:
            raise OciasmError(f"{self.source}: apt did not download {', '.join(missing)}")
        return debs


def _debian_arch(config: dict) -> str:
    arch = config.get("architecture", "amd64")
    return _DEB_ARCH.get(arch, arch)


def _requested(package: str) -> str:
    """The package name in an apt argument (`name`, `name=version`, `name/suite`, `name:arch`)."""
    return re.split(r"[=/:]", package, maxsplit=1)[0]


def build(store: BlobStore, key: str, lower: list[Layer], image_config: dict, request: AptRequest,
          progress: Progress) -> AptLayer:
    """Resolve, download and unpack `request` on top of `lower`; record the layer under `key`.

    Raises NeedsContainer when dpkg itself must run for some package.
    """
    progress.step(f"{request.source}: reading the image's apt sources and dpkg state")
    reader = MemoryReader(_wanted).read(lower)
    db = dpkg.Database.read(reader)
    with tempfile.TemporaryDirectory(dir=store.tmp_dir, prefix="apt-") as scratch:
        work = Path(scratch)
        apt = _Apt(store, reader, work, _debian_arch(image_config), request.recommends, request.source)
        progress.step(f"{request.source}: resolving {' '.join(request.packages)} with apt")
        planned = apt.plan(request.packages, progress.warn)
        if not planned and not request.links:
            recipe.remember(store, "apt", key, None, installed=[])
            return AptLayer(None, ())
        debs = [dpkg.read_deb(path) for path in apt.download(request.packages, planned)]
        if reasons := dpkg.container_reasons(debs, db, {p.name for p in planned if p.replaces}):
            raise NeedsContainer(reasons)
        progress.step(f"{request.source}: unpacking {len(debs)} packages")
        root = work / "root"
        root.mkdir()
        install = dpkg.Install(db, reader.symlinks, root)
        for deb in debs:
            install.unpack(deb)
        if reasons := dpkg.file_trigger_reasons(db, debs, install.result):
            raise NeedsContainer(reasons)
        for link, target in request.links:
            dest = root / install.resolve(link.lstrip("/"))
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.unlink(missing_ok=True)
            os.symlink(target, dest)
        auto = {d.name for d in debs} - {_requested(p) for p in request.packages}
        entries: list[Entry] = dpkg.tree_entries(root)
        entries += dpkg.bookkeeping(db, debs, install.result, auto)
        entries += [dpkg.whiteout_entry(p) for p in sorted(dpkg.removed(db, debs, install.result, install.resolve))]
        layer = write_layer(store, entries)
    installed = tuple(f"{p.name}={p.version}" for p in planned)
    recipe.remember(store, "apt", key, layer, installed=list(installed))
    return AptLayer(layer, installed)
