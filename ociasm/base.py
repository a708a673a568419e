"""The base image: pulled and verified into the store, and read (never run) for its Python.

Where the interpreter and its site directory live differs between the official python
images (/usr/local/bin/python3.X, site-packages) and Debian's python3 (/usr/bin/python3.X,
packages added under /usr/local/lib/python3.X/dist-packages) and uv-managed interpreters
(Cog's CUDA and cog-base images: /usr/local/bin/python links into their prefix). The answer
comes from the layers' file lists, with whiteouts applied, and is cached by manifest digest.
"""

from __future__ import annotations

import json
import posixpath
import re
import tarfile
from dataclasses import dataclass


from . import locations
from .errors import OciasmError
from .layers.deps import PythonTarget
from .layers.python import Distribution
from .layers.rootfs import MemoryReader
from .image import StoredLayer
from .progress import Progress
from .registry import PulledManifest, RegistryClient, RemoteLayer
from .store import BlobStore

FACTS_VERSION = 1
# Manylinux floor when the base has no dpkg status to read glibc's version from.
DEFAULT_GLIBC = "2.17"


@dataclass(frozen=True)
class BaseImage:
    manifest: PulledManifest
    config: dict
    layers: tuple[RemoteLayer, ...]
    python: PythonTarget


def _interesting(name: str, version: str) -> bool:
    return (name in (f"usr/local/bin/python{version}", f"usr/bin/python{version}", "var/lib/dpkg/status",
                     "usr/bin/python3")
            or posixpath.basename(name) == "python")


class _FactsReader(MemoryReader):
    """The merged filesystem's dpkg status file and which paths of interest survive in it."""

    def __init__(self, version: str) -> None:
        super().__init__(lambda path: path == "var/lib/dpkg/status")
        self.version = version
        self.present: set[str] = set()

    def add(self, path: str, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        super().add(path, member, tar)
        if _interesting(path, self.version):
            self.present.add(path)

    def discard(self, path: str) -> None:
        super().discard(path)
        self.present.discard(path)

    def discard_tree(self, prefix: str, keep: set[str]) -> None:
        super().discard_tree(prefix, keep)
        self.present -= {p for p in self.present if p.startswith(prefix) and p not in keep}


def _scan(layers: tuple[StoredLayer, ...], version: str) -> tuple[set[str], str | None, dict[str, str]]:
    """Paths of interest present in the merged filesystem, dpkg's status file, and where the
    interesting symlinks point."""
    reader = _FactsReader(version).read(layers)
    links = {p: reader.symlinks[p] for p in reader.present if p in reader.symlinks}
    return reader.present, reader.text("var/lib/dpkg/status"), links


def _glibc(dpkg_status: str | None) -> str:
    if dpkg_status:
        m = re.search(r"^Package: libc6\n(?:(?!\n\n).)*?^Version: (?:\d+:)?(\d+\.\d+)", dpkg_status,
                      re.M | re.S)
        if m:
            return m.group(1)
    return DEFAULT_GLIBC


def _path_dirs(config: dict) -> list[str]:
    env = dict(e.split("=", 1) for e in config.get("config", {}).get("Env") or [] if "=" in e)
    return [d.strip("/") for d in env.get("PATH", "/usr/local/bin:/usr/bin:/bin").split(":") if d]


def _relocatable(present: set[str], links: dict[str, str], version: str) -> str | None:
    """The prefix of a uv-managed / python-build-standalone interpreter that /usr/local/bin/python
    or /usr/bin/python3 links to (Cog's CUDA and cog-base images), if one does."""
    for name in ("usr/local/bin/python", "usr/bin/python3"):
        target = links.get(name, "") if name in present else ""
        if target.startswith("/") and target.endswith(f"/bin/python{version}"):
            return target[:-len(f"/bin/python{version}")]
    return None


def python_target(present: set[str], dpkg_status: str | None, config: dict, version: str,
                  reference: str, links: dict[str, str] | None = None) -> PythonTarget:
    glibc = _glibc(dpkg_status)
    has_python = any(f"{d}/python" in present for d in _path_dirs(config))
    if prefix := _relocatable(present, links or {}, version):
        return PythonTarget(version, f"{prefix}/bin/python{version}", f"{prefix}/lib/python{version}/site-packages",
                            f"{prefix}/bin", glibc, has_python)
    if f"usr/local/bin/python{version}" in present:  # official python image layout
        return PythonTarget(version, f"/usr/local/bin/python{version}",
                            f"/usr/local/lib/python{version}/site-packages", "/usr/local/bin",
                            glibc, has_python)
    if f"usr/bin/python{version}" in present:  # Debian's python3
        return PythonTarget(version, f"/usr/bin/python{version}",
                            f"/usr/local/lib/python{version}/dist-packages", "/usr/local/bin",
                            glibc, has_python)
    raise OciasmError(f"base image {reference} has no Python {version} (looked for "
                      f"/usr/local/bin/python{version} and /usr/bin/python{version}); "
                      "set build.python_version to the base's Python or pick another base")


def facts_key(manifest_digest: str, version: str, interpreter: Distribution | None = None) -> str:
    """Cache key of a base's Python facts; with an added interpreter they describe that one."""
    added = f"-{interpreter.sha256[:16]}" if interpreter else ""
    return f"{manifest_digest.split(':')[1]}-py{version}{added}-v{FACTS_VERSION}"


def pull(client: RegistryClient, store: BlobStore, manifest: PulledManifest, version: str,
         progress: Progress, interpreter: Distribution | None = None, *, lazy: bool = False) -> BaseImage:
    """Fetch config and layers (verified, skipped when stored) and read the base's Python, or
    only its glibc when `interpreter` is added on top (a CUDA base has no Python).

    `lazy` (the image goes to a registry): layers are fetched only while the facts are not cached;
    otherwise they stay remote, to be found, mounted or streamed by the push."""
    ref = manifest.reference
    key = facts_key(manifest.digest, version, interpreter)
    facts = store.get_meta("base-facts", key)
    for desc in (manifest.config, *(() if lazy and facts is not None else manifest.layers)):
        client.fetch_blob(ref, desc, store)
    for desc in manifest.layers:  # mount sources for pushes to the same registry
        locations.note(store, desc.digest, client.host(ref), ref.repository)
    config = json.loads(store.read(manifest.config.digest))
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    if len(diff_ids) != len(manifest.layers):
        raise OciasmError(f"base image {ref}: config lists {len(diff_ids)} layers, manifest {len(manifest.layers)}")
    layers = tuple(RemoteLayer(d, diff_id, ref, client, store) for d, diff_id in zip(manifest.layers, diff_ids))
    if facts is None:
        progress.step(f"reading {ref} for its Python {version}")
        present, dpkg_status, links = _scan(layers, version)
        target = interpreter.target(_glibc(dpkg_status)) if interpreter else \
            python_target(present, dpkg_status, config, version, str(ref), links)
        store.put_meta("base-facts", key, target.__dict__)
    else:
        target = PythonTarget(**facts)
    return BaseImage(manifest, config, layers, target)
