"""Pulling from a registry over the distribution (OCI) API v2: manifests and verified blobs.

Modelled on go-containerregistry's remote transport: a request that gets a 401 reads the
`WWW-Authenticate` challenge, answers it (Basic, or a bearer token from the realm, anonymous
or with Docker-config credentials) and is sent again; tokens are cached per (host, scopes),
so a token that expires mid-push is replaced on the next 401. Plain HTTP is used only for
loopback hosts and hosts the user marked insecure, and only when they do not speak TLS; HTTPS
trusts the system CAs plus an optional `--ca-cert`. Every pulled byte is checked against the
digest it was announced under before it reaches the blob store.

`request` is the transport that `push` builds the upload protocol on: the same auth, retries
and TLS, with push scopes (`pull,push` on the target, `pull` on a mount source) and request
bodies made afresh for every attempt.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re
import ssl
import threading
import time
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator, NoReturn, Union
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InsecureRequestWarning

from .auth import IDENTITY_TOKEN_USER, docker_config_credentials, docker_config_path
from .errors import DigestMismatch, OciasmError, RegistryError
from .image import DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST, Descriptor
from .progress import Progress
from .reference import SHA256, Reference, api_host
from .store import CHUNK, BlobStore, sha256_digest

# A request body: bytes, or a zero-argument callable making a fresh iterable of chunks (with
# len()), called again for every attempt, so retries and auth challenges can resend a stream.
Body = Union[bytes, Callable[[], Iterable[bytes]], None]

ACCEPT = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST))
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
MAX_MANIFEST = 4 << 20  # containerd's limit: a manifest is metadata, never this big
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
TIMEOUT = (10.0, 60.0)  # connect, read (between bytes)
USER_AGENT = "ociasm"


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@contextmanager
def _unverified() -> Iterator[None]:
    """Silence urllib3's warning for hosts the user chose to mark insecure."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureRequestWarning)
        yield


def _reason(exc: BaseException) -> str:
    """A short cause for a connection failure, without the URL soup requests wraps it in."""
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError) or "SSL" in text:
        m = re.search(r"certificate verify failed: ([^(\"')]+)", text)
        return f"TLS certificate verify failed: {m.group(1).strip()}" if m else "TLS handshake failed"
    if isinstance(exc, requests.exceptions.Timeout):
        return "timed out"
    m = re.findall(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if m:
        return m[-1].strip().lower()
    return type(exc).__name__


def error_detail(resp: requests.Response) -> tuple[str, str]:
    """(code, message) of the first error in a distribution error body, if there is one."""
    try:
        first = resp.json()["errors"][0]
        return str(first.get("code", "")), " ".join(str(first.get("message", "")).split())[:200]
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return "", ""


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = {k.lower(): (q if q else v) for k, q, v in re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]*))', rest)}
    return scheme.lower(), params


def _merge_scopes(scopes: list[str]) -> list[str]:
    """One scope per resource (in first-seen order) with the union of the actions asked for it."""
    merged: dict[str, list[str]] = {}
    for scope in scopes:
        resource, _, actions = scope.rpartition(":")
        if not resource:  # not type:name:actions; pass it on as the registry gave it
            merged.setdefault(scope, [])
            continue
        have = merged.setdefault(resource, [])
        have += [a for a in actions.split(",") if a and a not in have]
    return [f"{r}:{','.join(sorted(a))}" if a else r for r, a in merged.items()]


def _parse_platform(text: str) -> tuple[str, str, str | None]:
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise OciasmError(f"invalid platform {text!r}: expected os/arch[/variant], e.g. linux/amd64")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def _platform_text(p: dict) -> str:
    return "/".join(x for x in (p.get("os", "?"), p.get("architecture", "?"), p.get("variant")) if x)


class RegistryUnreachable(RegistryError):
    """No answer: the connection failed or timed out (after the retries the request allowed)."""


class _TooLong(Exception):
    """A blob stream ran past its descriptor's size: stop reading rather than fill the disk."""


