"""Weights layers (`--separate-weights`): Cog's detection rules, one uncompressed tar layer per
group, kept in the cache as a recipe, never as a copy of the bytes.

Detection follows Cog's pkg/weightslegacy over the files the code layer would hold
(.dockerignore applied): a file of 10 MiB or more is weights unless it is code (.py, .ipynb),
a wheel, media, a log, or its path starts with .cog, .git or __pycache__ (or it lies under a
.git directory). Weights are grouped by the shallowest directory holding one (deeper ones fold
into it); a directory with a code file under it is dropped; large root files are groups of their
own. Order: directories, then root files, as Cog's COPY lines. Cog tests "code under the
directory" as a string prefix (so `model.py` drops `model/`); here it is a path prefix.

A layer's recipe is its members (with the stat the build took), each file's CRC32, and the
layer's digest and size, keyed by the files' stat keys (`ociasm.digestcache.FileStat`). Its bytes are
regenerated from the files whenever a sink needs them, with the same deterministic headers, and
checked on the way: each file against its stat and CRC32, the whole against the recorded sha256
before the tar's final blocks leave, so no consumer gets a complete layer that does not match.
One sha256 pass over the tar bytes is all the hashing: a second sha256 per file would halve
the ingest rate here (two threads do not scale on this machine); CRC32 (isal) is ~3% of it.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Generator, Iterator

from isal import isal_zlib

from ociasm.digestcache import FileChanged, FileStat
from ociasm.errors import OciasmError
from ociasm.image import OCI_LAYER, Descriptor
from ociasm.progress import Progress
from ociasm.store import BlobStore

from . import recipe
from .code import SRC
from .tarstream import Entry, tarinfo, with_parents, source_date_epoch

RECIPE_VERSION = 1
KIND = "weights"
THRESHOLD = 10 * 1024 * 1024
CODE_SUFFIXES = (".py", ".ipynb")
NOT_WEIGHTS = (
    ".py", ".ipynb", ".whl",
    ".jpg", ".jpeg", ".png", ".webp", ".svg", ".gif", ".avif", ".heic",
    ".mp4", ".mov", ".avi", ".wmv", ".mkv", ".webm",
    ".mp3", ".wav", ".ogg", ".flac", ".aac", ".m4a",
    ".log",
)
IGNORED_PREFIXES = (".cog", ".git", "__pycache__")
CHUNK = 1 << 20    # 1 MiB reads: measured fastest with sha256 here (larger buffers only cost RSS)
BLOCK = 512
END = bytes(2 * BLOCK)
_ZEROS = bytes(BLOCK)


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory + "/")


def find(entries: list[Entry]) -> list[str]:
    """Cog's weights groups among the code layer's entries, project-relative: dirs, then root files."""
    weights: list[str] = []
    code: list[str] = []
    for entry in entries:
        rel = entry.path[len(SRC) + 1:]
        if entry.kind == "dir" or ".git" in rel.split("/")[:-1]:
            continue
        if rel.endswith(CODE_SUFFIXES):
            code.append(rel)
        elif (entry.kind == "file" and (entry.size or 0) >= THRESHOLD
              and not rel.startswith(IGNORED_PREFIXES) and not rel.endswith(NOT_WEIGHTS)):
            weights.append(rel)
    weights.sort(key=lambda rel: (rel.count("/"), rel.split("/")))
    dirs: list[str] = []
    roots: list[str] = []
    for rel in weights:
        parent = rel.rpartition("/")[0]
        if not parent:
            roots.append(rel)
        elif not any(_under(parent, d) for d in dirs):
            dirs.append(parent)
    return [d for d in dirs if not any(_under(c, d) for c in code)] + roots


@dataclass(frozen=True)
class Member:
    entry: Entry
    stat: FileStat | None = None   # files only: the stat the build planned with


@dataclass(frozen=True)
class Group:
    """One weights layer's contents as planned: sorted members, parents included."""

    rel: str                       # "weights" or "model.bin"
    members: tuple[Member, ...]
    mtime: int

    @property
    def files(self) -> list[FileStat]:
        return [m.stat for m in self.members if m.stat is not None]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def created_by(self) -> str:
        return f"COPY --from=weights --link {SRC}/{self.rel} {SRC}/{self.rel}"  # Cog's line

    def key(self) -> str:
        members = [(m.entry.path, m.entry.kind, m.entry.mode, m.entry.link) for m in self.members]
        # recipe.key adds SOURCE_DATE_EPOCH, which `mtime` holds.
        return recipe.key(v=RECIPE_VERSION, files=[f.key for f in self.files], members=members)


def groups(entries: list[Entry]) -> list[Group]:
    """Plan the weights layers: detect the groups and stat each file once."""
    mtime = source_date_epoch()
    planned = []
    for rel in find(entries):
        top = f"{SRC}/{rel}"
        chosen = with_parents([e for e in entries if _under(e.path, top)])
        members = tuple(Member(e, FileStat.of(e.source) if e.kind == "file" and e.source else None)
                        for e in chosen)
        planned.append(Group(rel, members, mtime))
    return planned


