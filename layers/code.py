"""The code layer: the project at /src, as `COPY . /src` would put it, plus Cog's schema file.

`.dockerignore` applies with Docker's semantics and `.cog/` is always left out. Symlinks
are stored as symlinks and their targets are never read. A cheap selector (Jib's idea:
the hash of every entry's path, kind, mode, size, mtime, inode and link target) maps an
unchanged project straight to its cached layer, so a no-op rebuild costs one stat per file.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Callable

from ociasm.dockerignore import IgnoreMatcher
from ociasm.errors import OciasmError
from ociasm.image import StoredLayer
from ociasm.store import BlobStore

from . import recipe
from .tarstream import Entry, normal_mode, write_layer

RECIPE_VERSION = 2
SRC = "/src"
SCHEMA_PATH = "/src/.cog/openapi_schema.json"


def scan(project_dir: Path, ignore: IgnoreMatcher) -> tuple[list[Entry], list[tuple]]:
    """Entries for the project and the stat facts that make up the cache selector."""
    entries: list[Entry] = []
    facts: list[tuple] = []

    def walk(directory: Path, rel_dir: str) -> None:
        try:
            children = sorted(os.scandir(directory), key=lambda e: e.name)
        except PermissionError:
            raise OciasmError(f"cannot read directory {directory}: permission denied; "
                              "fix its permissions or add it to .dockerignore") from None
        for child in children:
            rel = f"{rel_dir}/{child.name}" if rel_dir else child.name
            if rel == ".cog":
                continue
            excluded = ignore.ignored(rel)
            st = child.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                # Docker still descends into an excluded directory when a `!` pattern may re-include.
                if excluded and not ignore.has_exclusions:
                    continue
                if not excluded:
                    entries.append(Entry(f"{SRC}/{rel}", "dir", 0o755))
                    facts.append((rel, "d"))
                walk(Path(child.path), rel)
            elif excluded:
                continue
            elif stat.S_ISLNK(st.st_mode):
                link = os.readlink(child.path)
                entries.append(Entry(f"{SRC}/{rel}", "symlink", link=link))
                facts.append((rel, "l", link))
            elif stat.S_ISREG(st.st_mode):
                if not os.access(child.path, os.R_OK):
                    raise OciasmError(f"cannot read {child.path}: permission denied; "
                                      "fix its permissions or add it to .dockerignore")
                mode = normal_mode(st.st_mode)
                entries.append(Entry(f"{SRC}/{rel}", "file", mode, source=Path(child.path),
                                     size=st.st_size))
                facts.append((rel, "f", mode, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev))
            # sockets, fifos and devices are skipped, as Docker's build context does

    walk(project_dir, "")
    return entries, facts


def without(entries: list[Entry], facts: list[tuple], excluded: frozenset[str]
            ) -> tuple[list[Entry], list[tuple]]:
    """A scan minus project paths that go in other layers (weights), and everything below them."""
    def kept(rel: str) -> bool:
        return not any(rel == e or rel.startswith(e + "/") for e in excluded)
    return [e for e in entries if kept(e.path[len(SRC) + 1:])], [f for f in facts if kept(f[0])]


def selector(facts: list[tuple], schema: bytes | None) -> str:
    return recipe.key(v=RECIPE_VERSION, facts=facts,
                      schema=hashlib.sha256(schema).hexdigest() if schema is not None else None)


def cached(store: BlobStore, key: str) -> StoredLayer | None:
    hit = recipe.cached_layer(store, "code", key)
    return hit[0] if hit else None


def build(store: BlobStore, key: str, entries: list[Entry], schema: bytes | None,
          advance: Callable[[int], None] | None = None) -> StoredLayer:
    extra = [Entry(SRC, "dir", 0o755)]
    if schema is not None:
        extra.append(Entry(SCHEMA_PATH, "file", 0o644, data=schema))
    layer = write_layer(store, [*entries, *extra], progress_advance=advance)
    recipe.remember(store, "code", key, layer)
    return layer