class _VerifiedStream:
    """A blob read from a response: hashed as it is read, cut off when longer than announced,
    and a DigestMismatch at its end unless it matched."""

    def __init__(self, resp: requests.Response, desc: Descriptor, what: str) -> None:
        self._resp, self._desc, self._what = resp, desc, what
        self._chunks = resp.iter_content(CHUNK)
        self._hash = hashlib.sha256()
        self._size = 0
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        while not self._buf:
            try:
                chunk = next(self._chunks, None)
            except (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError) as e:
                raise RegistryError(f"{self._what}: connection lost ({_reason(e)})") from None
            if chunk is None:
                if self._size != self._desc.size or "sha256:" + self._hash.hexdigest() != self._desc.digest:
                    raise DigestMismatch(f"{self._what} did not match its digest")
                return b""
            self._size += len(chunk)
            if self._size > self._desc.size:
                raise DigestMismatch(f"{self._what} is longer than the {self._desc.size} bytes "
                                     f"its descriptor announces")
            self._hash.update(chunk)
            self._buf = chunk
        n = len(self._buf) if n < 0 else n
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def close(self) -> None:
        self._resp.close()

    def __enter__(self) -> "_VerifiedStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class PulledManifest:
    reference: Reference
    digest: str
    index_digest: str | None
    media_type: str
    raw: bytes
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True)
class _Target:
    """Where requests for a reference go: the host contacted (a mirror or the registry itself),
    and the access they need: `pull`, or `pull,push` plus `pull` on a mount's source repository."""

    ref: Reference
    host: str
    mirrored: bool
    push: bool = False
    mount_from: str | None = None

    @property
    def registry_name(self) -> str:
        return self.host if self.mirrored else self.ref.registry

    @property
    def scopes(self) -> tuple[str, ...]:
        own = f"repository:{self.ref.repository}:{'pull,push' if self.push else 'pull'}"
        return (own, f"repository:{self.mount_from}:pull") if self.mount_from else (own,)


class _CAAdapter(HTTPAdapter):
    """HTTPS that trusts the system CAs, plus one extra CA certificate (a private registry's)."""

    def __init__(self, ca_cert: Path | None) -> None:
        self._context = ssl.create_default_context()
        if ca_cert is not None:
            self._context.load_verify_locations(cafile=str(ca_cert))
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs["ssl_context"] = self._context
        return super().init_poolmanager(*args, **kwargs)


