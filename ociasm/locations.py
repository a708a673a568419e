"""Where blobs were last seen in registries: the candidates for a cross-repository mount.

One small record per blob digest (store meta `blob-locations`): the `host/repository` places
it was pulled from or pushed to, newest first. Only a hint: a mount that fails falls back to
an upload, so a stale entry costs one request.
"""

from __future__ import annotations

from .store import BlobStore, digest_hex

KIND = "blob-locations"
KEEP = 8


def seen(store: BlobStore, digest: str) -> list[tuple[str, str]]:
    """(host, repository) pairs that held `digest`, newest first."""
    record = store.get_meta(KIND, digest_hex(digest)) or {}
    return [tuple(p.split("/", 1)) for p in record.get("places", []) if "/" in p]  # type: ignore[misc]


def note(store: BlobStore, digest: str, host: str, repository: str) -> None:
    place = f"{host}/{repository}"
    places = [p for p in (store.get_meta(KIND, digest_hex(digest)) or {}).get("places", [])]
    if places[:1] == [place]:
        return
    store.put_meta(KIND, digest_hex(digest), {"places": [place, *(p for p in places if p != place)][:KEEP]})
