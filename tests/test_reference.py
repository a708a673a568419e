import pytest

from ociasm.errors import OciasmError
from ociasm.reference import Reference, api_host, parse_mirrors

D = "sha256:" + "ab" * 32

GOOD = [
    # text, registry, repository, tag, digest, canonical
    ("python", "docker.io", "library/python", "latest", None, "docker.io/library/python:latest"),
    ("python:3.11-slim", "docker.io", "library/python", "3.11-slim", None, "docker.io/library/python:3.11-slim"),
    ("library/python:3.9", "docker.io", "library/python", "3.9", None, "docker.io/library/python:3.9"),
    ("docker.io/python", "docker.io", "library/python", "latest", None, "docker.io/library/python:latest"),
    ("index.docker.io/library/python:3", "docker.io", "library/python", "3", None, "docker.io/library/python:3"),
    ("registry-1.docker.io/r8/cog", "docker.io", "r8/cog", "latest", None, "docker.io/r8/cog:latest"),
    ("Index.Docker.IO/python", "docker.io", "library/python", "latest", None, "docker.io/library/python:latest"),
    ("nvidia/cuda:12.1.1-cudnn8-runtime-ubuntu22.04", "docker.io", "nvidia/cuda",
     "12.1.1-cudnn8-runtime-ubuntu22.04", None, "docker.io/nvidia/cuda:12.1.1-cudnn8-runtime-ubuntu22.04"),
    ("r8.im/user/model", "r8.im", "user/model", "latest", None, "r8.im/user/model:latest"),
    ("localhost:5000/base:v1", "localhost:5000", "base", "v1", None, "localhost:5000/base:v1"),
    ("localhost/base", "localhost", "base", "latest", None, "localhost/base:latest"),
    ("127.0.0.1:5000/a/b/c:t", "127.0.0.1:5000", "a/b/c", "t", None, "127.0.0.1:5000/a/b/c:t"),
    ("[::1]:5000/img:1", "[::1]:5000", "img", "1", None, "[::1]:5000/img:1"),
    ("ghcr.io/org/img-name_x.y__z:TAG_1", "ghcr.io", "org/img-name_x.y__z", "TAG_1", None,
     "ghcr.io/org/img-name_x.y__z:TAG_1"),
    (f"python@{D}", "docker.io", "library/python", None, D, f"docker.io/library/python@{D}"),
    (f"python:3.11@{D}", "docker.io", "library/python", "3.11", D, f"docker.io/library/python:3.11@{D}"),
    (f"localhost:5000/x@{D}", "localhost:5000", "x", None, D, f"localhost:5000/x@{D}"),
    ("MyRegistry/img", "MyRegistry", "img", "latest", None, "MyRegistry/img:latest"),
    ("a--b/c", "docker.io", "a--b/c", "latest", None, "docker.io/a--b/c:latest"),
    ("foo:5000", "docker.io", "library/foo", "5000", None, "docker.io/library/foo:5000"),
]


@pytest.mark.parametrize("text,registry,repository,tag,digest,canonical", GOOD)
def test_parse(text, registry, repository, tag, digest, canonical):
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert str(ref) == canonical
    assert Reference.parse(str(ref)) == ref  # canonical form is a fixed point
    assert ref.identifier == (digest or tag)


BAD = [
    ("", "empty"),
    (" python", "whitespace"),
    ("Python", "lowercase"),
    ("python:", "tag"),
    ("python:-x", "tag"),
    ("python:" + "a" * 129, "tag"),
    ("python@sha256:abc", "digest"),
    ("python@md5:" + "a" * 32, "digest"),
    ("python@" + D.upper(), "digest"),
    ("https://ghcr.io/org/img", "scheme"),
    ("ghcr.io/", "path component"),
    ("ghcr.io//img", "path component"),
    ("img_/x", "path component"),
    ("-bad.example.com/img", "registry host"),
    ("a/" + "b" * 260, "longer than 255"),
]


@pytest.mark.parametrize("text,fragment", BAD)
def test_parse_rejects(text, fragment):
    with pytest.raises(OciasmError) as e:
        Reference.parse(text)
    message = str(e.value)
    assert message.startswith(f"invalid image reference {text!r}: ")
    assert fragment in message
    assert "\n" not in message


def test_api_host_of_docker_hub():
    assert api_host("docker.io") == "registry-1.docker.io"
    assert api_host("localhost:5000") == "localhost:5000"


def test_parse_mirrors_flags_override_env():
    mirrors = parse_mirrors(["docker.io=127.0.0.1:5001"],
                            "index.docker.io=localhost:5000, ghcr.io=mirror.example.com ,")
    assert mirrors == {"docker.io": "127.0.0.1:5001", "ghcr.io": "mirror.example.com"}
    assert parse_mirrors([], None) == {}


@pytest.mark.parametrize("entry", ["docker.io", "docker.io=", "=localhost:5000",
                                   "docker.io=http://localhost:5000", "docker.io=host/path"])
def test_parse_mirrors_rejects(entry):
    with pytest.raises(OciasmError, match=r"invalid registry mirror .*REGISTRY=HOST\[:PORT\]"):
        parse_mirrors([entry], None)