class RegistryClient:
    def __init__(self, *, mirrors: dict[str, str] | None = None, insecure: set[str] | frozenset = frozenset(),
                 progress: Progress, ca_cert: Path | None = None, platform: str = "linux/amd64",
                 tries: int = 3, backoff: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._mirrors = dict(mirrors or {})
        self._insecure = frozenset(insecure)
        self._progress = progress
        self._platform = _parse_platform(platform)
        self._tries, self._backoff, self._sleep = max(1, tries), backoff, sleep
        self._session = requests.Session()
        self._session.headers["User-Agent"] = USER_AGENT
        if ca_cert is not None and not Path(ca_cert).is_file():
            raise OciasmError(f"CA certificate {ca_cert} does not exist")
        try:
            self._session.mount("https://", _CAAdapter(Path(ca_cert) if ca_cert else None))
        except ssl.SSLError:
            raise OciasmError(f"CA certificate {ca_cert} is not a PEM certificate") from None
        for host in self._insecure:  # their own adapter: verification is off for them alone
            self._session.mount(f"https://{host}/", HTTPAdapter())
        self._bases: dict[str, str] = {}                         # host -> scheme://host
        self._auth: dict[tuple[str, str], str] = {}               # (host, scopes) -> Authorization
        self._used_credentials: set[str] = set()                  # hosts we sent credentials to
        self._lock = threading.Lock()  # pushes send from several threads: one probe, one token fetch

    # ---- public API -------------------------------------------------------------------------

    def manifest(self, ref: Reference) -> PulledManifest:
        """The manifest for this machine's platform; an index is resolved to its matching entry."""
        target = self._target(ref)
        raw, media_type = self._get_manifest(target, ref.identifier)
        digest = sha256_digest(raw)
        if ref.digest and digest != ref.digest:
            raise DigestMismatch(f"manifest of image {ref} from {target.host} has digest {digest}: "
                                 f"not the digest the reference names")
        index_digest = None
        if media_type in INDEX_TYPES:
            index_digest = digest
            chosen = self._select_platform(target, json.loads(raw))
            raw, media_type = self._get_manifest(target, chosen.digest)
            digest = sha256_digest(raw)
            if digest != chosen.digest:
                raise DigestMismatch(f"manifest {chosen.digest} of image {ref} from {target.host} "
                                     f"arrived with digest {digest}: not used")
            if media_type not in MANIFEST_TYPES:
                raise RegistryError(f"image {ref}: the {self._platform_name} entry of its index is "
                                    f"{media_type}, not an image manifest")
        doc = json.loads(raw)
        try:
            config = Descriptor.from_json(doc["config"])
            layers = tuple(Descriptor.from_json(layer) for layer in doc.get("layers") or ())
        except (KeyError, TypeError, ValueError):
            raise RegistryError(f"manifest {digest} of image {ref} is malformed: no valid config "
                                f"or layer descriptors") from None
        return PulledManifest(ref, digest, index_digest, media_type, raw, config, layers)

    def fetch_blob(self, ref: Reference, desc: Descriptor, store: BlobStore) -> None:
        """Stream one blob into the store, verified; a no-op when the store already has it."""
        if store.has(desc.digest):
            return
        target = self._target(ref)
        path = f"/v2/{ref.repository}/blobs/{desc.digest}"
        for attempt in range(self._tries):
            resp = self._request(target, "GET", path, stream=True)
            if resp.status_code != 200:
                self._raise_status(resp, target, f"blob {desc.digest} of image {ref}")
            try:
                with resp, self._progress.task(f"pull {desc.digest[7:19]}", total=desc.size) as task, \
                        store.writer(expected=desc.digest) as writer:
                    for chunk in resp.iter_content(CHUNK):
                        if writer.size + len(chunk) > desc.size:
                            raise _TooLong()
                        writer.write(chunk)
                        task.advance(len(chunk))
                return
            except _TooLong:
                raise DigestMismatch(f"blob {desc.digest} of image {ref} from {target.host} is longer than "
                                     f"the {desc.size} bytes its descriptor announces: not stored") from None
            except DigestMismatch:
                raise DigestMismatch(f"blob {desc.digest} of image {ref} from {target.host} did not match "
                                     f"its digest: not stored") from None
            except (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError) as e:
                if attempt + 1 == self._tries:
                    raise RegistryError(f"cannot reach registry {target.host}: {_reason(e)} "
                                        f"(while pulling blob {desc.digest} of image {ref})") from None
                self._sleep(self._backoff * 2 ** attempt)

    def open_blob(self, ref: Reference, desc: Descriptor) -> BinaryIO:
        """The blob's bytes straight from the registry, verified as they are read."""
        target = self._target(ref)
        resp = self._request(target, "GET", f"/v2/{ref.repository}/blobs/{desc.digest}", stream=True)
        if resp.status_code != 200:
            self._raise_status(resp, target, f"blob {desc.digest} of image {ref}")
        return _VerifiedStream(resp, desc, f"blob {desc.digest} of image {ref} from {target.host}")

    def host(self, ref: Reference, *, push: bool = False) -> str:
        """The host requests for `ref` go to: its registry's API host, or a mirror for pulls."""
        return self._target(ref, push=push).host

    def request(self, ref: Reference, method: str, path_or_url: str, *, push: bool = False,
                mount_from: str | None = None, headers: dict[str, str] | None = None,
                data: Body = None, retry: bool = True,
                timeout: tuple[float, float] = TIMEOUT) -> requests.Response:
        """One authenticated request about `ref`'s repository (`/v2/...` or an absolute upload URL).

        Pushes never go to a mirror. Retried on connection errors, 5xx and 429 unless `retry` is
        off (an upload chunk: only its sender knows where to resume); a 401 is answered once with
        fresh credentials. The caller reads the status (see `refused`).
        """
        return self._request(self._target(ref, push=push, mount_from=mount_from), method, path_or_url,
                             headers=headers, data=data, tries=None if retry else 1, timeout=timeout)

    def refused(self, resp: requests.Response, ref: Reference, what: str, *, push: bool = False) -> NoReturn:
        """Raise the one-line error for a response that is not the one `what` needed."""
        self._raise_status(resp, self._target(ref, push=push), what)
        raise AssertionError("unreachable")

    # ---- manifests ----------------------------------------------------------------------------

    @property
    def _platform_name(self) -> str:
        return "/".join(x for x in self._platform if x)

    def _get_manifest(self, target: _Target, identifier: str) -> tuple[bytes, str]:
        resp = self._request(target, "GET", f"/v2/{target.ref.repository}/manifests/{identifier}",
                             headers={"Accept": ACCEPT}, stream=True)
        with resp:
            if resp.status_code != 200:
                self._raise_status(resp, target, f"image {target.ref}")
            raw = bytearray()
            for chunk in resp.iter_content(CHUNK):
                raw += chunk
                if len(raw) > MAX_MANIFEST:
                    raise RegistryError(f"manifest of image {target.ref} from {target.host} is larger "
                                        f"than {MAX_MANIFEST >> 20} MiB: refusing it")
            announced = resp.headers.get("Docker-Content-Digest", "")
        if announced.startswith("sha256:") and announced != sha256_digest(raw):
            raise DigestMismatch(f"manifest of image {target.ref} from {target.host} does not hash to "
                                 f"the Docker-Content-Digest {announced} it was served with")
        try:
            doc = json.loads(raw)
        except ValueError:
            raise RegistryError(f"manifest of image {target.ref} from {target.host} is not JSON") from None
        header_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        media_type = (doc.get("mediaType") if isinstance(doc, dict) else None) or header_type
        if (isinstance(doc, dict) and doc.get("schemaVersion") == 1) or \
                media_type.startswith("application/vnd.docker.distribution.manifest.v1"):
            raise RegistryError(f"image {target.ref} has a Docker schema 1 manifest, which is no longer "
                                f"supported: re-push it with a current Docker or pick another tag")
        if media_type not in INDEX_TYPES | MANIFEST_TYPES:
            # An OCI manifest may omit mediaType; its shape then says what it is.
            media_type = OCI_INDEX if isinstance(doc, dict) and "manifests" in doc else \
                OCI_MANIFEST if isinstance(doc, dict) and "config" in doc else media_type
        if media_type not in INDEX_TYPES | MANIFEST_TYPES:
            raise RegistryError(f"image {target.ref}: unsupported manifest media type {media_type!r}")
        return bytes(raw), media_type

    def _select_platform(self, target: _Target, index: dict) -> Descriptor:
        want_os, want_arch, want_variant = self._platform
        seen = []
        for entry in index.get("manifests") or ():
            p = entry.get("platform") or {}
            variant = p.get("variant") or ("v8" if p.get("architecture") == "arm64" else None)
            if p.get("os") == "unknown":  # attestations and other artifacts, not runnable images
                continue
            seen.append(_platform_text(p))
            if p.get("os") == want_os and p.get("architecture") == want_arch and \
                    (want_variant is None or variant == want_variant):
                chosen = Descriptor.from_json(entry)
                if not SHA256.fullmatch(chosen.digest):
                    raise RegistryError(f"image {target.ref}: its index names {self._platform_name} by "
                                        f"{chosen.digest!r}, not a sha256 digest")
                return chosen
        raise RegistryError(f"image {target.ref} has no {self._platform_name} variant "
                            f"(it has: {', '.join(seen) or 'none'})")

    # ---- transport ----------------------------------------------------------------------------

    def _target(self, ref: Reference, *, push: bool = False, mount_from: str | None = None) -> _Target:
        mirror = None if push else self._mirrors.get(ref.registry)
        return _Target(ref, mirror or api_host(ref.registry), mirror is not None, push, mount_from)

    def _base(self, host: str) -> str:
        with self._lock:
            return self._probe(host)

    def _probe(self, host: str) -> str:
        """scheme://host: HTTPS, except loopback or insecure hosts that do not speak TLS."""
        if host in self._bases:
            return self._bases[host]
        base = f"https://{host}"
        if host in self._insecure or is_loopback(host):
            try:
                # A loopback TLS handshake is instant; a plain server may never answer one.
                with self._quiet(host):
                    self._session.get(f"{base}/v2/", timeout=(5.0, 5.0), verify=host not in self._insecure).close()
            except requests.exceptions.SSLError as e:
                if "certificate verify failed" in str(e):
                    raise RegistryError(f"cannot reach registry {host}: {_reason(e)} (trust its CA with "
                                        f"--ca-cert FILE, or --insecure-registry {host})") from None
                base = f"http://{host}"
            except (requests.ConnectionError, requests.Timeout):
                base = f"http://{host}"
        self._bases[host] = base
        return base

    def _quiet(self, host: str):  # type: ignore[no-untyped-def]
        return _unverified() if host in self._insecure else nullcontext()

    def _send(self, method: str, url: str, host: str, *, data: Body = None, tries: int | None = None,
              **kwargs) -> requests.Response:  # type: ignore[no-untyped-def]
        """One request with retries on connection errors, 5xx and 429 (exponential backoff)."""
        kwargs.setdefault("timeout", TIMEOUT)
        if host in self._insecure:
            kwargs["verify"] = False
        tries = tries or self._tries
        for attempt in range(tries):
            last = attempt + 1 == tries
            delay = self._backoff * 2 ** attempt
            try:
                with self._quiet(host):
                    resp = self._session.request(method, url, data=data() if callable(data) else data, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as e:
                if last:
                    raise RegistryUnreachable(f"cannot reach registry {host}: {_reason(e)}") from None
                self._progress.warn(f"registry {host}: {_reason(e)}; retrying in {delay:.1f}s")
                self._sleep(delay)
                continue
            if resp.status_code not in RETRY_STATUS or last:
                return resp
            after = resp.headers.get("Retry-After", "")
            if after.isdigit():
                delay = max(delay, min(float(after), 10.0))
            resp.close()
            self._progress.warn(f"registry {host} answered HTTP {resp.status_code} to {method}; "
                                f"retrying in {delay:.1f}s")
            self._sleep(delay)
        raise AssertionError("unreachable")

    def _request(self, target: _Target, method: str, path: str, *, headers: dict[str, str] | None = None,
                 data: Body = None, stream: bool = False, tries: int | None = None,
                 timeout: tuple[float, float] = TIMEOUT) -> requests.Response:
        """A request to the target's registry, authenticated as its challenge asks.

        `path` may be an absolute URL (an upload's Location); credentials go only to the target host.
        """
        url = path if "://" in path else self._base(target.host) + path
        ours = urlsplit(url).netloc == target.host
        key = (target.host, " ".join(target.scopes))
        for answered in (False, True):
            hdrs = dict(headers or {})
            if ours and key in self._auth:
                hdrs["Authorization"] = self._auth[key]
            resp = self._send(method, url, target.host, headers=hdrs, data=data, stream=stream,
                              tries=tries, timeout=timeout)
            if resp.status_code != 401 or answered or not ours:
                return resp
            challenge = resp.headers.get("WWW-Authenticate", "")
            resp.close()
            with self._lock:
                if self._auth.get(key) == hdrs.get("Authorization"):  # not yet renewed by another thread
                    self._auth.pop(key, None)
                    self._auth[key] = self._answer(target, challenge)
        raise AssertionError("unreachable")

    def _answer(self, target: _Target, challenge: str) -> str:
        """An Authorization header value that answers a registry's 401 challenge."""
        scheme, params = _parse_challenge(challenge)
        creds = docker_config_credentials(target.registry_name)
        if creds:
            self._used_credentials.add(target.host)
        if scheme == "basic":
            if not creds or creds[0] == IDENTITY_TOKEN_USER:
                self._auth_failed(target)
            return "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
        if scheme != "bearer" or not params.get("realm"):
            what = f"unsupported authentication {scheme!r}" if scheme else "authentication without a challenge"
            raise RegistryError(f"registry {target.host} asked for {what} for image {target.ref}")
        return "Bearer " + self._token(target, params, creds)

    def _token(self, target: _Target, params: dict[str, str], creds: tuple[str, str] | None) -> str:
        realm = params["realm"]
        realm_host = realm.split("://", 1)[-1].split("/", 1)[0]
        if creds and realm.startswith("http://") and not (is_loopback(realm_host) or realm_host in self._insecure):
            raise RegistryError(f"registry {target.host} wants credentials sent to a plain-HTTP token "
                                f"service {realm_host}: refusing (mark it insecure if you trust it)")
        # The challenge's scopes and ours: a mount needs pull on its source as well as push here.
        scopes = _merge_scopes([*params.get("scope", "").split(), *target.scopes])
        form: dict[str, str | list[str]] = {"service": params.get("service", ""), "scope": scopes}
        form = {k: v for k, v in form.items() if v}
        if creds and creds[0] == IDENTITY_TOKEN_USER:
            resp = self._send("POST", realm, realm_host, data={**form, "grant_type": "refresh_token",
                                                                "client_id": USER_AGENT, "refresh_token": creds[1]})
        else:
            resp = self._send("GET", realm, realm_host, params=form, auth=creds)
        with resp:
            if resp.status_code in (401, 403):
                self._auth_failed(target)
            if resp.status_code != 200:
                raise RegistryError(f"token service {realm_host} answered HTTP {resp.status_code} "
                                    f"for image {target.ref}")
            try:
                body = resp.json()
                token = body.get("token") or body.get("access_token")
            except (ValueError, AttributeError):
                token = None
        if not token:
            raise RegistryError(f"token service {realm_host} gave no token for image {target.ref}")
        return token

    # ---- errors -------------------------------------------------------------------------------

    def _auth_failed(self, target: _Target) -> None:
        reg = target.registry_name
        if target.host in self._used_credentials:
            raise RegistryError(f"image {target.ref}: authentication failed for {reg}: "
                                f"check credentials (docker login {reg})")
        raise RegistryError(f"image {target.ref}: authentication failed for {reg} (no credentials in "
                            f"{docker_config_path()}): check the image name, or log in (docker login {reg})")

    def _raise_status(self, resp: requests.Response, target: _Target, what: str) -> None:
        code, message = error_detail(resp)
        resp.close()
        where = f" on mirror {target.host}" if target.mirrored else ""
        if resp.status_code in (401, 403):
            self._auth_failed(target)
        if resp.status_code == 404:
            reason = code.lower().replace("_", " ") or "not found"
            if what.startswith("image "):
                hint = ("check the repository name" if code == "NAME_UNKNOWN" else
                        "check the digest" if target.ref.digest else "check the tag")
                raise RegistryError(f"{what} not found{where} ({reason}): {hint}")
            raise RegistryError(f"{what} not found{where} ({reason}): the registry lost a blob its manifest names")
        raise RegistryError(f"registry {target.host} answered HTTP {resp.status_code} for {what}"
                            + (f": {message}" if message else ""))


@dataclass(frozen=True)
class RemoteLayer:
    """A layer of a pulled image: read from the blob store once it is there, else streamed (verified)
    from its registry. Pushing to a registry needs its bytes only when it can be neither found
    nor mounted there, so a lazily pulled base costs no download and no disk."""

    descriptor: Descriptor
    diff_id: str
    reference: Reference
    client: RegistryClient = field(repr=False, compare=False)
    store: BlobStore = field(repr=False, compare=False)

    def open(self) -> BinaryIO:
        if self.store.has(self.descriptor.digest):
            return self.store.open(self.descriptor.digest)
        return self.client.open_blob(self.reference, self.descriptor)  # type: ignore[return-value]
