"""The blob store: verified, atomic, and safe when several builds share it."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ociasm.errors import DigestMismatch, OciasmError
from ociasm.store import BlobStore, sha256_digest

from clirun import built_digest, run_ociasm
from realenv import NO_ENGINE


def test_put_and_read_back(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    digest = store.put_bytes(b"hello")
    assert digest == "sha256:" + hashlib.sha256(b"hello").hexdigest()
    assert store.has(digest) and store.read(digest) == b"hello"


def test_mismatch_never_enters_the_store(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    claimed = sha256_digest(b"expected")
    with pytest.raises(DigestMismatch):
        with store.writer(claimed) as w:
            w.write(b"something else")
    assert not store.has(claimed)
    assert list(store.tmp_dir.iterdir()) == []


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with pytest.raises(RuntimeError):
        with store.writer() as w:
            w.write(b"partial")
            raise RuntimeError("interrupted")
    assert list(store.tmp_dir.iterdir()) == []
    assert list((tmp_path / "blobs" / "sha256").iterdir()) == []


def test_stale_partial_writes_of_killed_builds_are_dropped(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    stale, fresh = store.tmp_dir / "blob-killed", store.tmp_dir / "blob-live"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"y")
    os.utime(stale, (0, 0))
    BlobStore(tmp_path)
    assert not stale.exists() and fresh.exists()


def test_malformed_digest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OciasmError, match="malformed digest"):
        BlobStore(tmp_path).path("sha256:../../etc/passwd")


def test_concurrent_writers_of_one_blob_all_succeed(tmp_path: Path) -> None:
    data = os.urandom(4 << 20)
    stores = [BlobStore(tmp_path) for _ in range(8)]
    barrier = threading.Barrier(len(stores))

    def put(store: BlobStore) -> str:
        barrier.wait()
        return store.put_stream(io.BytesIO(data), sha256_digest(data))[0]

    with ThreadPoolExecutor(len(stores)) as pool:
        digests = set(pool.map(put, stores))
    assert digests == {sha256_digest(data)}
    assert stores[0].read(sha256_digest(data)) == data
    assert list(stores[0].tmp_dir.iterdir()) == []


def test_meta_records_round_trip(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    assert store.get_meta("code", "k") is None
    store.put_meta("code", "k", {"a": 1})
    assert store.get_meta("code", "k") == {"a": 1}


@pytest.mark.real
def test_concurrent_builds_on_one_cache(hello: Path, tmp_path: Path, fixture_registry) -> None:
    """Two builds at once on one cold cache: both succeed, with the same image."""
    procs = [subprocess.Popen([sys.executable, "-m", "ociasm", "build", "--output", f"oci-archive:{tmp_path / f'{i}.tar'}",
                               "--registry-mirror", f"docker.io={fixture_registry.host}", "--progress", "quiet"],
                              cwd=hello, env={**os.environ, **NO_ENGINE}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    results = [subprocess.CompletedProcess(p.args, p.wait(600), *p.communicate()) for p in procs]
    digests = {built_digest(r) for r in results}
    assert len(digests) == 1
    again = run_ociasm("build", "--output", f"oci-archive:{tmp_path / 'again.tar'}", "--registry-mirror",
                       f"docker.io={fixture_registry.host}", cwd=hello, env=NO_ENGINE)
    assert built_digest(again) in digests
