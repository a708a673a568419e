"""The pull transport: unit tests against a scripted HTTP server on loopback, then against the
real `docker-registry` (distribution 2.8) with images pushed by skopeo."""

import base64
import gzip
import hashlib
import io
import json
import os
import socket
import subprocess
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from realenv import require_tools

from ociasm.errors import DigestMismatch, RegistryError
from ociasm.image import DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST, Descriptor
from ociasm.progress import QuietProgress
from ociasm.reference import Reference
from ociasm.registry import RegistryClient, is_loopback
from ociasm.store import BlobStore


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(autouse=True)
def no_docker_config(tmp_path, monkeypatch):
    """Every test starts with an empty Docker config of its own, never the developer's."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    (tmp_path / "docker").mkdir()


def login(tmp_path: Path, host: str, user: str, password: str) -> None:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (tmp_path / "docker" / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))


def client(**kwargs) -> tuple[RegistryClient, list[float]]:
    slept: list[float] = []
    kwargs.setdefault("progress", QuietProgress())
    return RegistryClient(sleep=slept.append, backoff=0.01, **kwargs), slept


# ---- a scripted registry ----------------------------------------------------------------------

class Fake:
    """Routes (method, path) to a list of responses, served in order (the last one repeats)."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list] = {}
        self.log: list[tuple[str, str, dict]] = []
        self.bodies: list[bytes] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle(self) -> None:
                # The client probes loopback hosts with TLS first; a plain server just hangs up.
                if self.connection.recv(1, socket.MSG_PEEK) == b"\x16":
                    return
                super().handle()

            def log_message(self, *args) -> None:
                pass

            def _serve(self) -> None:
                url = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fake.log.append((self.command, self.path, dict(self.headers)))
                fake.bodies.append(body)
                script = fake.routes.get((self.command, url.path))
                if script is None:
                    status, headers, body = 404, {}, json.dumps(
                        {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}).encode()
                else:
                    answer = script.pop(0) if len(script) > 1 else script[0]
                    status, headers, body = answer(self) if callable(answer) else answer
                length = headers.pop("Content-Length", len(body))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.write(body)
                if length != len(body):
                    self.close_connection = True

            do_GET = do_HEAD = do_POST = _serve

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address) -> None:
                pass  # clients hanging up mid-body is part of several tests

        self.server = Server(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def route(self, method: str, path: str, *answers) -> None:
        self.routes[(method, path)] = list(answers)

    def hits(self, path_prefix: str) -> int:
        return sum(1 for _, p, _ in self.log if p.startswith(path_prefix))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    server = Fake()
    yield server
    server.close()


def manifest_doc(config: bytes = b"{}", layers: tuple[bytes, ...] = (b"layer",)) -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest_of(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest_of(l),
                    "size": len(l)} for l in layers],
    }).encode()


def ok(body: bytes, media_type: str = OCI_MANIFEST, **headers) -> tuple:
    return 200, {"Content-Type": media_type, **headers}, body


# ---- unit tests -------------------------------------------------------------------------------

@pytest.mark.parametrize("host,expected", [
    ("localhost", True), ("localhost:5000", True), ("127.0.0.1:5000", True), ("127.9.8.7", True),
    ("[::1]:5000", True), ("[::1]", True), ("registry.localhost:80", True),
    ("10.0.0.1:5000", False), ("ghcr.io", False), ("localhost.example.com", False), ("[::2]:5000", False),
])
def test_plain_http_only_considered_for_loopback(host, expected):
    assert is_loopback(host) is expected


def test_anonymous_bearer_token_flow_and_cache(fake, tmp_path):
    raw = manifest_doc()
    realm = f"http://{fake.host}/token"

    def guarded(answer):
        def serve(handler):
            if handler.headers.get("Authorization") != "Bearer tok-1":
                return 401, {"WWW-Authenticate": f'Bearer realm="{realm}",service="fake",'
                                                 f'scope="repository:team/app:pull"'}, b""
            return answer
        return serve

    fake.route("GET", "/v2/team/app/manifests/v1", guarded(ok(raw)))
    fake.route("GET", f"/v2/team/app/blobs/{digest_of(b'layer')}", guarded((200, {}, b"layer")))
    fake.route("GET", "/token", (200, {}, json.dumps({"token": "tok-1", "expires_in": 300}).encode()))

    c, _ = client()
    ref = Reference.parse(f"{fake.host}/team/app:v1")
    pulled = c.manifest(ref)
    store = BlobStore(tmp_path / "store")
    c.fetch_blob(ref, pulled.layers[0], store)

    assert pulled.raw == raw and pulled.digest == digest_of(raw) and pulled.index_digest is None
    assert store.read(digest_of(b"layer")) == b"layer"
    token_requests = [(p, h) for m, p, h in fake.log if p.startswith("/token")]
    assert len(token_requests) == 1  # the blob reused the cached token
    assert parse_qs(urlsplit(token_requests[0][0]).query) == {"service": ["fake"],
                                                               "scope": ["repository:team/app:pull"]}
    assert "Authorization" not in token_requests[0][1]  # anonymous: no credentials to send


