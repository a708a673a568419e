"""Docker's .dockerignore semantics (moby/patternmatcher), which differ from gitignore's."""

import pytest

from ociasm.dockerignore import IgnoreMatcher
from ociasm.errors import OciasmError

CASES = [
    # (patterns, path, ignored)
    (["foo"], "foo", True),
    (["foo"], "a/foo", False),            # gitignore would match; Docker anchors at the root
    (["foo"], "foo/bar.py", True),        # a matched directory excludes what is below it
    (["*.pyc"], "x.pyc", True),
    (["*.pyc"], "pkg/x.pyc", False),      # `*` never crosses '/'
    (["**/*.pyc"], "pkg/deep/x.pyc", True),
    (["**/*.pyc"], "x.pyc", True),        # `**/` also matches zero directories
    (["data/**/*.tmp"], "data/a/b/c.tmp", True),
    (["data/**/*.tmp"], "data/c.tmp", True),
    (["data/**/*.tmp"], "other/c.tmp", False),
    (["*/temp*"], "a/temporary", True),
    (["*/temp*"], "a/b/temporary", False),
    (["temp?"], "temp1", True),
    (["temp?"], "temp12", False),
    (["[ab].txt"], "a.txt", True),
    (["[!ab].txt"], "a.txt", False),
    (["[!ab].txt"], "c.txt", True),
    (["*.md", "!README.md"], "README.md", False),
    (["*.md", "!README.md"], "NOTES.md", True),
    (["!README.md", "*.md"], "README.md", True),   # last match wins
    (["/secret.txt"], "secret.txt", True),        # a leading slash is the root
    (["./build"], "build/out.o", True),
    (["# comment", "", "  logs  "], "logs/a.log", True),
    (["\\#hash"], "#hash", True),
]


@pytest.mark.parametrize("patterns,path,ignored", CASES)
def test_docker_semantics(patterns: list[str], path: str, ignored: bool) -> None:
    assert IgnoreMatcher(patterns).ignored(path) is ignored


def test_exclusions_are_noted() -> None:
    assert IgnoreMatcher(["a", "!a/b"]).has_exclusions
    assert not IgnoreMatcher(["a"]).has_exclusions


def test_bad_pattern_names_the_file() -> None:
    with pytest.raises(OciasmError, match=r"^\.dockerignore: invalid pattern '\[ab': unclosed"):
        IgnoreMatcher(["[ab"])
