"""Pushing an image to a registry, sending only what it lacks (distribution API v2 / OCI).

If the registry already has the manifest under the tag, nothing is sent. Otherwise, for every
blob (layers and config), a few at a time:

1. `HEAD`: the repository has it -> "exists".
2. A cross-repository mount (`POST ...?mount=&from=`) from another repository of the same
   registry known to hold it (the base's repository, or an earlier push: `locations`) -> "mounted".
3. An upload: blobs up to `CHUNK_SIZE` in one `PUT`, larger ones in `PATCH` chunks (at least
   the registry's `OCI-Chunk-Min-Length`), the session URL kept in the store's meta after
   every chunk, so a killed push resumes next run from the offset the registry reports. When a
   chunk fails, the registry is asked where the upload stands and sending resumes there; a
   session it forgot restarts the blob. Registries without chunked uploads get one `PUT`.

The manifest goes last, with its exact bytes and media type, once every blob is in place.
Bodies are streamed from the blob store (or from the base's registry) in 1 MiB reads, so
memory stays flat whatever the layer size.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import closing
from dataclasses import asdict, dataclass, replace
from typing import BinaryIO, Callable, Iterator, NoReturn, TypeVar
from urllib.parse import quote, urljoin

import requests

from . import build as builder
from . import locations, pushable
from .build import BuildRequest
from .errors import OciasmError, RegistryError
from .progress import Progress, Task, TtyProgress, human_bytes
from .pushable import Blob, Pushable
from .reference import Reference
from .registry import RegistryClient, RegistryUnreachable, error_detail
from .store import CHUNK, BlobStore

CHUNK_SIZE = 128 << 20  # blobs up to this go in one PUT; larger ones in PATCH chunks of this size
CHUNK_SIZE_ENV = "OCIASM_PUSH_CHUNK_SIZE"  # bytes; for proxies that cap request bodies
WORKERS = 3            # blobs in flight at once
ATTEMPTS = 5           # per blob; each resumes where the registry says the upload stands
BACKOFF = 0.5          # seconds, doubled after every failed attempt
COMMIT_TIMEOUT = (10.0, 600.0)  # the registry hashes the whole blob before it answers the final PUT
HEARTBEAT = 10.0       # seconds between plain-mode progress lines
UPLOADS = "uploads"    # store meta: upload sessions a killed push left, by (host, repository, digest)
_LOST_CODES = frozenset({"BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID", "SIZE_INVALID",
                         "RANGE_INVALID"})

T = TypeVar("T")
R = TypeVar("R")


class _Lost(Exception):
    """The upload went wrong in a way a fresh look at the registry can recover from."""


class _Stopped(Exception):
    """Another blob's upload failed or the user interrupted: stop sending."""


@dataclass(frozen=True)
class _Session:
    url: str
    offset: int            # bytes the registry holds
    min_chunk: int = 0     # OCI-Chunk-Min-Length
    max_chunk: int = 0     # OCI-Chunk-Max-Length


def configured_chunk_size() -> int:
    value = os.environ.get(CHUNK_SIZE_ENV, "")
    if not value:
        return CHUNK_SIZE
    if not value.isdigit() or int(value) < 1 << 20:
        raise OciasmError(f"{CHUNK_SIZE_ENV}={value!r}: expected a chunk size in bytes, at least 1048576")
    return int(value)


def _int_header(resp: requests.Response, name: str) -> int:
    value = resp.headers.get(name, "")
    return int(value) if value.isdigit() else 0


def _reported_offset(resp: requests.Response) -> int | None:
    """Bytes received, from a `Range: 0-<last>` header. "0-0" counts as none: distribution says
    it for an empty upload, and restarting a 1-byte upload costs nothing."""
    end = resp.headers.get("Range", "").removeprefix("bytes=").partition("-")[2]
    return (int(end) + 1 if int(end) else 0) if end.isdigit() else None


def _with_digest(url: str, digest: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}digest={quote(digest)}"


