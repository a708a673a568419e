"""The user's Python requirements, read as Cog reads them, for the dependencies layer.

`python_requirements` files (with `-r` includes inlined) or `python_packages` become plain
lines for uv: comments dropped, cog/coglet dropped with Cog's warning (the build installs its
own), local artifacts and paths made absolute and checked to lie inside the project, index
options kept on their own lines. Messages name the requirements file and line.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Iterable

from .config import SDK_PRERELEASE, CogConfig, print_warning, is_within
from .errors import OciasmError

_ARTIFACT_SUFFIXES = (".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
_PACKAGE_NAME = re.compile(r"[A-Za-z0-9_.\-]+(?:\[[^\]]+\])?")
_MANAGED = {"cog": "COG_SDK_WHEEL", "coglet": "COGLET_WHEEL"}
# Options whose value is a path or URL: (short, long).
_INCLUDE = ("-r", "--requirement")
_CONSTRAINT = ("-c", "--constraint")
_FIND_LINKS = ("-f", "--find-links")
_EDITABLE = ("-e", "--editable")
# Index options pip refuses after a requirement on the same line; Cog splits them out.
_INLINE_INDEX = re.compile(r"\s+(--extra-index-url|--index-url|--find-links|-f|-i)(?:=|\s+)(\S+)")


def _is_artifact(path: str) -> bool:
    return path.lower().endswith(_ARTIFACT_SUFFIXES)


def _is_remote(value: str) -> bool:
    return "://" in value or value.startswith("git+")


def _is_local_path(value: str) -> bool:
    return value.startswith(("/", "./", "../"))


def _strip_comment(line: str) -> str:
    """pip's rule: `#` starts a comment at the line start or after whitespace (URLs keep `#egg=`)."""
    match = re.search(r"(^|\s)#", line)
    return (line[:match.start()] if match else line).strip()


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """Lines joined across trailing backslashes, with the number of the line they start on."""
    pending, start = "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        yield start, pending + line
        pending = ""
    if pending:
        yield start, pending


def _option(line: str, names: tuple[str, str]) -> str | None:
    """The value of `-x VALUE`, `-xVALUE`, `--long VALUE` or `--long=VALUE`, if the line is that option."""
    short, long = names
    for name in (long, short):
        if line == name:
            return ""
        rest = line[len(name):]
        if not line.startswith(name) or not rest:
            continue
        if rest[0] in " \t" or (name == long and rest[0] == "="):
            return rest[1:].strip()
        if name == short and not rest.startswith("-"):
            return rest.strip()
    return None


def _sdk_source(config: CogConfig, package: str) -> str:
    """What the build installs instead of a user's cog/coglet line, in Cog's words."""
    sdk = config.build.sdk_version if package == "cog" else None
    if sdk == SDK_PRERELEASE:
        return f"latest pre-release {package} from PyPI"
    if sdk:
        return f"{package}=={sdk} from PyPI"
    return f"latest {package} from PyPI"


