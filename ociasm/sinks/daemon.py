"""Load an image into the Docker engine: a docker-archive streamed to `POST /images/load`.

The archive is generated while it is sent (its length is known before the first byte), so
no copy of the image is ever written to disk. The engine is found at DOCKER_HOST (unix:///path or
tcp://host:port, plain HTTP) or /var/run/docker.sock.

Loads are incremental: the engine never opens the file of a layer whose chain ID it already
has, so those files are left out of the archive. Which chains it has is asked of the engine
itself: the layers of the image the tag names now (`GET /images/<tag>/json`), i.e. the previous
build. A code-only rebuild sends the code layer and the config, not the weights. Should the
engine still miss a left-out layer (the old image was removed meanwhile), the load is retried
once with every layer. An image the tag already names (same image ID, i.e. config digest: a
no-op rebuild) is not sent at all.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import urllib.parse
from dataclasses import dataclass

from ..errors import OciasmError
from ..image import Image
from ..progress import Progress
from ..store import digest_hex
from .archive import ArchiveStream

DEFAULT_HOST = "unix:///var/run/docker.sock"
PING_TIMEOUT = 3.0
CONNECT_TIMEOUT = 10.0


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def _host(docker_host: str | None) -> str:
    return docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def _connection(addr: str, timeout: float) -> http.client.HTTPConnection:
    scheme, sep, rest = addr.partition("://")
    if sep and scheme == "unix":
        return _UnixConnection(rest, timeout)
    if sep and scheme == "tcp" and not os.environ.get("DOCKER_TLS_VERIFY"):
        return http.client.HTTPConnection(rest.rstrip("/"), timeout=timeout)
    raise OciasmError(f"cannot reach the Docker engine at {addr}: only unix:// and plain tcp:// "
                      "engine addresses are supported; use --output oci-archive:FILE")


def _unreachable(addr: str, err: BaseException) -> OciasmError:
    return OciasmError(f"cannot reach the Docker engine at {addr}: {err}; "
                       "use --output oci-archive:FILE")


def engine_available(docker_host: str | None = None) -> bool:
    """True when the engine answers GET /_ping."""
    try:
        conn = _connection(_host(docker_host), PING_TIMEOUT)
    except OciasmError:
        return False
    try:
        conn.request("GET", "/_ping")
        response = conn.getresponse()
        return response.status == 200 and response.read().strip() == b"OK"
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


class EngineRefused(OciasmError):
    """The engine answered the load with an error; `detail` is its own message."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"the Docker engine refused the image: {detail}")
        self.detail = detail


@dataclass(frozen=True)
class LoadResult:
    sent_bytes: int                 # the archive's size
    sent_layers: tuple[str, ...]    # digests of the layer blobs in it
    skipped_layers: int             # layers the engine had, left out

    def __str__(self) -> str:
        return (f"sent {self.sent_bytes / 1e6:.1f} MB; "
                f"{self.skipped_layers} of {self.skipped_layers + len(self.sent_layers)} layers already there")


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The engine's layer identities: each layer's diff_id chained to all below it."""
    chains: list[str] = []
    for diff_id in diff_ids:
        chain = diff_id if not chains else \
            "sha256:" + hashlib.sha256(f"{chains[-1]} {diff_id}".encode()).hexdigest()
        chains.append(chain)
    return chains


def engine_image(tag: str, docker_host: str | None = None) -> dict:
    """What the engine knows of the image `tag` names (`docker image inspect`); {} when none or unknown."""
    addr = _host(docker_host)
    conn = _connection(addr, CONNECT_TIMEOUT)
    try:
        conn.request("GET", f"/images/{urllib.parse.quote(tag, safe='/:@')}/json")
        response = conn.getresponse()
        body = response.read()
        info = json.loads(body) if response.status == 200 else {}
    except (OSError, http.client.HTTPException, ValueError):
        return {}  # the load itself will say what is wrong with the engine
    finally:
        conn.close()
    return info if isinstance(info, dict) else {}


def engine_diff_ids(info: dict) -> list[str]:
    """The layers (diff_ids) of an image the engine described."""
    layers = (info.get("RootFS") or {}).get("Layers") or []
    return [l for l in layers if isinstance(l, str)]


def present_layers(image: Image, engine_layers: list[str]) -> frozenset[str]:
    """Digests of the image's layer blobs the engine will not open: every use has a known chain."""
    known = set(chain_ids(engine_layers))
    present: set[str] = set()
    needed: set[str] = set()
    for chain, desc in zip(chain_ids(image.diff_ids()), image.layer_descriptors()):
        (present if chain in known else needed).add(desc.digest)
    return frozenset(present - needed)


