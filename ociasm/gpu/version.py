"""Cog's loose version numbers (pkg/util/version): `major[.minor[.patch]][+metadata]`.

They are not PEP 440 versions: a missing patch matches any patch ("2.3" matches 2.3.1),
metadata after `+` is ignored by comparisons but kept by equality, and anything that does
not parse matches nothing. Resolution must compare exactly as Cog does to pick the same images.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int | None
    metadata: str

    @classmethod
    def parse(cls, text: str) -> "Version | None":
        number, _, metadata = text.partition("+")
        parts = number.split(".")
        if len(parts) > 3:
            return None
        try:
            values = [int(p) for p in parts]
        except ValueError:
            return None
        return cls(values[0], values[1] if len(values) > 1 else 0,
                   values[2] if len(values) > 2 else None, metadata)

    @property
    def key(self) -> tuple[int, int, int]:
        return self.major, self.minor, self.patch or 0


def _both(a: str, b: str) -> tuple[Version, Version] | None:
    va, vb = Version.parse(a), Version.parse(b)
    return (va, vb) if va and vb else None


def matches(a: str, b: str) -> bool:
    """Same major and minor, and the same patch when both name one."""
    pair = _both(a, b)
    if pair is None:
        return False
    va, vb = pair
    return (va.major, va.minor) == (vb.major, vb.minor) and \
        (va.patch is None or vb.patch is None or va.patch == vb.patch)


def greater(a: str, b: str) -> bool:
    pair = _both(a, b)
    return pair is not None and pair[0].key > pair[1].key


def equal(a: str, b: str) -> bool:
    pair = _both(a, b)
    if pair is None:
        return a == b
    return pair[0].key == pair[1].key and pair[0].metadata == pair[1].metadata


def greater_or_equal(a: str, b: str) -> bool:
    pair = _both(a, b)
    if pair is None:
        return a == b
    return greater(a, b) or equal(a, b)


def equal_minor(a: str, b: str) -> bool:
    pair = _both(a, b)
    return pair is not None and pair[0].key[:2] == pair[1].key[:2]


def strip_patch(text: str) -> str:
    v = Version.parse(text)
    return f"{v.major}.{v.minor}" if v else text


def strip_modifier(text: str) -> str:
    return text.split("+", 1)[0]


def sort_key(text: str) -> tuple[int, int, int]:
    """For sorting parseable versions the way Cog's Greater orders them."""
    v = Version.parse(text)
    return v.key if v else (0, 0, 0)