class _Reader:
    """One upload's reads of a blob, in order across its requests: opened once (a base layer may
    be a stream from its registry), reopened only when a request is re-sent from an earlier offset."""

    def __init__(self, blob: Blob, stop: threading.Event) -> None:
        self._blob, self._stop = blob, stop
        self._file: BinaryIO | None = None
        self._pos = 0

    def chunks(self, offset: int, length: int, sent: Callable[[int], None]) -> Iterator[bytes]:
        if self._file is None or self._pos != offset:
            self.close()
            self._file = self._blob.open()
            _skip(self._file, offset)
            self._pos = offset
        left = length
        while left:
            if self._stop.is_set():
                raise _Stopped()
            chunk = self._file.read(min(CHUNK, left))
            if not chunk:
                raise OciasmError(f"blob {self._blob.descriptor.digest} ended before its "
                                  f"{self._blob.descriptor.size} bytes")
            left -= len(chunk)
            self._pos += len(chunk)
            sent(len(chunk))
            yield chunk

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class _Body:
    """`length` bytes of a blob from `offset`, as an iterable of chunks with a len(), so requests
    streams it with a Content-Length; made afresh for every attempt."""

    def __init__(self, reader: _Reader, offset: int, length: int, sent: Callable[[int], None]) -> None:
        self._reader, self._offset, self._length, self._sent = reader, offset, length, sent

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[bytes]:
        return self._reader.chunks(self._offset, self._length, self._sent)


def _skip(f: BinaryIO, n: int) -> None:
    if not n:
        return
    try:
        f.seek(n)
        return
    except (AttributeError, OSError, io.UnsupportedOperation):
        pass
    while n > 0:  # a stream from a registry: read past what the registry has already
        data = f.read(min(CHUNK, n))
        if not data:
            return  # short: reading the body says so
        n -= len(data)


class _Meter:
    """Bytes sent, per blob and in total; a line every HEARTBEAT seconds where no bars are drawn."""

    def __init__(self, progress: Progress, total: Task) -> None:
        self._progress, self._total = progress, total
        self._lock = threading.Lock()
        self._plain = not isinstance(progress, TtyProgress)
        self._last = time.monotonic()

    def set(self, task: Task, done: int) -> None:
        self.add(task, done - task.done)

    def add(self, task: Task, n: int) -> None:
        with self._lock:
            task.advance(n)
            self._total.advance(n)
            if self._plain and time.monotonic() - self._last >= HEARTBEAT:
                self._last = time.monotonic()
                self._progress.step(f"{self._total.name}: {human_bytes(self._total.done)} of "
                                    f"{human_bytes(self._total.total or 0)} sent")


