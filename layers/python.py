"""The interpreter layer: Python for a base that has none (nvidia/cuda), added without a container.

Cog runs `uv python install X.Y` inside the image, which unpacks a python-build-standalone
`install_only` archive under /root/.local/share/uv/python/cpython-<version>-linux-x86_64-gnu,
then links it as /usr/bin/python3 and /usr/local/bin/python. We fetch the same archive,
check its sha256, and write its files at the same place as one layer, with the same links.

Which archive: the build uv 0.9.26 (the uv Cog's Dockerfiles copy in) installs for the
minor version, pinned below with its checksum. `UV_PYTHON_INSTALL_MIRROR` replaces the
release prefix as it does for uv; `OCIASM_PYTHON_ARCHIVE=URL#sha256=HEX` names another
archive outright (its file name must carry the version: cpython-3.11.14+...).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import requests

from ociasm.errors import OciasmError
from ociasm.image import StoredLayer
from ociasm.progress import Progress
from ociasm.store import CHUNK, BlobStore

from .deps import PythonTarget
from . import recipe
from .tarstream import Entry, normal_mode, write_layer

RECIPE_VERSION = 1
RELEASES = "https://github.com/astral-sh/python-build-standalone/releases/download"
MIRROR_ENV = "UV_PYTHON_INSTALL_MIRROR"
ARCHIVE_ENV = "OCIASM_PYTHON_ARCHIVE"
INSTALL_ROOT = "/root/.local/share/uv/python"
TIMEOUT = (10.0, 60.0)
# uv 0.9.26 crates/uv-python/download-metadata.json (commit ee4f0036283a350681a618176484df6bcde27507):
# the newest x86_64 linux-gnu build of each minor version: (version, release, sha256).
PINNED = {
    "3.10": ("3.10.19", "20260114", "75f8574fa46f306c86c178a0d461cc796b0021c110b5f3040c872395722d287e"),
    "3.11": ("3.11.14", "20260114", "7fb42e7ac220ec607c5eddbf0361e523279f8cee17fd994bf5fe521676a63950"),
    "3.12": ("3.12.12", "20260114", "6249bea270cdd4218a258edb3a1c5602dd9dc0f785b9d29963676276a3838e60"),
    "3.13": ("3.13.11", "20260114", "0fe209ef6f7b6afd3f041b8417061ce72ada69c2c53d84677ce48bdce3ee7f0b"),
    "3.14": ("3.14.2", "20260114", "b54c8ad23ded6b9a2e9da754bf3a5e622763e3ac224db555a6a8888f40897036"),
}
_VERSION_IN_NAME = re.compile(r"cpython-(\d+\.\d+\.\d+)[+-]")


@dataclass(frozen=True)
class Distribution:
    """One python-build-standalone install_only archive and where it goes in the image."""

    version: str   # "3.11.14"
    url: str
    sha256: str

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])

    @property
    def prefix(self) -> str:
        return f"{INSTALL_ROOT}/cpython-{self.version}-linux-x86_64-gnu"

    @property
    def interpreter(self) -> str:
        return f"{self.prefix}/bin/python{self.minor}"

    def target(self, glibc: str) -> PythonTarget:
        """What the deps layer installs for: this interpreter, on a base with this glibc."""
        return PythonTarget(self.minor, self.interpreter, f"{self.prefix}/lib/python{self.minor}/site-packages",
                            f"{self.prefix}/bin", glibc, True)


def distribution(minor: str) -> Distribution:
    """The archive for `minor` ("3.11"), from $OCIASM_PYTHON_ARCHIVE or the pinned builds."""
    if given := os.environ.get(ARCHIVE_ENV):
        url, _, fragment = given.partition("#")
        sha256 = fragment.removeprefix("sha256=")
        name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        m = _VERSION_IN_NAME.search(name)
        if not fragment.startswith("sha256=") or not re.fullmatch(r"[0-9a-f]{64}", sha256) or not m:
            raise OciasmError(f"{ARCHIVE_ENV}={given!r}: expected URL#sha256=HEX, the file named "
                              "cpython-X.Y.Z+... as python-build-standalone names its archives")
        dist = Distribution(m.group(1), url, sha256)
        if dist.minor != minor:
            raise OciasmError(f"{ARCHIVE_ENV}: {name} is Python {dist.minor}, but build.python_version is {minor}")
        return dist
    if minor not in PINNED:
        raise OciasmError(f"build.python_version {minor}: no python-build-standalone build is pinned for it "
                          f"(known: {', '.join(PINNED)}); set {ARCHIVE_ENV}=URL#sha256=HEX")
    full, release, sha256 = PINNED[minor]
    prefix = (os.environ.get(MIRROR_ENV) or RELEASES).rstrip("/")
    name = f"cpython-{full}%2B{release}-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz"
    return Distribution(full, f"{prefix}/{release}/{name}", sha256)


def recipe_key(dist: Distribution) -> str:
    """The archive's bytes (not where they came from) and where they go decide the layer."""
    return recipe.key(v=RECIPE_VERSION, sha256=dist.sha256, prefix=dist.prefix)


