"""OCI image layout directories (`oci:DIR`): blobs/sha256/<hex>, index.json, oci-layout.

The index names each manifest by `org.opencontainers.image.ref.name` = the tag part of the
image reference ("latest" for `hello:latest`): that is what `skopeo copy oci:DIR:latest` and
`umoci unpack --image DIR:latest` look up. So one layout holds one manifest per tag; writing
`other:latest` into a layout that holds `hello:latest` replaces it. Blobs of a replaced
manifest stay until a collector (`umoci gc`) removes them, as skopeo leaves them.

Also the verified blob stream and the names shared with the archive sink.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from ..errors import DigestMismatch, OciasmError
from ..image import OCI_INDEX, Descriptor, Image, canonical_json
from ..progress import Progress, Task
from ..reference import Reference
from ..store import CHUNK, digest_hex

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
LAYOUT_VERSION = "1.0.0"
LAYOUT_FILE_BYTES = canonical_json({"imageLayoutVersion": LAYOUT_VERSION})

Opener = Callable[[], BinaryIO]


def _umask() -> int:
    # Read once: os.umask can only be read by setting it, which would race with other threads.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkstemp/mkdtemp create 0600/0700; published files get the modes open() would have given them.
_UMASK = _umask()
FILE_MODE = 0o666 & ~_UMASK
DIR_MODE = 0o777 & ~_UMASK


@contextmanager
def atomic_file(path: Path, tmp_dir: Path | None = None) -> Iterator[BinaryIO]:
    """A temp file (in `tmp_dir`, else beside `path`) renamed to `path` when the block succeeds.

    On any error, KeyboardInterrupt included, the temp file is removed: nothing half-written
    ever appears at `path`.
    """
    fd, tmp = tempfile.mkstemp(dir=tmp_dir or path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# Names: how a layout and an archive refer to blobs and manifests.

def blob_path(digest: str) -> str:
    # Checked because it becomes a path: a digest from a pulled manifest is untrusted text.
    return f"blobs/sha256/{digest_hex(digest)}"


def ref_name(repo_tag: str) -> str:
    """The tag part of a normalized `name:tag`: the layout's name for the manifest."""
    return repo_tag.rpartition(":")[2]


def qualified_name(repo_tag: str) -> str:
    """`hello:latest` -> `docker.io/library/hello:latest`, as containerd names images."""
    return str(Reference.parse(repo_tag))


def image_blobs(image: Image, *, with_manifest: bool = True) -> list[tuple[Descriptor, Opener]]:
    """Every distinct blob of the image, each once: layers, config, then the manifest."""
    config, manifest = image.config_bytes(), image.manifest_bytes()
    blobs: dict[str, tuple[Descriptor, Opener]] = {}
    for layer, desc in zip(image.layers, image.layer_descriptors()):
        blobs.setdefault(desc.digest, (desc, layer.open))
    blobs.setdefault(image.config_descriptor().digest,
                     (image.config_descriptor(), lambda: io.BytesIO(config)))
    if with_manifest:
        blobs.setdefault(image.manifest_descriptor().digest,
                         (image.manifest_descriptor(), lambda: io.BytesIO(manifest)))
    return list(blobs.values())


def verified_chunks(desc: Descriptor, opener: Opener) -> Iterator[bytes]:
    """The blob's bytes in chunks; raises DigestMismatch as soon as they stop matching `desc`.

    A layer may be regenerated on demand, so its bytes are checked on the way out rather than
    trusted: a sink never publishes a blob under a digest it does not have. A reader that checks
    that very digest before its last bytes itself (a regenerated weights layer) is not hashed again.
    """
    h, size = hashlib.sha256(), 0
    with opener() as f:
        if getattr(f, "checks_digest", None) == desc.digest:
            while chunk := f.read(CHUNK):
                yield chunk
            return
        while chunk := f.read(CHUNK):
            size += len(chunk)
            if size > desc.size:
                raise DigestMismatch(f"blob {desc.digest} is longer than its {desc.size} bytes")
            h.update(chunk)
            yield chunk
    if size != desc.size or "sha256:" + h.hexdigest() != desc.digest:
        raise DigestMismatch(f"blob {desc.digest} produced {size} bytes with digest "
                             f"sha256:{h.hexdigest()}; expected {desc.size} bytes")


