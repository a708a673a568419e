"""What every layer recipe shares: a key hashed from its inputs, and the record of what it made.

A recipe's key covers every input that decides the layer's bytes (plus SOURCE_DATE_EPOCH,
which every entry carries); its record in the store's meta maps that key to the layer it
made and any facts learnt on the way (pip freeze, apt's versions). A record whose blob is
gone counts as a miss, so a pruned store rebuilds instead of failing.
"""

from __future__ import annotations

import hashlib
import json

from ociasm.image import StoredLayer
from ociasm.store import BlobStore

from .tarstream import source_date_epoch


def key(**inputs: object) -> str:
    """Hash of a recipe's inputs; callers pass a version field to invalidate old records."""
    return hashlib.sha256(json.dumps({**inputs, "mtime": source_date_epoch()}, sort_keys=True).encode()).hexdigest()


def cached_layer(store: BlobStore, kind: str, key: str) -> tuple[StoredLayer | None, dict] | None:
    """(layer, record) for a hit, None for a miss. A record may hold no layer (nothing to add)."""
    record = store.get_meta(kind, key)
    if record is None:
        return None
    if record.get("layer") is None:
        return None, record
    layer = StoredLayer.from_json(record["layer"], store)
    return (layer, record) if store.has(layer.descriptor.digest) else None


def remember(store: BlobStore, kind: str, key: str, layer: StoredLayer | None, **facts: object) -> None:
    store.put_meta(kind, key, {"layer": layer.to_json() if layer else None, **facts})
