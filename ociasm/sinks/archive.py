"""Image archives: docker-archive, and oci-archive (a tar that is both an OCI layout and a
docker-archive, as Docker 25 writes it, so `docker load` and `skopeo ... oci-archive:` both read it).

The tar is produced as a stream of chunks with deterministic headers (mtime 0, uid/gid 0,
mode 0644/0755, no user names), so the engine sink can send it without a temp copy and
two writes of the same image give the same bytes. Blob bytes are verified as they go out.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from ..errors import OciasmError
from ..image import Descriptor, Image, canonical_json
from ..layers.tarstream import Entry, tarinfo
from ..progress import Progress
from .layout import (CONTAINERD_NAME, LAYOUT_FILE_BYTES, REF_NAME, Opener, atomic_file,
                     blob_path, image_blobs, index_bytes, index_entry, qualified_name, ref_name,
                     verified_chunks)

BLOCK = 512
_END = b"\0" * (2 * BLOCK)


@dataclass(frozen=True)
class _Entry:
    header: bytes
    size: int
    data: bytes | None = None      # small files held in memory
    blob: tuple[Descriptor, Opener] | None = None   # streamed and verified on the way out

    @property
    def length(self) -> int:
        return len(self.header) + _padded(self.size)


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def _header(name: str, size: int, *, directory: bool = False) -> bytes:
    info = tarinfo(Entry(name, "dir", 0o755) if directory else Entry(name, "file"), 0)
    info.size = size
    # PAX adds an extended header only when a field does not fit (a blob over 8 GiB).
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")


def _entries(image: Image, repo_tags: list[str], oci_layout: bool,
             skip_layers: frozenset[str]) -> list[_Entry]:
    if not repo_tags:
        raise OciasmError("an image archive needs at least one tag")
    config = image.config_descriptor()
    docker_manifest = canonical_json([{
        "Config": blob_path(config.digest),
        "RepoTags": repo_tags,
        "Layers": [blob_path(d.digest) for d in image.layer_descriptors()],
    }])
    files = [("manifest.json", docker_manifest)]
    if oci_layout:
        annotations = {REF_NAME: ref_name(repo_tags[0]), CONTAINERD_NAME: qualified_name(repo_tags[0])}
        files = [("oci-layout", LAYOUT_FILE_BYTES),
                 ("index.json", index_bytes([index_entry(image, annotations)]))] + files
    entries = [_Entry(_header(d, 0, directory=True), 0) for d in ("blobs/", "blobs/sha256/")]
    entries += [_Entry(_header(name, len(data)), len(data), data=data) for name, data in files]
    for desc, opener in image_blobs(image, with_manifest=oci_layout):
        if desc.digest not in skip_layers:
            entries.append(_Entry(_header(blob_path(desc.digest), desc.size), desc.size,
                                  blob=(desc, opener)))
    return entries


def _chunks(entries: list[_Entry]) -> Iterator[bytes]:
    for entry in entries:
        yield entry.header
        if entry.data is not None:
            yield entry.data
        elif entry.blob is not None:
            yield from verified_chunks(*entry.blob)
        if pad := _padded(entry.size) - entry.size:
            yield b"\0" * pad
    yield _END


class ArchiveStream:
    """The archive as chunks, with its exact length known before the first byte."""

    def __init__(self, image: Image, repo_tags: list[str], *, oci_layout: bool,
                 skip_layers: frozenset[str] = frozenset()) -> None:
        self._entries = _entries(image, repo_tags, oci_layout, skip_layers)
        self.size = sum(e.length for e in self._entries) + len(_END)

    def __iter__(self) -> Iterator[bytes]:
        return _chunks(self._entries)


def stream_archive(image: Image, out: BinaryIO, repo_tags: list[str], *, oci_layout: bool,
                   progress: Progress, skip_layers: frozenset[str] = frozenset()) -> None:
    """Write the archive to `out`; blobs whose digest is in `skip_layers` are left out
    (the engine never opens a layer whose chain it already has)."""
    stream = ArchiveStream(image, repo_tags, oci_layout=oci_layout, skip_layers=skip_layers)
    kind = "oci-archive" if oci_layout else "docker-archive"
    with progress.task(f"write {kind}", stream.size) as task:
        for chunk in stream:
            out.write(chunk)
            task.advance(len(chunk))


def write_archive(image: Image, path: Path, repo_tags: list[str], *, oci_layout: bool,
                  progress: Progress) -> None:
    """Write the archive to a temp file beside `path`, renamed into place when whole."""
    path = Path(path)
    if path.is_dir():
        raise OciasmError(f"{path} is a directory; give a file name for the archive")
    if not path.parent.is_dir():
        raise OciasmError(f"cannot write {path}: {path.parent} is not a directory")
    with atomic_file(path) as f:
        stream_archive(image, f, repo_tags, oci_layout=oci_layout, progress=progress)