def cached(store: BlobStore, key: str) -> StoredLayer | None:
    hit = recipe.cached_layer(store, "python", key)
    return hit[0] if hit else None


def _download(dist: Distribution, dest: Path, progress: Progress) -> None:
    """Stream the archive to `dest`, refusing it unless it hashes to the expected sha256."""
    h = hashlib.sha256()
    try:
        with requests.get(dist.url, stream=True, timeout=TIMEOUT) as resp:
            if resp.status_code != 200:
                raise OciasmError(f"Python archive {dist.url}: HTTP {resp.status_code}; "
                                  f"set {MIRROR_ENV} or {ARCHIVE_ENV} to a reachable copy")
            total = int(resp.headers.get("Content-Length") or 0) or None
            with dest.open("wb") as out, progress.task(f"python {dist.version}", total=total) as task:
                for chunk in resp.iter_content(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    task.advance(len(chunk))
    except requests.RequestException as e:
        raise OciasmError(f"cannot download Python archive {dist.url}: {type(e).__name__}; "
                          f"set {MIRROR_ENV} or {ARCHIVE_ENV} to a reachable copy") from None
    if h.hexdigest() != dist.sha256:
        raise OciasmError(f"Python archive {dist.url} has sha256 {h.hexdigest()}, expected {dist.sha256}: not used")


def _safe(member: tarfile.TarInfo) -> bool:
    """Inside `python/`, and a regular file, directory or link that stays inside it (PEP 706's
    "data" filter, written out: Python before 3.11.4, Debian 12's included, lacks it)."""
    name = posixpath.normpath(member.name)
    if name.startswith(("/", "..")) or name.split("/", 1)[0] != "python":
        return False
    if member.issym() or member.islnk():
        base = posixpath.dirname(name) if member.issym() else ""
        target = posixpath.normpath(posixpath.join(base, member.linkname))
        return not member.linkname.startswith("/") and target.split("/", 1)[0] == "python"
    return member.isreg() or member.isdir()


def _unpack(archive: Path, dest: Path, dist: Distribution) -> Path:
    """Extract after checking every member; returns the `python/` root."""
    try:
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.name not in (".", "./")]
            if not members or any(posixpath.normpath(m.name).split("/", 1)[0] != "python" for m in members):
                raise OciasmError(f"Python archive {dist.url}: not an install_only archive (no top-level python/)")
            if unsafe := next((m.name for m in members if not _safe(m)), None):
                raise OciasmError(f"Python archive {dist.url}: refusing member {unsafe!r} (outside python/ or "
                                  "not a file, directory or link)")
            for m in members:
                m.mode &= 0o755  # no setuid, no group/other write
            # Checked above; the "data" filter too where this Python has it (and warns without it).
            tar.extractall(dest, members=members, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    except (tarfile.TarError, OSError) as e:
        raise OciasmError(f"Python archive {dist.url}: cannot unpack: {e}") from None
    root = dest / "python"
    if not (root / "bin" / f"python{dist.minor}").exists():
        raise OciasmError(f"Python archive {dist.url} has no bin/python{dist.minor}")
    return root


def _entries(root: Path, dist: Distribution) -> list[Entry]:
    entries = [Entry("/root", "dir", 0o700),  # keep the base's home mode; others get 0755
               Entry("/usr/bin/python3", "symlink", link=dist.interpreter),
               Entry("/usr/local/bin/python", "symlink", link=dist.interpreter)]
    for path in sorted(root.rglob("*")):
        dest = f"{dist.prefix}/{path.relative_to(root).as_posix()}"
        if path.is_symlink():
            entries.append(Entry(dest, "symlink", link=os.readlink(path)))
        elif path.is_dir():
            entries.append(Entry(dest, "dir", 0o755))
        else:
            st = path.stat()
            entries.append(Entry(dest, "file", normal_mode(st.st_mode), source=path, size=st.st_size))
    return entries


def build(store: BlobStore, key: str, dist: Distribution, progress: Progress) -> StoredLayer:
    with tempfile.TemporaryDirectory(dir=store.tmp_dir, prefix="python-") as scratch:
        archive = Path(scratch) / "python.tar.gz"
        _download(dist, archive, progress)
        root = _unpack(archive, Path(scratch) / "tree", dist)
        layer = write_layer(store, _entries(root, dist))
    recipe.remember(store, "python", key, layer, url=dist.url)
    return layer


def image_env(base_env: list[str]) -> list[str]:
    """Cog's `ENV PATH="/usr/local/bin:$PATH"` after installing Python (the entry keeps its place)."""
    if not any(e.startswith("PATH=") for e in base_env):
        return [*base_env, "PATH=/usr/local/bin"]
    return [f"PATH=/usr/local/bin:{e[5:]}" if e.startswith("PATH=") else e for e in base_env]
