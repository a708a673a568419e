"""Layer recipes: deterministic tars with single-pass digests; the code layer's rules."""

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from ociasm.dockerignore import IgnoreMatcher
from ociasm.errors import OciasmError
from ociasm.layers import code
from ociasm.layers.tarstream import Entry, write_layer
from ociasm.store import BlobStore


def _members(store: BlobStore, digest: str) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(store.read(digest)), mode="r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}


def _project(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "predict.py").write_text("print('hi')\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o775)
    (root / "sub" / "data.txt").write_text("data\n")
    (root / "secret.txt").write_text("TOPSECRET\n")
    (root / ".cog").mkdir()
    (root / ".cog" / "stale.json").write_text("{}")
    (root / "outside").symlink_to("/etc/shadow")
    (root / ".dockerignore").write_text("secret.txt\n")
    return root


def test_digests_match_the_bytes(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    layer = write_layer(store, [Entry("/a/b/c.txt", "file", data=b"hello")])
    blob = store.read(layer.descriptor.digest)
    assert layer.descriptor.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert layer.descriptor.size == len(blob)
    assert layer.diff_id == "sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest()


def test_entries_sorted_with_parents_and_fixed_metadata(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    store = BlobStore(tmp_path / "store")
    layer = write_layer(store, [Entry("/z/file", "file", data=b"1"), Entry("/a/x/y", "file", data=b"2")])
    members = _members(store, layer.descriptor.digest)
    assert list(members) == ["a", "a/x", "a/x/y", "z", "z/file"]
    for m in members.values():
        assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", 1700000000)
        assert not m.pax_headers


def test_same_entries_same_digest_and_epoch_changes_it(tmp_path: Path, monkeypatch) -> None:
    store = BlobStore(tmp_path / "store")
    entries = [Entry("/f", "file", data=b"x" * 100_000)]
    first, second = write_layer(store, entries), write_layer(store, entries)
    assert first.descriptor == second.descriptor
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1")
    assert write_layer(store, entries).descriptor.digest != first.descriptor.digest


def test_code_layer_follows_cog_rules(tmp_path: Path) -> None:
    project = _project(tmp_path / "proj")
    store = BlobStore(tmp_path / "store")
    entries, facts = code.scan(project, IgnoreMatcher.for_project(project))
    layer = code.build(store, code.selector(facts, b"{}"), entries, b"{}")
    members = _members(store, layer.descriptor.digest)
    assert "src/secret.txt" not in members                      # .dockerignore'd
    assert "src/.cog/stale.json" not in members                 # .cog/ never copied
    assert members["src/.cog/openapi_schema.json"].size == 2    # the schema is added
    assert members["src/run.sh"].mode == 0o755 and members["src/predict.py"].mode == 0o644
    assert members["src/outside"].issym() and members["src/outside"].linkname == "/etc/shadow"
    assert b"TOPSECRET" not in gzip.decompress(store.read(layer.descriptor.digest))


def test_selector_tracks_content_not_just_names(tmp_path: Path) -> None:
    project = _project(tmp_path / "proj")
    ignore = IgnoreMatcher.for_project(project)
    before = code.selector(code.scan(project, ignore)[1], None)
    assert code.selector(code.scan(project, ignore)[1], None) == before
    (project / "predict.py").write_text("print('changed')\n")
    assert code.selector(code.scan(project, ignore)[1], None) != before
    (project / "secret.txt").write_text("ignored files do not matter\n")
    after = code.selector(code.scan(project, ignore)[1], None)
    assert code.selector(code.scan(project, ignore)[1], None) == after


def test_cached_layer_is_found_by_selector(tmp_path: Path) -> None:
    project = _project(tmp_path / "proj")
    store = BlobStore(tmp_path / "store")
    entries, facts = code.scan(project, IgnoreMatcher.for_project(project))
    key = code.selector(facts, None)
    assert code.cached(store, key) is None
    built = code.build(store, key, entries, None)
    assert code.cached(store, key) == built


def test_file_that_changes_size_is_detected(tmp_path: Path) -> None:
    project = _project(tmp_path / "proj")
    store = BlobStore(tmp_path / "store")
    entries, facts = code.scan(project, IgnoreMatcher([]))
    (project / "predict.py").write_text("grown since the scan\n")
    with pytest.raises(OciasmError, match="changed while the image was being built"):
        code.build(store, code.selector(facts, None), entries, None)


def test_parents_keep_the_modes_bases_give_them(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    layer = write_layer(store, [Entry("/root/.local/bin/tool", "file", data=b"x"),
                                Entry("/tmp/x", "file", data=b"y")])
    members = _members(store, layer.descriptor.digest)
    assert members["root"].mode == 0o700 and members["tmp"].mode == 0o1777
    assert members["root/.local"].mode == 0o755


def test_without_drops_paths_that_go_in_other_layers(tmp_path: Path) -> None:
    project = _project(tmp_path / "proj")
    (project / "subdir").mkdir()
    (project / "subdir" / "x.txt").write_text("kept\n")
    entries, facts = code.scan(project, IgnoreMatcher.for_project(project))
    kept_entries, kept_facts = code.without(entries, facts, frozenset({"sub", "run.sh"}))
    paths = {e.path for e in kept_entries}
    assert "/src/sub" not in paths and "/src/sub/data.txt" not in paths and "/src/run.sh" not in paths
    assert {"/src/subdir/x.txt", "/src/predict.py"} <= paths         # a prefix is not a parent
    assert {f[0] for f in kept_facts} == {e.path[len("/src/"):] for e in kept_entries}