def index_entry(image: Image, annotations: dict[str, str]) -> dict:
    entry = image.manifest_descriptor().to_json()
    entry["annotations"] = annotations
    return entry


def index_bytes(manifests: list[dict], extra: dict | None = None) -> bytes:
    return canonical_json({**(extra or {}), "schemaVersion": 2, "mediaType": OCI_INDEX,
                           "manifests": manifests})


# The layout writer.

def write_layout(image: Image, directory: Path, ref_name: str, progress: Progress) -> None:
    """Write the image into the layout at `directory` under `ref_name`.

    A new layout is assembled in a temp sibling and renamed into place; an existing one gets
    the missing blobs (each written aside and renamed) and then a new index.json, atomically.
    """
    directory = Path(directory)
    if _is_layout(directory):
        _update_layout(image, directory, ref_name, progress)
    elif directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise OciasmError(f"{directory} exists and is not an OCI layout (no oci-layout file); "
                          "choose a new or empty directory")
    else:
        _new_layout(image, directory, ref_name, progress)


def _is_layout(directory: Path) -> bool:
    marker = directory / "oci-layout"
    if not marker.is_file():
        return False
    try:
        version = json.loads(marker.read_bytes()).get("imageLayoutVersion")
    except (ValueError, AttributeError):
        version = None
    if version != LAYOUT_VERSION:
        raise OciasmError(f"{marker} declares layout version {version!r}; only {LAYOUT_VERSION} "
                          "is supported: choose another directory")
    return True


def _new_layout(image: Image, directory: Path, name: str, progress: Progress) -> None:
    parent = directory.parent
    if not parent.is_dir():
        raise OciasmError(f"cannot write OCI layout {directory}: {parent} is not a directory")
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{directory.name}.", suffix=".tmp"))
    try:
        os.chmod(tmp, DIR_MODE)
        (tmp / "oci-layout").write_bytes(LAYOUT_FILE_BYTES)
        _write_blobs(image, tmp, progress, f"write oci:{directory}")
        (tmp / "index.json").write_bytes(index_bytes([index_entry(image, {REF_NAME: name})]))
        os.replace(tmp, directory)  # replaces an empty directory, fails on a non-empty one
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _update_layout(image: Image, directory: Path, name: str, progress: Progress) -> None:
    index_path = directory / "index.json"
    try:
        index = json.loads(index_path.read_bytes()) if index_path.exists() else {}
        manifests = [m for m in index.get("manifests", [])
                     if (m.get("annotations") or {}).get(REF_NAME) != name]
    except (ValueError, AttributeError):
        raise OciasmError(f"{index_path} is not a valid OCI index; fix or remove it") from None
    _write_blobs(image, directory, progress, f"write oci:{directory}")
    extra = {k: v for k, v in index.items() if k not in ("schemaVersion", "mediaType", "manifests")}
    with atomic_file(index_path) as f:
        f.write(index_bytes(manifests + [index_entry(image, {REF_NAME: name})], extra))


def _write_blobs(image: Image, root: Path, progress: Progress, task_name: str) -> None:
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    todo = [(d, o) for d, o in image_blobs(image) if not _has_blob(root, d)]
    with progress.task(task_name, sum(d.size for d, _ in todo)) as task:
        for desc, opener in todo:
            _write_blob(root, desc, opener, task)


def _has_blob(root: Path, desc: Descriptor) -> bool:
    path = root / blob_path(desc.digest)
    return path.is_file() and path.stat().st_size == desc.size


def _write_blob(root: Path, desc: Descriptor, opener: Opener, task: Task) -> None:
    # Temp files go in the layout root, as skopeo's do, so no stray name appears under blobs/.
    with atomic_file(root / blob_path(desc.digest), tmp_dir=root) as f:
        for chunk in verified_chunks(desc, opener):
            f.write(chunk)
            task.advance(len(chunk))
