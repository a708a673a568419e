""".dockerignore with Docker's semantics (moby/patternmatcher), not gitignore's.

The differences matter: `foo` matches only `./foo` (gitignore: any `foo`), `*` never
crosses `/`, `**` crosses any number of directories, a pattern that matches a directory
excludes everything below it, `!` re-includes, and the last matching pattern wins.
pathspec's gitwildmatch implements gitignore, hence this small matcher.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import OciasmError


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    exclusion: bool  # a `!` pattern: re-includes what earlier patterns excluded


def _compile(pattern: str, source: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):  # "**/" also matches zero directories
                out.append("(?:.*/)?")
                i += 1
            else:
                out.append(".*")
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1:i + 2] in ("!", "^") else i + 1)
            if end < 0:
                raise OciasmError(f"{source}: invalid pattern {pattern!r}: unclosed '['")
            body = pattern[i + 1:end]
            if body[:1] in ("!", "^"):
                body = "^" + body[1:]
            out.append(f"[{body}]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


class IgnoreMatcher:
    def __init__(self, lines: list[str], source: str = ".dockerignore") -> None:
        self.patterns: list[_Pattern] = []
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exclusion = line.startswith("!")
            if exclusion:
                line = line[1:].strip()
            line = posixpath.normpath(line).lstrip("/") or "."
            self.patterns.append(_Pattern(_compile(line, source), exclusion))
        self.has_exclusions = any(p.exclusion for p in self.patterns)

    @classmethod
    def for_project(cls, project_dir: Path) -> "IgnoreMatcher":
        path = project_dir / ".dockerignore"
        try:
            return cls(path.read_text().splitlines(), str(path))
        except FileNotFoundError:
            return cls([])
        except (OSError, UnicodeDecodeError) as e:
            raise OciasmError(f"cannot read {path}: {e}") from None

    def ignored(self, rel_path: str) -> bool:
        """Whether `rel_path` (relative, '/'-separated) is excluded: by itself or by a parent."""
        candidates = [rel_path]
        parent = posixpath.dirname(rel_path)
        while parent:
            candidates.append(parent)
            parent = posixpath.dirname(parent)
        ignored = False
        for pattern in self.patterns:
            if any(pattern.regex.match(c) for c in candidates):
                ignored = not pattern.exclusion
        return ignored
