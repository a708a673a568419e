"""Content-addressed blob store with atomic writes, safe for concurrent builds.

Layout under the root:
  blobs/sha256/<hex>    immutable blobs, named by the sha256 of their bytes
  meta/<kind>/<key>     small JSON records (caches of layer recipes, base facts)
  tmp/                  partial writes; renamed into place only once verified

Writers never touch a final path until their bytes hash to the right digest, and
`os.replace` makes the move atomic, so readers see a whole blob or none and two
builds writing the same blob both succeed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import BinaryIO, Iterator
from contextlib import contextmanager

from .errors import DigestMismatch, OciasmError

CHUNK = 1 << 20
STALE_TMP_SECONDS = 24 * 3600


def default_root() -> Path:
    if env := os.environ.get("OCIASM_CACHE_DIR"):
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(xdg) / "ociasm"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_hex(digest: str) -> str:
    """The hex part of a sha256 digest, checked: digests from manifests are untrusted text."""
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
        raise OciasmError(f"unsupported or malformed digest {digest!r}: expected sha256:<64 hex>")
    return hexpart


class BlobWriter:
    """Hashes bytes as they are written to a temp file; `commit` verifies and moves them in."""

    def __init__(self, store: "BlobStore", expected: str | None) -> None:
        self._store = store
        self._expected = expected
        self._hash = hashlib.sha256()
        self.size = 0
        fd, name = tempfile.mkstemp(dir=store.tmp_dir, prefix="blob-")
        self._tmp = Path(name)
        self._file: BinaryIO = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        return self._file.write(data)

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    def commit(self) -> str:
        self._file.close()
        digest = self.digest
        if self._expected is not None and digest != self._expected:
            self._tmp.unlink(missing_ok=True)
            raise DigestMismatch(f"blob {self._expected} arrived with digest {digest}: not stored")
        final = self._store.path(digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._tmp, final)
        return digest

    def abort(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)


class BlobStore:
    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root else default_root()
        self.tmp_dir = self.root / "tmp"
        for sub in ("blobs/sha256", "meta", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._drop_stale_tmp()

    def _drop_stale_tmp(self) -> None:
        """Partial writes of builds that were killed (SIGKILL skips cleanup). A live writer's
        file is touched with every chunk, so only files idle for a day are removed."""
        cutoff = time.time() - STALE_TMP_SECONDS
        for entry in os.scandir(self.tmp_dir):
            try:
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
            except FileNotFoundError:  # another build removed it first
                pass

    def path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / digest_hex(digest)

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise OciasmError(f"blob {digest} is missing from the cache at {self.root}") from None

    def read(self, digest: str) -> bytes:
        with self.open(digest) as f:
            return f.read()

    @contextmanager
    def writer(self, expected: str | None = None) -> Iterator[BlobWriter]:
        """Yield a BlobWriter; it is committed when the block ends normally, discarded otherwise."""
        writer = BlobWriter(self, expected)
        try:
            yield writer
        except BaseException:
            writer.abort()
            raise
        writer.commit()

    def put_bytes(self, data: bytes) -> str:
        digest = sha256_digest(data)
        if not self.has(digest):
            with self.writer(digest) as w:
                w.write(data)
        return digest

    def put_stream(self, stream: BinaryIO, expected: str | None = None) -> tuple[str, int]:
        with self.writer(expected) as w:
            while chunk := stream.read(CHUNK):
                w.write(chunk)
        return w.digest, w.size

    # Small JSON records: caches keyed by the hash of their inputs.
    def _meta_path(self, kind: str, key: str) -> Path:
        return self.root / "meta" / kind / f"{key}.json"

    def get_meta(self, kind: str, key: str) -> dict | None:
        try:
            return json.loads(self._meta_path(kind, key).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def put_meta(self, kind: str, key: str, record: dict) -> None:
        path = self._meta_path(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.tmp_dir, prefix="meta-")
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, sort_keys=True)
        os.replace(tmp, path)

    def delete_meta(self, kind: str, key: str) -> None:
        self._meta_path(kind, key).unlink(missing_ok=True)