class _Requirements:
    """Reads one project's requirements into lines an installer on the host can use."""

    def __init__(self, config: CogConfig, warn: Callable[[str], None]) -> None:
        self.config, self.warn = config, warn
        self.root = config.project_dir.resolve()
        self.lines: list[str] = []
        self.reading: list[Path] = []

    def label(self, path: Path) -> str:
        path = path.parent.resolve() / path.name
        return os.path.relpath(path, self.root) if is_within(self.root, path) else str(path)

    def fail(self, where: str, message: str) -> None:
        raise OciasmError(f"{where}: {message}")

    def add(self, line: str) -> None:
        if line.startswith("-") and line in self.lines:
            return
        self.lines.append(line)

    def read_file(self, path: Path, where: str) -> None:
        if path.resolve() in self.reading:
            self.fail(where, f"{self.label(path)} includes itself")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as e:
            self.fail(where, f"cannot read {self.label(path)}: {e.strerror or e}")
        self.reading.append(path.resolve())
        for number, raw in _logical_lines(text):
            line = _strip_comment(raw)
            if line:
                self.entry(line, path.parent, f"{self.label(path)}:{number}")
        self.reading.pop()

    def local(self, value: str, base: Path, where: str, what: str) -> Path:
        """A local path given in a requirement: resolved (parent symlinks too) and inside the project."""
        if value.lower().startswith("file:"):
            self.fail(where, f"local file URL requirements are not supported: {value}")
        target = Path(value) if os.path.isabs(value) else base / value
        staged = target.parent.resolve() / target.name
        if not is_within(self.root, staged) or not is_within(self.root, target.resolve()):
            self.fail(where, f'{what} "{value}" must be inside the project directory')
        if not target.exists():
            self.fail(where, f'{what} "{value}" not found')
        return staged

    def entry(self, line: str, base: Path, where: str) -> None:
        if line.startswith("-"):
            self.option(line, base, where)
            return
        if line.lower().startswith("file:"):
            self.fail(where, f"local file URL requirements are not supported: {line}")
        name, at, target = line.partition("@")
        if at and _PACKAGE_NAME.fullmatch(name.strip()) and not _is_remote(target.strip()) \
                and (_is_local_path(target.strip()) or _is_artifact(target.strip())):
            self.fail(where, "local direct reference requirements (`name @ path`) are not supported; "
                             f"list the path directly instead: {line}")
        first = line.split()[0]
        if not _is_remote(first) and (_is_artifact(first) or _is_local_path(first)):
            self.artifact(line, base, where)
            return
        for option, value in _INLINE_INDEX.findall(line):
            self.option(f"{option} {value}", base, where)
        requirement = _INLINE_INDEX.sub("", line)
        package = _PACKAGE_NAME.match(requirement)
        managed = package and re.sub(r"[-_.]+", "-", package.group().split("[")[0]).lower()
        if managed in _MANAGED:
            self.warn(f"{where}: '{line}' found in requirements — overriding with "
                      f"{_sdk_source(self.config, managed)}. Remove it from requirements and use "
                      f"build.sdk_version in cog.yaml or {_MANAGED[managed]} to control the version.")
            return
        self.add(requirement)

    def artifact(self, line: str, base: Path, where: str) -> None:
        if ";" in line:
            self.fail(where, f"environment markers are not supported on local package artifact requirements: {line}")
        if line.endswith("]") and "[" in line:
            self.fail(where, f"extras are not supported on local package artifact requirements: {line}")
        if len(line.split()) > 1:
            self.fail(where, f"local package artifact requirements do not support inline options or hashes: {line}")
        if not _is_artifact(line):
            self.fail(where, f'local package requirement "{line}" is not a supported wheel or source archive')
        path = self.local(line, base, where, "local Python package artifact")
        if not path.resolve().is_file():
            self.fail(where, f'local Python package artifact "{line}" must be a regular file')
        self.add(str(path))

    def option(self, line: str, base: Path, where: str) -> None:
        include = _option(line, _INCLUDE)
        if include is not None:
            if _is_remote(include):
                self.add(f"--requirement {include}")
            else:
                self.read_file(self.local(include, base, where, "requirements file"), where)
            return
        editable = _option(line, _EDITABLE)
        if editable is not None:
            if editable in (".", "./"):
                return  # the project itself: it is the code layer, as in Cog
            if not _is_remote(editable):
                self.fail(where, f"editable local requirements are not supported: {line}; "
                                 "list a wheel or source archive inside the project instead")
            self.add(line)
            return
        for names, what in ((_CONSTRAINT, "constraints file"), (_FIND_LINKS, "find-links location")):
            value = _option(line, names)
            if value is not None and value and not _is_remote(value):
                self.add(f"{names[1]} {self.local(value, base, where, what)}")
                return
        self.add(line)


def requirement_lines(config: CogConfig, warn: Callable[[str], None] = print_warning) -> list[str]:
    """The user's requirements as lines for the installer: comments dropped, `-r` files inlined,
    cog/coglet dropped with a warning, local artifacts and paths made absolute (inside the project),
    index options kept as their own lines."""
    reader = _Requirements(config, warn)
    build = config.build
    if build.python_requirements:
        path = config.project_dir / build.python_requirements
        reader.read_file(path, config.where("build.python_requirements"))
    else:
        for i, package in enumerate(build.python_packages):
            line = _strip_comment(package)
            if line:
                reader.entry(line, config.project_dir, config.where(f"build.python_packages[{i}]"))
    return reader.lines