def load(image: Image, repo_tags: list[str], progress: Progress,
         docker_host: str | None = None) -> LoadResult:
    """Load the image, leaving out the layers the engine already has under the first tag."""
    known = engine_image(repo_tags[0], docker_host)
    if known.get("Id") == image.config_descriptor().digest:  # the engine's image ID is the config digest
        progress.step(f"{repo_tags[0]} is already in the Docker engine: nothing to load")
        return LoadResult(0, (), len({d.digest for d in image.layer_descriptors()}))
    skip = present_layers(image, engine_diff_ids(known))
    try:
        return _load(image, repo_tags, progress, docker_host, skip)
    except EngineRefused as refused:
        if not any(digest_hex(d) in refused.detail for d in skip):
            raise
        progress.warn(f"the Docker engine lacks a layer it had ({refused.detail}); sending every layer")
        return _load(image, repo_tags, progress, docker_host, frozenset())


def _load(image: Image, repo_tags: list[str], progress: Progress, docker_host: str | None,
          skip: frozenset[str]) -> LoadResult:
    """Stream the image to the engine as a docker-archive and check its answer."""
    addr = _host(docker_host)
    stream = ArchiveStream(image, repo_tags, oci_layout=False, skip_layers=skip)
    conn = _connection(addr, CONNECT_TIMEOUT)
    try:
        try:
            conn.connect()
        except OSError as err:
            raise _unreachable(addr, err) from None
        conn.sock.settimeout(None)  # the engine may take long to unpack big layers
        with progress.task(f"load {repo_tags[0]} into the Docker engine", stream.size) as task:
            try:
                conn.putrequest("POST", "/images/load?quiet=1")
                conn.putheader("Content-Type", "application/x-tar")
                # The length is known up front: no chunk framing, so no copy of each chunk to make it.
                conn.putheader("Content-Length", str(stream.size))
                conn.endheaders()
                for chunk in stream:
                    conn.send(chunk)
                    task.advance(len(chunk))
            except (BrokenPipeError, ConnectionResetError) as err:
                # The engine hung up mid-upload; its answer, if any, says why.
                _check_response(conn, addr, err)
                raise OciasmError(f"the Docker engine at {addr} closed the connection during the "
                                  f"image load: {err}") from None
            _check_response(conn, addr, None)
    finally:
        conn.close()
    sent = tuple(dict.fromkeys(d.digest for d in image.layer_descriptors() if d.digest not in skip))
    return LoadResult(stream.size, sent, len(set(d.digest for d in image.layer_descriptors())) - len(sent))


def _check_response(conn: http.client.HTTPConnection, addr: str, sent_error: OSError | None) -> None:
    """Raise with the engine's own message if it refused the archive."""
    try:
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as err:
        if sent_error is not None:
            return  # no answer to explain the failed upload: the caller reports it
        raise OciasmError(f"the Docker engine at {addr} gave no answer to the image load: {err}") from None
    if response.status != 200:
        raise EngineRefused(_message(body) or response.reason)
    for line in body.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and (event.get("error") or event.get("errorDetail")):
            message = event.get("error") or (event.get("errorDetail") or {}).get("message", "")
            raise EngineRefused(message.strip())


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body).get("message", "")).strip()
    except (ValueError, AttributeError):
        return body.decode(errors="replace").strip()
