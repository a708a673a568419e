"""system_packages and tini without an engine, from Debian's mirror onto the fixture base; the
image is loaded into the real engine afterwards and the packages run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from clirun import built_digest, run_ociasm
from fixtures import engine
from realenv import NO_ENGINE

pytestmark = pytest.mark.real

COG_YAML = 'build:\n  python_version: "3.11"\n  system_packages: [jq, cowsay]\npredict: "predict.py:Predictor"\n'


def test_system_packages_install_without_an_engine(hello: Path, tmp_path: Path, fixture_registry,
                                                    docker_engine: str) -> None:
    (hello / "cog.yaml").write_text(COG_YAML)
    archive = tmp_path / "image.tar"
    tag = "ociasm-test-apt:e2e"
    proc = run_ociasm("build", "-t", tag, "--output", f"oci-archive:{archive}",
                      "--registry-mirror", f"docker.io={fixture_registry.host}", cwd=hello, env=NO_ENGINE)
    built_digest(proc)
    assert "installing in a container" not in proc.stderr
    engine.docker("load", "-i", str(archive))
    try:
        out = engine.docker("run", "--rm", tag, "sh", "-c",
                            "jq --version && /usr/games/cowsay hi && dpkg -l jq && ldconfig -p && "
                            "cat /etc/ld.so.conf.d/cog.conf && readlink /sbin/tini", timeout=120)
        assert "jq-1.6" in out and "< hi >" in out
        assert re.search(r"^ii  jq\s", out, re.M)
        assert "libjq.so.1 (libc6,x86-64)" in out  # the linker cache knows the new library
        assert "/usr/lib/python3.11/lib-dynload\n" in out and out.rstrip().endswith("/usr/bin/tini")
        config = json.loads(engine.docker("image", "inspect", tag))[0]["Config"]
        assert config["Entrypoint"] == ["/sbin/tini", "--"]
    finally:
        engine.docker("rmi", "--force", tag)
