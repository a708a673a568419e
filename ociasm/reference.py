"""Image references: `[registry/]repository[:tag][@digest]`, normalised the way Docker does.

"python" means docker.io/library/python:latest; Docker Hub's aliases all become "docker.io",
so one image has one spelling in caches and messages. The grammar follows the distribution
project's reference grammar (lowercase path components, 128-character tags, sha256 digests).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import OciasmError

DOCKER_HUB = "docker.io"
DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
# Docker Hub's distribution API lives on a different host from its name.
DOCKER_HUB_API = "registry-1.docker.io"

_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?")
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
SHA256 = re.compile(r"sha256:[a-f0-9]{64}")
_MAX_NAME = 255


def normalise_registry(host: str) -> str:
    return DOCKER_HUB if host.lower() in DOCKER_HUB_ALIASES else host


def api_host(registry: str) -> str:
    """The host that serves `/v2/` for a (normalised) registry name."""
    return DOCKER_HUB_API if registry == DOCKER_HUB else registry


def _looks_like_domain(first: str) -> bool:
    # Docker's rule: a first component is a registry if it has a dot, a port or is
    # "localhost"; an uppercase letter also marks it, as repositories are lowercase.
    return "." in first or ":" in first or first == "localhost" or first.lower() != first


@dataclass(frozen=True)
class Reference:
    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, text: str) -> "Reference":
        def bad(reason: str) -> OciasmError:
            return OciasmError(f"invalid image reference {text!r}: {reason}")

        if not text or text != text.strip():
            raise bad("empty or surrounded by whitespace")
        if "://" in text:
            raise bad("drop the scheme (write host/repository:tag)")
        name, at, digest = text.partition("@")
        if at:
            if not SHA256.fullmatch(digest):
                raise bad("digest must be sha256: followed by 64 lowercase hex digits")
        tag: str | None = None
        slash = name.rfind("/")
        colon = name.rfind(":")
        if colon > slash:
            name, tag = name[:colon], name[colon + 1:]
            if not _TAG.fullmatch(tag):
                raise bad("tag must be 1-128 of letters, digits, '_', '.', '-' and not start with '.' or '-'")
        if not name:
            raise bad("missing repository name")

        first, sep, rest = name.partition("/")
        if sep and _looks_like_domain(first):
            if not _DOMAIN.fullmatch(first):
                raise bad(f"registry host {first!r} is not a valid host[:port]")
            registry, repository = normalise_registry(first), rest
        else:
            registry, repository = DOCKER_HUB, name
        if len(name) > _MAX_NAME:
            raise bad(f"name is longer than {_MAX_NAME} characters")
        for component in repository.split("/"):
            if not _COMPONENT.fullmatch(component):
                if component.lower() != component:
                    raise bad("repository name must be lowercase")
                raise bad(f"repository path component {component!r} is empty or has invalid characters")
        if registry == DOCKER_HUB and "/" not in repository:
            repository = f"library/{repository}"
        if tag is None and not at:
            tag = "latest"
        return cls(registry, repository, tag, digest if at else None)

    @property
    def name(self) -> str:
        """registry/repository, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def identifier(self) -> str:
        """What the manifest endpoint is asked for: the digest when pinned, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


MIRRORS_ENV = "OCIASM_REGISTRY_MIRRORS"


def parse_mirrors(flags: list[str], env: str | None) -> dict[str, str]:
    """Mirror map from `REGISTRY=HOST[:PORT]` entries: the env list first, then flags (flags win)."""
    entries = [e.strip() for e in (env or "").split(",") if e.strip()] + list(flags)
    mirrors: dict[str, str] = {}
    for entry in entries:
        registry, eq, mirror = entry.partition("=")
        registry, mirror = registry.strip(), mirror.strip()
        if not eq or not _DOMAIN.fullmatch(registry) or not _DOMAIN.fullmatch(mirror):
            raise OciasmError(f"invalid registry mirror {entry!r} (from --registry-mirror or {MIRRORS_ENV}): "
                              "expected REGISTRY=HOST[:PORT], e.g. docker.io=localhost:5000")
        mirrors[normalise_registry(registry)] = mirror
    return mirrors
