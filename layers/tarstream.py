"""Deterministic tar layers written straight into the blob store in one pass.

One copy of the bytes does everything: the tar stream is hashed (diff_id), compressed,
and the compressed stream is hashed (digest) and sized while it lands in the store.
Entries are sorted, parents are always present, owners are root, times are fixed and
the GNU format is used so that no PAX header can leak a real mtime or a user name.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from isal import isal_zlib

from ociasm.errors import OciasmError
from ociasm.image import OCI_LAYER_GZIP, Descriptor, StoredLayer
from ociasm.store import BlobStore, BlobWriter

GZIP_LEVEL = 1  # isal level 1: ~10x zlib's speed; code and wheels compress well enough
COPY_CHUNK = 1 << 20


def source_date_epoch() -> int:
    """The timestamp every entry and the image config carry (SOURCE_DATE_EPOCH, else 0)."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "0")
    try:
        return int(value)
    except ValueError:
        raise OciasmError(f"SOURCE_DATE_EPOCH={value!r} is not a whole number of seconds") from None


def normal_mode(st_mode: int) -> int:
    """Docker-like normalisation: executables 0755, everything else 0644."""
    return 0o755 if st_mode & 0o111 else 0o644


@dataclass(frozen=True)
class Entry:
    """One member of a layer. Exactly one of `source`, `data`, `link` is used for a file kind."""

    path: str                      # absolute path inside the image, e.g. "/src/predict.py"
    kind: str                      # "file", "dir" or "symlink"
    mode: int = 0o644
    source: Path | None = None     # file contents read from here at write time
    data: bytes | None = None      # or given inline
    link: str = ""                 # symlink target, stored as written
    size: int | None = None        # expected size of `source` (detects a file changing under us)


class GzipHashingSink:
    """File-like sink for tarfile: hashes tar bytes, gzips them, hands the result to the store."""

    def __init__(self, blob: BlobWriter) -> None:
        self.blob = blob
        self.tar_hash = hashlib.sha256()
        self._gzip = isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, 31)  # 31: gzip, mtime 0

    def write(self, data: bytes) -> int:
        self.tar_hash.update(data)
        if out := self._gzip.compress(data):
            self.blob.write(out)
        return len(data)

    def close(self) -> None:
        self.blob.write(self._gzip.flush())


# A parent listed in a layer replaces the lower layer's directory metadata, so parents carry the
# modes every Debian/Ubuntu/python base gives these directories; all others are 0755.
_FHS_DIR_MODES = {"/root": 0o700, "/tmp": 0o1777, "/var/tmp": 0o1777}


def with_parents(entries: list[Entry]) -> list[Entry]:
    """Add a directory entry for every parent that is not listed, then sort by path."""
    by_path = {e.path: e for e in entries}
    for entry in entries:
        for parent in map(str, PurePosixPath(entry.path).parents):
            if parent != "/" and parent not in by_path:
                by_path[parent] = Entry(parent, "dir", _FHS_DIR_MODES.get(parent, 0o755))
    return [by_path[p] for p in sorted(by_path)]


def tarinfo(entry: Entry, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.path.lstrip("/"))
    info.mtime, info.mode = mtime, entry.mode
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
    elif entry.kind == "symlink":
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, entry.link, 0o777
    return info


def _copy_file(entry: Entry, tar: tarfile.TarFile, info: tarfile.TarInfo, progress_advance) -> None:
    assert entry.source is not None
    try:
        with open(entry.source, "rb", buffering=0) as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise OciasmError(f"{entry.source}: not a regular file; remove it or add it to .dockerignore")
            info.size = st.st_size
            if entry.size is not None and entry.size != st.st_size:
                raise OciasmError(f"{entry.source} changed while the image was being built; build again")
            tar.addfile(info, _ExactReader(f, st.st_size, entry.source, progress_advance))
    except PermissionError:
        raise OciasmError(f"cannot read {entry.source}: permission denied; "
                          "fix its permissions or add it to .dockerignore") from None
    except FileNotFoundError:
        raise OciasmError(f"{entry.source} disappeared while the image was being built; build again") from None


class _ExactReader:
    """Reads exactly `size` bytes; a file that shrinks or grows mid-read is an error, not a bad layer."""

    def __init__(self, f: BinaryIO, size: int, path: Path, advance) -> None:
        self.f, self.left, self.path, self.advance = f, size, path, advance

    def read(self, n: int = -1) -> bytes:
        want = self.left if n < 0 else min(n, self.left)
        data = self.f.read(want)
        if len(data) != want or (self.left == len(data) and self.f.read(1)):
            raise OciasmError(f"{self.path} changed while the image was being built; build again")
        self.left -= len(data)
        if self.advance:
            self.advance(len(data))
        return data


def write_layer(store: BlobStore, entries: list[Entry], *, mtime: int | None = None,
                progress_advance=None) -> StoredLayer:
    """Write `entries` as a gzip tar layer into `store` and return it."""
    mtime = source_date_epoch() if mtime is None else mtime
    with store.writer() as blob:
        sink = GzipHashingSink(blob)
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.GNU_FORMAT,  # type: ignore[arg-type]
                          bufsize=COPY_CHUNK) as tar:
            for entry in with_parents(entries):
                info = tarinfo(entry, mtime)
                if entry.kind != "file":
                    tar.addfile(info)
                elif entry.data is not None:
                    info.size = len(entry.data)
                    tar.addfile(info, io.BytesIO(entry.data))
                else:
                    _copy_file(entry, tar, info, progress_advance)
        sink.close()
    descriptor = Descriptor(OCI_LAYER_GZIP, blob.digest, blob.size)
    return StoredLayer(descriptor, "sha256:" + sink.tar_hash.hexdigest(), store)

