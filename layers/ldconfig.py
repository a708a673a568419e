"""The ldconfig layer: the step Cog runs once Python packages are installed,

    find / -type f -name "*python*.so" -printf "%h\\n" | sort -u > /etc/ld.so.conf.d/cog.conf && ldconfig

done without a container. The image's layers are merged into a scratch tree holding only what
ldconfig reads (directories, symlinks, shared-library files, /etc/ld.so.conf*), the directory
list is computed from the merged file names, and the host's `ldconfig -r` writes the cache
there; it reproduces a Debian base's own /etc/ld.so.cache byte for byte. The layer holds
cog.conf, the new cache and any soname link ldconfig made or changed.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ociasm.errors import OciasmError
from ociasm.image import Layer, StoredLayer
from ociasm.store import BlobStore

from .rootfs import TreeReader
from . import recipe
from .tarstream import Entry, write_layer

RECIPE_VERSION = 1
COG_CONF = "etc/ld.so.conf.d/cog.conf"
CACHE = "etc/ld.so.cache"
CREATED_BY = ('RUN find / -type f -name "*python*.so" -printf "%h\\n" | sort -u > '
              '/etc/ld.so.conf.d/cog.conf && ldconfig')
# Names ldconfig considers (glibc's _dl_is_dso: lib*.so*, ld-*.so*, ld.so.*).
_DSO = re.compile(r"^(?:(?:lib|ld-).*\.so|ld\.so\.)")


def _ldconfig() -> str:
    found = shutil.which("ldconfig") or next(
        (p for p in ("/sbin/ldconfig", "/usr/sbin/ldconfig") if os.access(p, os.X_OK)), None)
    if found is None:
        raise OciasmError("ldconfig not found on this host: install glibc's ldconfig (Debian: libc-bin) "
                          "to build the image's dynamic linker cache")
    return found


def recipe_key(lower: list[Layer]) -> str:
    """The layer depends on every layer below it and on the ldconfig that writes the cache."""
    version = subprocess.run([_ldconfig(), "--version"], capture_output=True, text=True).stdout
    return recipe.key(v=RECIPE_VERSION, below=[l.diff_id for l in lower],
                      ldconfig=version.splitlines()[0] if version else "")


def cached(store: BlobStore, key: str) -> StoredLayer | None:
    hit = recipe.cached_layer(store, "ldconfig", key)
    return hit[0] if hit else None


def _wanted(path: str) -> bool:
    return bool(_DSO.match(posixpath.basename(path))) or path.startswith("etc/ld.so.conf")


def python_so_dirs(regular_files: set[str]) -> list[str]:
    """What `find / -type f -name "*python*.so" -printf "%h\\n" | sort -u` prints."""
    dirs = {"/" + posixpath.dirname(p) for p in regular_files
            if fnmatch.fnmatchcase(posixpath.basename(p), "*python*.so")}
    return sorted(dirs)


def _links(root: Path) -> dict[str, str]:
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                found[os.path.relpath(full, root)] = os.readlink(full)
    return found


def build(store: BlobStore, key: str, lower: list[Layer]) -> StoredLayer:
    with tempfile.TemporaryDirectory(dir=store.tmp_dir, prefix="ldconfig-") as scratch:
        root = Path(scratch)
        tree = TreeReader(root, _wanted).read(lower)
        tree.link(_wanted)
        conf = "".join(d + "\n" for d in python_so_dirs(tree.regular)).encode()
        conf_path = root / COG_CONF
        conf_path.parent.mkdir(parents=True, exist_ok=True)
        conf_path.unlink(missing_ok=True)
        conf_path.write_bytes(conf)
        proc = subprocess.run([_ldconfig(), "-r", str(root)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise OciasmError(f"ldconfig failed on the image's libraries: {proc.stderr.strip()[-300:]}")
        entries = [Entry("/" + COG_CONF, "file", 0o644, data=conf),
                   Entry("/" + CACHE, "file", 0o644, data=(root / CACHE).read_bytes())]
        entries += [Entry("/" + path, "symlink", link=target) for path, target in sorted(_links(root).items())
                    if tree.symlinks.get(path) != target]
        layer = write_layer(store, entries)
    recipe.remember(store, "ldconfig", key, layer)
    return layer