def test_bearer_token_with_docker_config_credentials(fake, tmp_path):
    login(tmp_path, fake.host, "alice", "s3cret")
    fake.route("GET", "/v2/team/app/manifests/v1",
               (401, {"WWW-Authenticate": f'Bearer realm="http://{fake.host}/token",service="fake"'}, b""),
               ok(manifest_doc()))
    fake.route("GET", "/token", (200, {}, b'{"access_token": "tok-2"}'))
    c, _ = client()
    c.manifest(Reference.parse(f"{fake.host}/team/app:v1"))
    token_headers = [h for _, p, h in fake.log if p.startswith("/token")][0]
    assert token_headers["Authorization"] == "Basic " + base64.b64encode(b"alice:s3cret").decode()
    # No scope in the challenge: the client asks for pull on the repository.
    assert parse_qs(urlsplit([p for _, p, _ in fake.log if p.startswith("/token")][0]).query)["scope"] == \
        ["repository:team/app:pull"]
    assert fake.log[-1][2]["Authorization"] == "Bearer tok-2"


def test_identity_token_is_exchanged_not_sent_as_password(fake, tmp_path):
    (tmp_path / "docker" / "config.json").write_text(json.dumps(
        {"auths": {fake.host: {"identitytoken": "refresh-abc"}}}))
    fake.route("GET", "/v2/team/app/manifests/v1",
               (401, {"WWW-Authenticate": f'Bearer realm="http://{fake.host}/oauth",service="fake"'}, b""),
               ok(manifest_doc()))
    fake.route("POST", "/oauth", (200, {}, b'{"access_token": "tok-3"}'))
    client()[0].manifest(Reference.parse(f"{fake.host}/team/app:v1"))
    post = [i for i, (m, _, _) in enumerate(fake.log) if m == "POST"]
    assert len(post) == 1
    assert parse_qs(fake.bodies[post[0]].decode()) == {
        "service": ["fake"], "scope": ["repository:team/app:pull"], "grant_type": ["refresh_token"],
        "client_id": ["ociasm"], "refresh_token": ["refresh-abc"]}
    assert "Authorization" not in fake.log[post[0]][2]
    assert fake.log[-1][2]["Authorization"] == "Bearer tok-3"


def test_retries_5xx_then_succeeds(fake):
    raw = manifest_doc()
    fake.route("GET", "/v2/app/manifests/v1", (500, {}, b""), (503, {}, b""), ok(raw))
    c, slept = client()
    assert c.manifest(Reference.parse(f"{fake.host}/app:v1")).raw == raw
    assert fake.hits("/v2/app/manifests/v1") == 3
    assert slept == [0.01, 0.02]  # exponential backoff


def test_gives_up_after_three_tries(fake):
    fake.route("GET", "/v2/app/manifests/v1",
               (429, {}, json.dumps({"errors": [{"code": "TOOMANYREQUESTS", "message": "slow\ndown"}]}).encode()))
    c, _ = client()
    with pytest.raises(RegistryError) as e:
        c.manifest(Reference.parse(f"{fake.host}/app:v1"))
    assert str(e.value) == f"registry {fake.host} answered HTTP 429 for image {fake.host}/app:v1: slow down"
    assert fake.hits("/v2/app/manifests/v1") == 3


def test_not_found_message(fake):
    c, _ = client(mirrors={"docker.io": fake.host})
    with pytest.raises(RegistryError) as e:
        c.manifest(Reference.parse("python:3.9-slim"))
    assert str(e.value) == (f"image docker.io/library/python:3.9-slim not found on mirror {fake.host} "
                            "(manifest unknown): check the tag")
    # The mirror serves Docker Hub's repository names.
    assert fake.log[-1][1] == "/v2/library/python/manifests/3.9-slim"

    c, _ = client()
    with pytest.raises(RegistryError) as e:
        c.manifest(Reference.parse(f"{fake.host}/python:3.9-slim"))
    assert str(e.value) == (f"image {fake.host}/python:3.9-slim not found (manifest unknown): check the tag")


