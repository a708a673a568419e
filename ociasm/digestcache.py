"""Files known by what `stat` says about them: (path, size, mtime_ns, inode, device).

Digests computed from a set of files are recorded under a recipe key made of those files'
stat keys (plus whatever else decides the result), so an unchanged file costs one `stat`,
never a read. When the bytes are finally read, the file is checked against the stat taken
when the build planned it (the ctime too, which no tool can set back): a file that changed
in between, or changes while it is read, fails the build with a message naming it, never a
wrong digest.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import OciasmError


class FileChanged(OciasmError):
    """A file's bytes are not the ones the build planned or hashed."""


@dataclass(frozen=True)
class FileStat:
    path: str           # absolute, as opened
    size: int
    mtime_ns: int
    inode: int
    device: int
    ctime_ns: int       # checked, not part of the key: chmod or a hard link must not cost a re-read

    @classmethod
    def of(cls, path: Path | str) -> "FileStat":
        try:
            st = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            raise FileChanged(f"{path} disappeared while the image was being built; build again") from None
        return cls.from_stat(str(path), st)

    @classmethod
    def from_stat(cls, path: str, st: os.stat_result) -> "FileStat":
        return cls(path, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev, st.st_ctime_ns)

    @property
    def key(self) -> tuple[str, int, int, int, int]:
        return self.path, self.size, self.mtime_ns, self.inode, self.device

    def check(self, st: os.stat_result, when: str) -> None:
        """Raise FileChanged unless `st` (an fstat of the open file) is the planned file."""
        if FileStat.from_stat(self.path, st) != self:
            raise FileChanged(f"{self.path} changed {when}; build again")

