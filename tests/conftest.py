"""Session fixtures backed by real components: a loopback registry holding the test base image,
the Docker engine, and a fresh ociasm cache per test.

Where a component is missing, tests fail when CI=true (CI installs and starts everything through
.ci/run) and skip elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures import base, engine
from fixtures.registry import Registry, RunningRegistry, start_registry
from realenv import copy_model, require_tools, unavailable

AUTH = ("ociasm", "test-password")


@dataclass(frozen=True)
class FixtureRegistry:
    """A registry with the test base pushed as library/python:3.11-slim."""

    registry: Registry
    base_digest: str  # manifest digest of the pushed base
    auth: tuple[str, str] | None = None

    @property
    def host(self) -> str:
        return self.registry.host

    @property
    def url(self) -> str:
        return self.registry.url

    @property
    def ca_cert(self) -> Path | None:
        return self.registry.ca_cert

    @property
    def base_ref(self) -> str:
        return f"{self.host}/{base.REPOSITORY}:{base.TAG}"


@pytest.fixture(scope="session")
def base_layout() -> Path:
    """The test base as an OCI layout (cached across runs; built on a miss, ~30 s)."""
    require_tools("mmdebstrap")
    return base.build_layout()


@pytest.fixture(scope="session")
def fixture_registry(tmp_path_factory: pytest.TempPathFactory, base_layout: Path) -> Iterator[FixtureRegistry]:
    """Plain-HTTP loopback registry; reuses the one at $OCIASM_TEST_REGISTRY (host:port) if set."""
    require_tools("skopeo", "docker-registry")
    existing = os.environ.get("OCIASM_TEST_REGISTRY")
    registry = Registry(existing) if existing else start_registry(tmp_path_factory.mktemp("registry"))
    try:
        yield FixtureRegistry(registry, base.push(registry.host, layout=base_layout))
    finally:
        registry.stop()


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory, base_layout: Path) -> Iterator[FixtureRegistry]:
    """HTTPS (self-signed, trust `ca_cert`) + htpasswd registry (credentials `auth`) holding the base."""
    require_tools("skopeo", "docker-registry")
    with start_registry(tmp_path_factory.mktemp("auth-registry"), htpasswd=AUTH, tls=True) as registry:
        yield FixtureRegistry(registry, base.push(registry.host, creds=AUTH, layout=base_layout), AUTH)


@pytest.fixture
def registry_factory(tmp_path: Path) -> Iterator[Callable[..., RunningRegistry]]:
    """Starts extra empty registries for one test: `registry_factory(htpasswd=(u, p), tls=True)`;
    all are stopped when the test ends."""
    require_tools("docker-registry")
    started: list[RunningRegistry] = []

    def start(**options: object) -> RunningRegistry:
        started.append(start_registry(tmp_path / f"registry-{len(started)}", **options))
        return started[-1]

    try:
        yield start
    finally:
        for registry in started:
            registry.stop()


@pytest.fixture(scope="session")
def docker_engine() -> str:
    """The Docker client to use (`/usr/bin/docker`), once `docker info` answers. See fixtures.engine.serve
    for running a built image and POSTing /predictions."""
    problem = engine.engine_problem()
    if problem:
        unavailable(problem)
    return engine.DOCKER


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty OCIASM_CACHE_DIR, never the user's cache."""
    path = tmp_path / "ociasm-cache"
    monkeypatch.setenv("OCIASM_CACHE_DIR", str(path))
    return path


@pytest.fixture
def hello(tmp_path: Path) -> Path:
    """A private copy of fixtures/models/hello that a test may change."""
    return copy_model("hello", tmp_path)