def test_auth_failure_messages_never_show_secrets(fake, tmp_path):
    fake.route("GET", "/v2/app/manifests/v1", (401, {"WWW-Authenticate": 'Basic realm="fake"'}, b""))
    ref = Reference.parse(f"{fake.host}/app:v1")
    c, _ = client()
    with pytest.raises(RegistryError) as e:
        c.manifest(ref)
    assert str(e.value) == (f"image {ref}: authentication failed for {fake.host} (no credentials in "
                            f"{tmp_path / 'docker' / 'config.json'}): check the image name, or log in "
                            f"(docker login {fake.host})")

    login(tmp_path, fake.host, "alice", "wrong-password")
    c, _ = client()
    with pytest.raises(RegistryError) as e:
        c.manifest(ref)
    assert str(e.value) == (f"image {ref}: authentication failed for {fake.host}: "
                            f"check credentials (docker login {fake.host})")
    assert fake.log[-1][2]["Authorization"] == "Basic " + base64.b64encode(b"alice:wrong-password").decode()
    assert "wrong-password" not in str(e.value) and "alice" not in str(e.value)


def test_unreachable_registry():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    c, slept = client()
    with pytest.raises(RegistryError) as e:
        c.manifest(Reference.parse(f"127.0.0.1:{port}/app:v1"))
    assert str(e.value) == f"cannot reach registry 127.0.0.1:{port}: connection refused"
    assert len(slept) == 2


def test_blob_digest_mismatch_stores_nothing(fake, tmp_path):
    layer = b"the real layer"
    fake.route("GET", f"/v2/app/blobs/{digest_of(layer)}", (200, {}, b"the fake layer"))
    store = BlobStore(tmp_path / "store")
    c, _ = client()
    ref = Reference.parse(f"{fake.host}/app:v1")
    desc = Descriptor("application/vnd.oci.image.layer.v1.tar", digest_of(layer), len(layer))
    with pytest.raises(DigestMismatch) as e:
        c.fetch_blob(ref, desc, store)
    assert str(e.value) == (f"blob {desc.digest} of image {ref} from {fake.host} did not match its digest: "
                            f"not stored")
    assert not store.has(desc.digest)
    assert list((tmp_path / "store" / "blobs" / "sha256").iterdir()) == []
    assert list((tmp_path / "store" / "tmp").iterdir()) == []


def test_blob_longer_than_announced_is_cut_off(fake, tmp_path):
    layer = b"x" * 10
    fake.route("GET", f"/v2/app/blobs/{digest_of(layer)}", (200, {}, layer + b"y" * 5000))
    store = BlobStore(tmp_path / "store")
    c, _ = client()
    with pytest.raises(DigestMismatch, match=r"is longer than the 10 bytes its descriptor announces: not stored$"):
        c.fetch_blob(Reference.parse(f"{fake.host}/app:v1"),
                     Descriptor("application/octet-stream", digest_of(layer), len(layer)), store)
    assert not store.has(digest_of(layer))
    assert list((tmp_path / "store" / "tmp").iterdir()) == []


def test_blob_retried_after_broken_stream_and_skipped_when_present(fake, tmp_path):
    layer = os.urandom(3 << 20)  # three chunks
    path = f"/v2/app/blobs/{digest_of(layer)}"
    fake.route("GET", path, (200, {"Content-Length": len(layer)}, layer[:1 << 20]), (200, {}, layer))
    store = BlobStore(tmp_path / "store")
    c, slept = client()
    ref = Reference.parse(f"{fake.host}/app:v1")
    desc = Descriptor("application/octet-stream", digest_of(layer), len(layer))
    c.fetch_blob(ref, desc, store)
    assert store.read(desc.digest) == layer
    assert fake.hits(path) == 2 and len(slept) == 1
    c.fetch_blob(ref, desc, store)
    assert fake.hits(path) == 2  # already in the store: no request


def test_manifest_digest_checks(fake):
    raw = manifest_doc()
    fake.route("GET", "/v2/app/manifests/v1", ok(raw, **{"Docker-Content-Digest": digest_of(b"other")}))
    c, _ = client()
    with pytest.raises(DigestMismatch, match=r"does not hash to the Docker-Content-Digest"):
        c.manifest(Reference.parse(f"{fake.host}/app:v1"))

    wrong = "sha256:" + "0" * 64
    fake.route("GET", f"/v2/app/manifests/{wrong}", ok(raw))
    with pytest.raises(DigestMismatch, match=r"not the digest the reference names"):
        c.manifest(Reference.parse(f"{fake.host}/app@{wrong}"))

    fake.route("GET", f"/v2/app/manifests/{digest_of(raw)}", ok(raw, **{"Docker-Content-Digest": digest_of(raw)}))
    assert c.manifest(Reference.parse(f"{fake.host}/app@{digest_of(raw)}")).digest == digest_of(raw)


