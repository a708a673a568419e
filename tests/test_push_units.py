"""The push's small parts, without a registry: scopes, upload offsets, layout sources, blob
locations, settings. The protocol itself is tested against the real registry (test_push.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from ociasm import locations
from ociasm.errors import OciasmError
from ociasm.image import OCI_LAYER, Descriptor, Image, StoredLayer
from ociasm.progress import QuietProgress
from ociasm.push import CHUNK_SIZE, CHUNK_SIZE_ENV, _reported_offset, configured_chunk_size
from ociasm.pushable import from_image, from_layout, parse_layout_spec
from ociasm.registry import _merge_scopes
from ociasm.sinks.layout import write_layout
from ociasm.store import BlobStore, sha256_digest


def test_token_scopes_merge_per_repository():
    assert _merge_scopes(["repository:a:push,pull", "repository:a:pull,push", "repository:b:pull"]) == \
        ["repository:a:pull,push", "repository:b:pull"]
    assert _merge_scopes(["repository:a:pull", "repository:a:pull,push"]) == ["repository:a:pull,push"]
    assert _merge_scopes(["registry:catalog:*", "odd"]) == ["registry:catalog:*", "odd"]


@pytest.mark.parametrize("header,offset", [("0-0", 0), ("0-1048575", 1 << 20), ("bytes=0-9", 10), ("", None),
                                           ("garbage", None)])
def test_upload_offset_from_range_header(header, offset):
    resp = requests.Response()
    if header:
        resp.headers["Range"] = header
    assert _reported_offset(resp) == offset


def test_chunk_size_setting(monkeypatch):
    assert configured_chunk_size() == CHUNK_SIZE
    monkeypatch.setenv(CHUNK_SIZE_ENV, str(16 << 20))
    assert configured_chunk_size() == 16 << 20
    for bad in ("64M", "1000"):
        monkeypatch.setenv(CHUNK_SIZE_ENV, bad)
        with pytest.raises(OciasmError, match=rf"^{CHUNK_SIZE_ENV}='{bad}': expected a chunk size in bytes"):
            configured_chunk_size()


def test_blob_locations_newest_first_without_repeats(tmp_path):
    store, digest = BlobStore(tmp_path), sha256_digest(b"x")
    assert locations.seen(store, digest) == []
    for place in ("a", "b", "a"):
        locations.note(store, digest, "reg:5000", place)
    assert locations.seen(store, digest) == [("reg:5000", "a"), ("reg:5000", "b")]
    for i in range(20):
        locations.note(store, digest, "reg:5000", f"r{i}")
    assert len(locations.seen(store, digest)) == locations.KEEP


def _image(store: BlobStore, payload: bytes) -> Image:
    digest = store.put_bytes(payload)
    layer = StoredLayer(Descriptor(OCI_LAYER, digest, len(payload)), digest, store)
    return Image({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [digest]}},
                 (layer, layer))


def test_layout_source_pushes_the_layouts_exact_manifest(tmp_path):
    store = BlobStore(tmp_path / "store")
    one, two = _image(store, b"a" * 1024), _image(store, b"b" * 1024)
    layout = tmp_path / "layout"
    write_layout(one, layout, "one", QuietProgress())
    write_layout(two, layout, "two", QuietProgress())

    item = from_layout(*parse_layout_spec(f"oci:{layout}:two"))
    assert item.digest == two.digest and item.manifest == two.manifest_bytes()
    assert [b.descriptor.digest for b in item.blobs] == [b.descriptor.digest for b in from_image(two).blobs]
    assert len(item.blobs) == 2  # the repeated layer once, and the config
    with item.blobs[0].open() as f:
        assert f.read() == b"b" * 1024

    with pytest.raises(OciasmError, match=r"has 2 manifests \(names: one, two\): pick one with oci:.*:NAME"):
        from_layout(*parse_layout_spec(f"oci:{layout}"))
    with pytest.raises(OciasmError, match=r"has no manifest named 'three'"):
        from_layout(layout, "three")
    (layout / "blobs" / "sha256" / one.config_descriptor().digest[7:]).unlink()
    with pytest.raises(OciasmError, match=rf"lacks blob {one.config_descriptor().digest} .*incomplete"):
        from_layout(layout, "one")


def test_layout_spec():
    assert parse_layout_spec("oci:/no/such/dir:v1") == (Path("/no/such/dir"), "v1")
    assert parse_layout_spec("oci:relative") == (Path("relative"), None)
    with pytest.raises(OciasmError, match=r"expected oci:DIR or oci:DIR:NAME"):
        parse_layout_spec("docker-archive:x.tar")


def test_index_manifests_are_refused(tmp_path):
    layout = tmp_path / "layout"
    (layout / "blobs" / "sha256").mkdir(parents=True)
    index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
                                                "digest": sha256_digest(b"{}"), "size": 2}]}
    (layout / "index.json").write_text(json.dumps(index))
    with pytest.raises(OciasmError, match=r"only image manifests can be pushed \(not indexes\)"):
        from_layout(layout, None)
