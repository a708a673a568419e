"""Load an image into the Docker engine: a docker-archive streamed to `POST /images/load`.

The archive is generated while it is sent (chunked transfer encoding), so no copy of the
image is ever written to disk. The engine is found at DOCKER_HOST (unix:///path or
tcp://host:port, plain HTTP) or /var/run/docker.sock.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from typing import Iterator

from ..errors import OciasmError
from ..image import Image
from ..progress import Progress, Task
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


def load(image: Image, repo_tags: list[str], progress: Progress,
         docker_host: str | None = None) -> None:
    """Stream the image to the engine as a docker-archive and check its answer."""
    addr = _host(docker_host)
    stream = ArchiveStream(image, repo_tags, oci_layout=False)
    conn = _connection(addr, CONNECT_TIMEOUT)
    try:
        try:
            conn.connect()
        except OSError as err:
            raise _unreachable(addr, err) from None
        conn.sock.settimeout(None)  # the engine may take long to unpack big layers
        with progress.task(f"load {repo_tags[0]} into the Docker engine", stream.size) as task:
            try:
                conn.request("POST", "/images/load?quiet=1", body=_counted(stream, task),
                             headers={"Content-Type": "application/x-tar"}, encode_chunked=True)
            except (BrokenPipeError, ConnectionResetError) as err:
                # The engine hung up mid-upload; its answer, if any, says why.
                _check_response(conn, addr, err)
                raise OciasmError(f"the Docker engine at {addr} closed the connection during the "
                                  f"image load: {err}") from None
            _check_response(conn, addr, None)
    finally:
        conn.close()


def _counted(chunks: ArchiveStream, task: Task) -> Iterator[bytes]:
    for chunk in chunks:
        yield chunk
        task.advance(len(chunk))


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
        raise OciasmError(f"the Docker engine refused the image: {_message(body) or response.reason}")
    for line in body.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and (event.get("error") or event.get("errorDetail")):
            message = event.get("error") or (event.get("errorDetail") or {}).get("message", "")
            raise OciasmError(f"the Docker engine refused the image: {message.strip()}")


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body).get("message", "")).strip()
    except (ValueError, AttributeError):
        return body.decode(errors="replace").strip()