def test_schema1_is_a_clear_error(fake):
    fake.route("GET", "/v2/old/manifests/v1",
               ok(b'{"schemaVersion": 1, "name": "old", "fsLayers": []}',
                  "application/vnd.docker.distribution.manifest.v1+prettyjws"))
    c, _ = client()
    with pytest.raises(RegistryError, match=r"Docker schema 1 manifest, which is no longer supported"):
        c.manifest(Reference.parse(f"{fake.host}/old:v1"))


def test_index_platform_selection(fake):
    amd, arm = manifest_doc(b'{"a":1}'), manifest_doc(b'{"b":2}')
    index = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST_LIST, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": digest_of(arm), "size": len(arm),
         "platform": {"os": "linux", "architecture": "arm64"}},
        {"mediaType": OCI_MANIFEST, "digest": digest_of(b"att"), "size": 3,
         "platform": {"os": "unknown", "architecture": "unknown"}},
        {"mediaType": OCI_MANIFEST, "digest": digest_of(amd), "size": len(amd),
         "platform": {"os": "linux", "architecture": "amd64"}},
    ]}).encode()
    fake.route("GET", "/v2/multi/manifests/v1", ok(index, DOCKER_MANIFEST_LIST))
    fake.route("GET", f"/v2/multi/manifests/{digest_of(amd)}", ok(amd))
    fake.route("GET", f"/v2/multi/manifests/{digest_of(arm)}", ok(arm))
    ref = Reference.parse(f"{fake.host}/multi:v1")

    for platform, raw, config in (("linux/amd64", amd, b'{"a":1}'), ("linux/arm64/v8", arm, b'{"b":2}')):
        pulled = client(platform=platform)[0].manifest(ref)
        assert (pulled.digest, pulled.index_digest, pulled.raw) == (digest_of(raw), digest_of(index), raw)
        assert (pulled.media_type, pulled.config.digest) == (OCI_MANIFEST, digest_of(config))
    with pytest.raises(RegistryError) as e:
        client(platform="linux/s390x")[0].manifest(ref)
    assert str(e.value) == f"image {ref} has no linux/s390x variant (it has: linux/arm64, linux/amd64)"


# ---- against the real docker-registry ---------------------------------------------------------

def _need_real_tools() -> None:
    require_tools("docker-registry", "skopeo")


def _gzip_tar(files: dict[str, bytes]) -> tuple[bytes, str]:
    """A gzip'd layer tar and its diff_id."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0), digest_of(raw)


def write_layout(root: Path, tag: str, platforms: list[str]) -> dict[str, str]:
    """An OCI layout holding one image per platform (an index when more than one).

    Returns {platform: manifest digest} plus "index" when there is an index."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> dict:
        (blobs / digest_of(data)[7:]).write_bytes(data)
        return {"digest": digest_of(data), "size": len(data)}

    digests, entries = {}, []
    for platform in platforms:
        os_name, arch = platform.split("/")
        layer, diff_id = _gzip_tar({"hello.txt": f"hello from {platform}\n".encode()})
        config = json.dumps({"architecture": arch, "os": os_name, "config": {"Cmd": ["/bin/true"]},
                             "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **put(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **put(layer)}],
        }).encode()
        desc = {"mediaType": OCI_MANIFEST, **put(manifest)}
        digests[platform] = desc["digest"]
        entries.append({**desc, "platform": {"architecture": arch, "os": os_name}})
    top = entries[0]
    if len(platforms) > 1:
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
        top = {"mediaType": OCI_INDEX, **put(index)}
        digests["index"] = top["digest"]
    top = {k: v for k, v in top.items() if k != "platform"}
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (root / "index.json").write_text(json.dumps({
        "schemaVersion": 2, "manifests": [{**top, "annotations": {"org.opencontainers.image.ref.name": tag}}]}))
    return digests


def push(layout: Path, tag: str, dest: str, creds: tuple[str, str] | None = None) -> None:
    cmd = ["skopeo", "copy", "--all", "--dest-tls-verify=false", f"oci:{layout}:{tag}", f"docker://{dest}"]
    if creds:
        cmd[2:2] = ["--dest-creds", f"{creds[0]}:{creds[1]}"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)