@dataclass(frozen=True)
class WeightsLayer:
    """A weights layer as its recipe; `open()` regenerates the bytes from the files, verified."""

    descriptor: Descriptor
    group: Group
    crcs: tuple[int, ...]          # one per file member, in order
    store: BlobStore = field(repr=False, compare=False)

    @property
    def diff_id(self) -> str:
        return self.descriptor.digest  # uncompressed: the blob is the diff

    def open(self) -> BinaryIO:
        return _Reader(self)  # type: ignore[return-value]

    def stale(self, message: str) -> FileChanged:
        """The files no longer give these bytes though their stat did not change: drop the
        recipe, so that the next build hashes them again."""
        self.store.delete_meta(KIND, self.group.key())
        return FileChanged(f"{message}; build again")


def cached(store: BlobStore, group: Group) -> WeightsLayer | None:
    record = store.get_meta(KIND, group.key())
    try:
        return WeightsLayer(Descriptor(OCI_LAYER, record["digest"], int(record["size"])), group,
                            tuple(int(c) for c in record["crc32"]), store)
    except (TypeError, KeyError, ValueError):  # no record, or one from another version
        return None


def build(store: BlobStore, group: Group, progress: Progress) -> WeightsLayer:
    """Read each file once, hashing the layer's tar bytes, and record the recipe."""
    digest = hashlib.sha256()
    size = 0
    crcs = [0] * len(group.files)
    with progress.task(f"hash weights {group.rel}", group.size) as task:
        for chunk in _body(group, crcs.__setitem__, task.advance):
            digest.update(chunk)
            size += len(chunk)
    digest.update(END)
    layer = WeightsLayer(Descriptor(OCI_LAYER, "sha256:" + digest.hexdigest(), size + len(END)),
                         group, tuple(crcs), store)
    store.put_meta(KIND, group.key(), {"digest": layer.descriptor.digest, "size": layer.descriptor.size,
                                       "crc32": crcs})
    return layer


def _body(group: Group, on_file: Callable[[int, int], None],
          advance: Callable[[int], None] | None = None) -> Iterator[bytes | memoryview]:
    """The layer's bytes up to the end-of-archive blocks; `on_file(i, crc)` after file i's data.

    File data comes as views of one reused buffer: consume each before asking for the next.
    """
    buf = memoryview(bytearray(CHUNK))
    index = 0
    for member in group.members:
        info = tarinfo(member.entry, group.mtime)
        if member.stat is not None:
            info.size = member.stat.size
        yield info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
        if member.stat is not None:
            crc = yield from _file_data(member.stat, buf, advance)
            on_file(index, crc)
            index += 1
            if pad := -member.stat.size % BLOCK:
                yield _ZEROS[:pad]


def _file_data(stat: FileStat, buf: memoryview,
               advance: Callable[[int], None] | None) -> Generator[memoryview, None, int]:
    """Exactly the planned bytes of one file; returns their CRC32."""
    try:
        f = open(stat.path, "rb", buffering=0)
    except FileNotFoundError:
        raise FileChanged(f"{stat.path} disappeared while the image was being built; build again") from None
    except PermissionError:
        raise OciasmError(f"cannot read {stat.path}: permission denied; "
                          "fix its permissions or add it to .dockerignore") from None
    crc, left = 0, stat.size
    with f:
        stat.check(os.fstat(f.fileno()), "after the build planned it")
        while left and (n := f.readinto(buf[:min(left, CHUNK)])):
            chunk = buf[:n]
            crc = isal_zlib.crc32(chunk, crc)
            left -= n
            if advance:
                advance(n)
            yield chunk
        if left or f.read(1):
            raise FileChanged(f"{stat.path} changed while it was being read; build again")
        stat.check(os.fstat(f.fileno()), "while it was being read")
    return crc


class _Reader(io.RawIOBase):
    """A weights layer's bytes, regenerated and verified as they go."""

    def __init__(self, layer: WeightsLayer) -> None:
        self.checks_digest = layer.descriptor.digest  # sinks need not hash these bytes again
        self._layer = layer
        self._body = _body(layer.group, self._check_file)
        self._hash = hashlib.sha256()
        self._size = 0
        self._pending = memoryview(b"")
        self._ended = False

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._body.close()  # a reader dropped early releases its open file now
        super().close()

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            return self.readall()
        if not self._pending:
            self._pending = memoryview(self._next())
        out, self._pending = self._pending[:n], self._pending[n:]
        return bytes(out)

    def _next(self) -> bytes | memoryview:
        while (chunk := next(self._body, None)) is not None:
            if chunk:
                self._count(chunk)
                return chunk
        if self._ended:
            return b""
        self._ended = True
        self._count(END)
        desc = self._layer.descriptor
        if (self._size, "sha256:" + self._hash.hexdigest()) != (desc.size, desc.digest):
            raise self._layer.stale(f"weights under {self._layer.group.rel} changed after they were "
                                    f"hashed (layer {desc.digest[:19]} no longer matches)")
        return END  # only once the whole layer is known to match

    def _count(self, chunk: bytes | memoryview) -> None:
        self._hash.update(chunk)
        self._size += len(chunk)

    def _check_file(self, index: int, crc: int) -> None:
        if crc != self._layer.crcs[index]:
            raise self._layer.stale(f"{self._layer.group.files[index].path} changed after it was hashed")