class Pusher:
    def __init__(self, client: RegistryClient, store: BlobStore, progress: Progress, ref: Reference,
                 chunk_size: int) -> None:
        self._client, self._store, self._progress, self._ref = client, store, progress, ref
        self._chunk_size = chunk_size
        self._repo = ref.repository
        self._uploads = f"/v2/{ref.repository}/blobs/uploads/"
        self._host = client.host(ref, push=True)
        self._stop = threading.Event()
        self._fresh: dict[str, _Session] = {}  # sessions a failed mount opened, used for the upload
        self._monolithic = False               # the registry refused a chunked upload
        self._meter: _Meter | None = None

    def push(self, item: Pushable) -> str:
        """Send what the registry lacks, then the manifest; return the manifest digest."""
        ref = self._ref
        if ref.digest and ref.digest != item.digest:
            raise OciasmError(f"image {ref} names digest {ref.digest}, but the image's manifest is {item.digest}")
        if self._manifest_present(item):
            self._progress.step(f"{ref}: already up to date")
            return item.digest
        placed = self._parallel(self._place, item.blobs)
        todo = [b for b, where in zip(item.blobs, placed) if where is None]
        total = sum(b.descriptor.size for b in todo)
        self._progress.step(f"{ref}: {placed.count('exists')} blobs exist, {placed.count('mounted')} mounted, "
                            f"{len(todo)} to upload ({human_bytes(total)})")
        if todo:
            with self._progress.task(f"push {ref.repository}", total) as total_task:
                self._meter = _Meter(self._progress, total_task)
                self._parallel(self._upload, todo)
        self._put_manifest(item)
        return item.digest

    # ---- each blob ----------------------------------------------------------------------------

    def _place(self, blob: Blob) -> str | None:
        """"exists" or "mounted" when the registry has the blob now; None when it must be sent."""
        digest = blob.descriptor.digest
        if self._exists(digest):
            self._progress.step(f"  {digest[7:19]}: exists")
            return "exists"
        for host, source in locations.seen(self._store, digest):
            if host != self._host or source == self._repo:
                continue
            resp = self._client.request(self._ref, "POST", f"{self._uploads}?mount={quote(digest)}"
                                        f"&from={quote(source)}", push=True, mount_from=source)
            resp.close()
            if resp.status_code == 201:
                locations.note(self._store, digest, self._host, self._repo)
                self._progress.step(f"  {digest[7:19]}: mounted from {source}")
                return "mounted"
            if resp.status_code == 202 and resp.headers.get("Location"):  # not there: an upload started
                self._fresh.setdefault(digest, self._session_from(resp))
        return None

    def _exists(self, digest: str) -> bool:
        resp = self._client.request(self._ref, "HEAD", f"/v2/{self._repo}/blobs/{digest}", push=True)
        resp.close()
        if resp.status_code == 200:
            locations.note(self._store, digest, self._host, self._repo)
            return True
        if resp.status_code != 404:
            self._client.refused(resp, self._ref, f"blob {digest}", push=True)
        return False

    def _upload(self, blob: Blob) -> None:
        desc = blob.descriptor
        key = hashlib.sha256(f"{self._host}/{self._repo}@{desc.digest}".encode()).hexdigest()[:40]
        reason = ""
        with self._progress.task(f"  {desc.digest[7:19]}", desc.size) as task:
            for attempt in range(ATTEMPTS):
                if attempt:
                    time.sleep(BACKOFF * 2 ** (attempt - 1))
                    if self._exists(desc.digest):  # another push finished it meanwhile
                        return
                try:
                    session = self._resume(key, desc.digest) or self._fresh.pop(desc.digest, None) or self._start()
                    if session.offset:
                        self._progress.step(f"  {desc.digest[7:19]}: resuming at {human_bytes(session.offset)}")
                    self._store.put_meta(UPLOADS, key, asdict(session))
                    with closing(_Reader(blob, self._stop)) as reader:
                        self._send(blob, reader, session, task, key)
                    self._store.delete_meta(UPLOADS, key)
                    locations.note(self._store, desc.digest, self._host, self._repo)
                    return
                except (_Lost, RegistryUnreachable) as e:
                    reason = str(e)
                    self._progress.warn(f"upload of {desc.digest[7:19]} to {self._ref} interrupted ({reason}); "
                                        f"attempt {attempt + 2} of {ATTEMPTS}" if attempt + 1 < ATTEMPTS else
                                        f"upload of {desc.digest[7:19]} to {self._ref} interrupted ({reason})")
        raise RegistryError(f"could not upload blob {desc.digest} to {self._ref} in {ATTEMPTS} attempts "
                            f"(last: {reason}); run the push again to resume")

    def _send(self, blob: Blob, reader: _Reader, session: _Session, task: Task, key: str) -> None:
        size = blob.descriptor.size
        assert self._meter is not None
        self._meter.set(task, session.offset)
        url, offset = session.url, session.offset
        if offset == 0 and (size <= self._chunk_size or self._monolithic):
            self._commit(blob, reader, url, 0, size, task)
            return
        chunk = max(self._chunk_size, session.min_chunk)
        chunk = min(chunk, session.max_chunk) if session.max_chunk else chunk
        while offset < size:
            n = min(chunk, size - offset)
            resp = self._client.request(self._ref, "PATCH", url, push=True, retry=False,
                                        data=self._body(reader, offset, n, task),
                                        headers={"Content-Type": "application/octet-stream",
                                                 "Content-Range": f"{offset}-{offset + n - 1}"})
            resp.close()
            if resp.status_code != 202:
                if offset == 0 and resp.status_code in (400, 405, 416) and \
                        error_detail(resp)[0] not in _LOST_CODES:
                    self._monolithic = True  # no chunked uploads here: one PUT per blob from now on
                    raise _Lost(f"HTTP {resp.status_code} to a chunk: sending it in one PUT")
                self._failed(resp, blob)
            url = urljoin(url, resp.headers.get("Location") or url)
            reported = _reported_offset(resp)
            offset = offset + n if reported is None else reported
            self._meter.set(task, offset)
            self._store.put_meta(UPLOADS, key, asdict(replace(session, url=url, offset=offset)))
        self._commit(blob, reader, url, offset, 0, task)

    def _commit(self, blob: Blob, reader: _Reader, url: str, offset: int, length: int, task: Task) -> None:
        """The final PUT, carrying the last `length` bytes (all of them for a one-PUT upload)."""
        desc = blob.descriptor
        resp = self._client.request(self._ref, "PUT", _with_digest(url, desc.digest), push=True, retry=False,
                                    data=self._body(reader, offset, length, task) if length else None,
                                    headers={"Content-Type": "application/octet-stream"},
                                    timeout=COMMIT_TIMEOUT)
        resp.close()
        if resp.status_code not in (201, 204):
            self._failed(resp, blob)
        stored = resp.headers.get("Docker-Content-Digest")
        if stored and stored != desc.digest:
            raise RegistryError(f"registry {self._host} stored blob {desc.digest} of {self._ref} as {stored}")

    def _body(self, reader: _Reader, offset: int, length: int, task: Task) -> Callable[[], _Body]:
        meter = self._meter
        assert meter is not None
        return lambda: _Body(reader, offset, length, lambda n: meter.add(task, n))

    def _failed(self, resp: requests.Response, blob: Blob) -> None:
        self._check_access(resp)
        code, status = error_detail(resp)[0], resp.status_code
        if status in (404, 416, 429) or status >= 500 or code in _LOST_CODES:
            raise _Lost(f"HTTP {status}" + (f" {code}" if code else ""))
        self._refused(resp, f"blob {blob.descriptor.digest} of {self._ref}")

    # ---- upload sessions ----------------------------------------------------------------------

    def _start(self) -> _Session:
        resp = self._client.request(self._ref, "POST", self._uploads, push=True)
        resp.close()
        if resp.status_code != 202 or not resp.headers.get("Location"):
            self._refused(resp, f"to start an upload to {self._ref}")
        return self._session_from(resp)

    def _session_from(self, resp: requests.Response) -> _Session:
        return _Session(urljoin(self._uploads, resp.headers["Location"]), _reported_offset(resp) or 0,
                        _int_header(resp, "OCI-Chunk-Min-Length"), _int_header(resp, "OCI-Chunk-Max-Length"))

    def _resume(self, key: str, digest: str) -> _Session | None:
        """The session a previous attempt or run left, where the registry says it stands now."""
        record = self._store.get_meta(UPLOADS, key)
        if not record:
            return None
        resp = self._client.request(self._ref, "GET", record["url"], push=True)
        resp.close()
        offset = _reported_offset(resp)
        if resp.status_code not in (202, 204) or offset is None:
            self._store.delete_meta(UPLOADS, key)
            self._progress.step(f"  {digest[7:19]}: the registry forgot the interrupted upload; starting it again")
            return None
        return _Session(urljoin(record["url"], resp.headers.get("Location") or record["url"]), offset,
                        record.get("min_chunk", 0), record.get("max_chunk", 0))

    # ---- the manifest -------------------------------------------------------------------------

    def _manifest_present(self, item: Pushable) -> bool:
        resp = self._client.request(self._ref, "HEAD", f"/v2/{self._repo}/manifests/{self._ref.identifier}",
                                    push=True, headers={"Accept": item.media_type})
        resp.close()
        self._check_access(resp)
        return resp.status_code == 200 and resp.headers.get("Docker-Content-Digest") == item.digest

    def _put_manifest(self, item: Pushable) -> None:
        resp = self._client.request(self._ref, "PUT", f"/v2/{self._repo}/manifests/{self._ref.identifier}",
                                    push=True, headers={"Content-Type": item.media_type}, data=item.manifest)
        resp.close()
        if resp.status_code not in (200, 201, 202):
            self._refused(resp, f"the manifest of {self._ref}")
        stored = resp.headers.get("Docker-Content-Digest")
        if stored and stored != item.digest:
            raise RegistryError(f"registry {self._host} stored the manifest of {self._ref} as {stored}, "
                                f"not {item.digest}")

    def _refused(self, resp: requests.Response, what: str) -> NoReturn:
        """Raise for an answer that is not the one `what` needed."""
        self._check_access(resp)
        code, message = error_detail(resp)
        raise RegistryError(f"registry {self._host} refused {what}: HTTP {resp.status_code}"
                            + (f" {code}" if code else "") + (f": {message}" if message else ""))

    def _check_access(self, resp: requests.Response) -> None:
        """Raise when the registry refused access: 401 or 403."""
        if resp.status_code not in (401, 403):
            return
        # 403, or a token without push (distribution's token auth answers 401 "insufficient_scope").
        if resp.status_code == 403 or "insufficient_scope" in resp.headers.get("WWW-Authenticate", ""):
            message = error_detail(resp)[1] if resp.status_code == 403 else ""
            raise RegistryError(f"registry {self._host} denied pushing to {self._ref}"
                                + (f" ({message})" if message else "")
                                + ": check the repository name and that your login may push to it")
        self._client.refused(resp, self._ref, f"image {self._ref}", push=True)

    # ---- concurrency --------------------------------------------------------------------------

    def _parallel(self, fn: Callable[[T], R], items: tuple[T, ...] | list[T]) -> list[R]:
        """fn over items, WORKERS at a time; the first failure stops the others and is raised."""
        with ThreadPoolExecutor(WORKERS) as pool:
            futures = [pool.submit(fn, x) for x in items]
            try:
                wait(futures, return_when=FIRST_EXCEPTION)
                failed = [f.exception() for f in futures if f.done() and f.exception()]
                if failed:
                    raise next((e for e in failed if not isinstance(e, _Stopped)), failed[0])
            except BaseException:
                self._stop.set()
                for f in futures:
                    f.cancel()
                raise
            return [f.result() for f in futures]


# ---- `ociasm push` ----------------------------------------------------------------------------

def publish(request: BuildRequest, image: str | None, layout: str | None, store: BlobStore,
            progress: Progress) -> str:
    """Build (or read `layout`) and push; returns the pushed reference with its digest."""
    chunk_size = configured_chunk_size()  # a bad setting fails before the build
    if layout is not None:
        if image is None:
            raise OciasmError(f"--from {layout}: name the image to push it to (ociasm push --from {layout} IMAGE)")
        item = pushable.from_layout(*pushable.parse_layout_spec(layout))
    else:
        built, image = builder.build(replace(request, tag=image or request.tag, push=True), store, progress)
        item = pushable.from_image(built)
    ref = Reference.parse(image)
    progress.step(f"pushing {ref}")
    client = RegistryClient(mirrors=request.mirrors, insecure=request.insecure_registries, progress=progress,
                            ca_cert=request.ca_cert, tries=ATTEMPTS)
    digest = Pusher(client, store, progress, ref, chunk_size).push(item)
    return f"{ref.name}{':' + ref.tag if ref.tag else ''}@{digest}"