@pytest.fixture
def real_registry(tmp_path):
    _need_real_tools()
    from fixtures.registry import start_registry
    started = []

    def start(**kwargs):
        reg = start_registry(tmp_path / f"registry{len(started)}", **kwargs)
        started.append(reg)
        return reg
    yield start
    for reg in started:
        reg.stop()


def _pull_all(c: RegistryClient, ref: Reference, store: BlobStore):
    pulled = c.manifest(ref)
    for desc in (pulled.config, *pulled.layers):
        c.fetch_blob(ref, desc, store)
    return pulled


@pytest.mark.real
def test_real_registry_pull_and_mirror(real_registry, tmp_path):
    reg = real_registry()
    digests = write_layout(tmp_path / "layout", "1", ["linux/amd64"])
    push(tmp_path / "layout", "1", f"{reg.host}/library/tiny:1")
    store = BlobStore(tmp_path / "store")

    c, _ = client()
    pulled = _pull_all(c, Reference.parse(f"{reg.host}/library/tiny:1"), store)
    assert pulled.digest == digests["linux/amd64"] and pulled.index_digest is None
    assert json.loads(store.read(pulled.config.digest))["architecture"] == "amd64"
    with tarfile.open(fileobj=io.BytesIO(store.read(pulled.layers[0].digest))) as tar:
        assert tar.extractfile("hello.txt").read() == b"hello from linux/amd64\n"

    # Docker Hub's name, served by the loopback mirror; pinned by digest.
    mirrored, _ = client(mirrors={"docker.io": reg.host})
    again = mirrored.manifest(Reference.parse(f"tiny@{pulled.digest}"))
    assert again.raw == pulled.raw
    with pytest.raises(RegistryError, match=r"^image docker.io/library/tiny:2 not found on mirror .* check the tag$"):
        mirrored.manifest(Reference.parse("tiny:2"))


@pytest.mark.real
def test_real_registry_htpasswd(real_registry, tmp_path):
    reg = real_registry(htpasswd=("ci", "right-pass"))
    digests = write_layout(tmp_path / "layout", "1", ["linux/amd64"])
    push(tmp_path / "layout", "1", f"{reg.host}/private/app:1", creds=("ci", "right-pass"))
    ref = Reference.parse(f"{reg.host}/private/app:1")

    with pytest.raises(RegistryError, match=r"authentication failed for .*\(no credentials in "):
        client()[0].manifest(ref)
    login(tmp_path, reg.host, "ci", "wrong-pass")
    with pytest.raises(RegistryError) as e:
        client()[0].manifest(ref)
    assert str(e.value) == (f"image {ref}: authentication failed for {reg.host}: "
                            f"check credentials (docker login {reg.host})")
    login(tmp_path, reg.host, "ci", "right-pass")
    store = BlobStore(tmp_path / "store")
    pulled = _pull_all(client()[0], ref, store)
    assert pulled.digest == digests["linux/amd64"]
    assert all(store.has(d.digest) for d in (pulled.config, *pulled.layers))


@pytest.mark.real
def test_real_registry_multi_arch_index(real_registry, tmp_path):
    reg = real_registry()
    digests = write_layout(tmp_path / "layout", "multi", ["linux/arm64", "linux/amd64"])
    push(tmp_path / "layout", "multi", f"{reg.host}/multi:1")
    ref = Reference.parse(f"{reg.host}/multi:1")
    store = BlobStore(tmp_path / "store")
    for platform in ("linux/amd64", "linux/arm64"):
        pulled = _pull_all(client(platform=platform)[0], ref, store)
        assert (pulled.digest, pulled.index_digest) == (digests[platform], digests["index"])
        assert json.loads(store.read(pulled.config.digest))["architecture"] == platform.split("/")[1]


@pytest.mark.real
def test_real_registry_tls(real_registry, tmp_path):
    reg = real_registry(tls=True)
    write_layout(tmp_path / "layout", "1", ["linux/amd64"])
    push(tmp_path / "layout", "1", f"{reg.host}/secure:1")
    ref = Reference.parse(f"{reg.host}/secure:1")
    with pytest.raises(RegistryError, match=rf"^cannot reach registry {reg.host}: TLS certificate verify failed"):
        client()[0].manifest(ref)
    pulled = client(ca_cert=reg.ca_cert)[0].manifest(ref)
    assert pulled.media_type == OCI_MANIFEST
    # A host marked insecure is still reached over TLS, without verifying its certificate.
    assert client(insecure={reg.host})[0].manifest(ref).digest == pulled.digest
