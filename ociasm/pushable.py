"""What a push sends: the blobs (layers and config) and the manifest's exact bytes.

Made from a built `Image`, or read from an OCI image layout (`--from oci:DIR[:NAME]`), whose
manifest and config are pushed byte for byte, so the pushed digest is the layout's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

from .errors import OciasmError
from .image import DOCKER_MANIFEST, OCI_MANIFEST, Descriptor, Image
from .sinks.layout import REF_NAME, blob_path, image_blobs
from .store import sha256_digest


@dataclass(frozen=True)
class Blob:
    descriptor: Descriptor
    open: Callable[[], BinaryIO]


@dataclass(frozen=True)
class Pushable:
    blobs: tuple[Blob, ...]  # each digest once; the config among them
    manifest: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)


def from_image(image: Image) -> Pushable:
    blobs = tuple(Blob(desc, opener) for desc, opener in image_blobs(image, with_manifest=False))
    return Pushable(blobs, image.manifest_bytes(), OCI_MANIFEST)


def parse_layout_spec(spec: str) -> tuple[Path, str | None]:
    """`oci:DIR` or `oci:DIR:NAME` (NAME: the manifest's ref.name, as skopeo spells it)."""
    kind, sep, rest = spec.partition(":")
    if kind != "oci" or not sep or not rest:
        raise OciasmError(f"--from {spec!r}: expected oci:DIR or oci:DIR:NAME")
    if Path(rest).is_dir() or ":" not in rest:
        return Path(rest), None
    path, _, name = rest.rpartition(":")
    return Path(path), name or None


def from_layout(directory: Path, name: str | None) -> Pushable:
    where = f"OCI layout {directory}"
    try:
        index = json.loads((directory / "index.json").read_bytes())
        entries = [e for e in index.get("manifests") or []
                   if name is None or (e.get("annotations") or {}).get(REF_NAME) == name]
    except FileNotFoundError:
        raise OciasmError(f"{where} has no index.json: give the directory of an OCI image layout") from None
    except (ValueError, AttributeError):
        raise OciasmError(f"{directory / 'index.json'} is not a valid OCI index: fix or rewrite the layout") from None
    if len(entries) != 1:
        names = sorted({(e.get("annotations") or {}).get(REF_NAME, "?") for e in index.get("manifests") or []})
        which = f"no manifest named {name!r}" if name else f"{len(entries)} manifests"
        raise OciasmError(f"{where} has {which} (names: {', '.join(names) or 'none'}): "
                          f"pick one with oci:{directory}:NAME")
    try:
        desc = Descriptor.from_json(entries[0])
    except (KeyError, TypeError, ValueError):
        raise OciasmError(f"{directory / 'index.json'} has a malformed manifest descriptor") from None
    if desc.media_type not in (OCI_MANIFEST, DOCKER_MANIFEST):
        raise OciasmError(f"{where}: manifest {desc.digest} is {desc.media_type}; only image manifests "
                          "can be pushed (not indexes)")
    manifest = _read(directory, desc, where)
    try:
        doc = json.loads(manifest)
        descs = [*(Descriptor.from_json(l) for l in doc.get("layers") or ()), Descriptor.from_json(doc["config"])]
    except (ValueError, KeyError, TypeError):
        raise OciasmError(f"{where}: manifest {desc.digest} is malformed") from None
    blobs: dict[str, Blob] = {}
    for d in descs:
        path = directory / blob_path(d.digest)
        if not path.is_file() or path.stat().st_size != d.size:
            raise OciasmError(f"{where} lacks blob {d.digest} ({d.size} bytes at {path}): the layout is incomplete")
        blobs.setdefault(d.digest, Blob(d, lambda p=path: open(p, "rb")))
    return Pushable(tuple(blobs.values()), manifest, desc.media_type)


def _read(directory: Path, desc: Descriptor, where: str) -> bytes:
    try:
        data = (directory / blob_path(desc.digest)).read_bytes()
    except FileNotFoundError:
        raise OciasmError(f"{where} lacks its manifest blob {desc.digest}") from None
    if sha256_digest(data) != desc.digest:
        raise OciasmError(f"{where}: manifest blob {desc.digest} does not match its digest")
    return data
