"""The image model: immutable views of layers, config and manifest.

Every output (engine, OCI layout, archives, registry) is a sink that reads an `Image`;
none of them changes it. Layers only promise a descriptor, a diff_id and a way to open
their blob bytes, so a layer may live in the blob store or be regenerated on demand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import BinaryIO, Protocol

from .store import BlobStore, sha256_digest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"

# Docker's layer media types carry the same bytes as OCI's; an OCI manifest names them the OCI way.
_TO_OCI_LAYER = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip": OCI_LAYER_GZIP,
    "application/vnd.docker.image.rootfs.diff.tar": OCI_LAYER,
    "application/vnd.docker.image.rootfs.diff.tar.zstd": OCI_LAYER_ZSTD,
}


def canonical_json(obj: object) -> bytes:
    """Stable bytes for a JSON document: same object, same digest."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict:
        out: dict = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    @classmethod
    def from_json(cls, obj: dict) -> "Descriptor":
        return cls(obj["mediaType"], obj["digest"], int(obj["size"]),
                   tuple(sorted((obj.get("annotations") or {}).items())))


class Layer(Protocol):
    """A filesystem change set: its blob descriptor, its uncompressed digest, its bytes."""

    @property
    def descriptor(self) -> Descriptor: ...

    @property
    def diff_id(self) -> str: ...

    def open(self) -> BinaryIO: ...


@dataclass(frozen=True)
class StoredLayer:
    """A layer whose blob is already in the blob store."""

    descriptor: Descriptor
    diff_id: str
    store: BlobStore = field(repr=False, compare=False)

    def open(self) -> BinaryIO:
        return self.store.open(self.descriptor.digest)

    def to_json(self) -> dict:
        return {"descriptor": self.descriptor.to_json(), "diff_id": self.diff_id}

    @classmethod
    def from_json(cls, obj: dict, store: BlobStore) -> "StoredLayer":
        return cls(Descriptor.from_json(obj["descriptor"]), obj["diff_id"], store)


@dataclass(frozen=True)
class HistoryEntry:
    created_by: str
    comment: str = ""
    empty_layer: bool = False


@dataclass(frozen=True)
class Image:
    """An OCI image: the config JSON (as an object) and the layers in order.

    `config` must not be mutated after construction; use `with_*` helpers to derive images.
    """

    config: dict
    layers: tuple[Layer, ...]

    def config_bytes(self) -> bytes:
        return canonical_json(self.config)

    def config_descriptor(self) -> Descriptor:
        data = self.config_bytes()
        return Descriptor(OCI_CONFIG, sha256_digest(data), len(data))

    def layer_descriptors(self) -> list[Descriptor]:
        return [replace(l.descriptor, media_type=_TO_OCI_LAYER.get(l.descriptor.media_type,
                                                                     l.descriptor.media_type))
                for l in self.layers]

    def manifest(self) -> dict:
        return {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": self.config_descriptor().to_json(),
            "layers": [d.to_json() for d in self.layer_descriptors()],
        }

    def manifest_bytes(self) -> bytes:
        return canonical_json(self.manifest())

    def manifest_descriptor(self) -> Descriptor:
        data = self.manifest_bytes()
        return Descriptor(OCI_MANIFEST, sha256_digest(data), len(data))

    @property
    def digest(self) -> str:
        return self.manifest_descriptor().digest

    def diff_ids(self) -> list[str]:
        return [l.diff_id for l in self.layers]
