"""What dpkg does when it installs .deb files, done on the host into a scratch tree.

A `Database` is the image's dpkg state read from its layers (status, file lists, triggers,
diversions, path filters). `Install` unpacks packages the way `dpkg --unpack` would (files at
their paths through the image's directory symlinks, path-exclude filters applied) and writes
dpkg's bookkeeping so `dpkg -l`/`dpkg -L` inside the image know them. Whatever dpkg would
*run* cannot happen here: `container_reasons` names every package whose maintainer scripts or
triggers do real work, and such installs go to a container instead.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import posixpath
import re
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from ociasm.errors import OciasmError

from .rootfs import MemoryReader, member_path, piped_tar, resolve_parents
from .tarstream import Entry

DPKG = "var/lib/dpkg"
INFO = f"{DPKG}/info"
EXTENDED_STATES = "var/lib/apt/extended_states"
INSTALLED = "install ok installed"

# dpkg's order of status fields; others follow in the order the package gives them.
_FIELD_ORDER = ("Package", "Essential", "Protected", "Status", "Priority", "Section", "Installed-Size",
                "Origin", "Maintainer", "Bugs", "Architecture", "Multi-Arch", "Source", "Version",
                "Config-Version", "Replaces", "Provides", "Depends", "Pre-Depends", "Recommends",
                "Suggests", "Breaks", "Conflicts", "Enhances", "Conffiles", "Description")

# Packages whose trigger work only refreshes a cache the image can do without (ldconfig's is
# rebuilt by the ldconfig layer); any other interested package means dpkg must really run.
CACHE_ONLY_TRIGGERS = frozenset({"libc-bin", "man-db", "install-info", "hicolor-icon-theme",
                                 "fontconfig", "dbus"})
# debhelper snippets that do nothing on a fresh install in an image: byte-compiling, ldconfig,
# menu/icon/mime caches, and dpkg-maintscript-helper (it acts only on upgrades).
HARMLESS_SNIPPETS = frozenset({"dh_python3", "dh_python2", "dh_pypy", "dh_makeshlibs", "dh_installdeb",
                               "dh_installmenu", "dh_icons", "dh_installmime", "dh_installdocs"})
_SNIPPET = re.compile(r"^# Automatically added by (dh_[\w-]+).*?^# End automatically added section\n?",
                      re.M | re.S)
# The skeleton dh_make writes around #DEBHELPER#: shell options, a `case "$1"` that does nothing.
_BOILERPLATE = re.compile(r"""(
    \#!.* | set\s+-[eux]+ | set\s+-e\s+-u | exit\s+0 | exit\s+1 | : | true | ;; | esac | fi | \*\) |
    case\s+"?\$1"?\s+in | [\w|\s-]+\) |
    echo\s+.*(unknown\s+argument|called\s+with).*>&2 |
    if\s+\[\s+"?\$1"?\s+=\s+"?[\w-]+"?\s+\]\s*;\s*then
)\s*(\#.*)?$""", re.X)


Stanza = list[tuple[str, str]]


class NotDebian(OciasmError):
    """The image has no dpkg database to install packages into."""


class NeedsContainer(OciasmError):
    """Installing these packages needs dpkg itself to run in the image; `reasons` say why."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def parse_stanzas(text: str) -> list[Stanza]:
    """Deb822 paragraphs as ordered (field, value) pairs; continuation lines stay in the value."""
    stanzas: list[Stanza] = []
    current: Stanza = []
    for line in text.splitlines():
        if not line.strip():
            if current:
                stanzas.append(current)
            current = []
        elif line[0] in " \t" and current:
            name, value = current[-1]
            current[-1] = (name, f"{value}\n{line}")
        elif ":" in line:
            name, _, value = line.partition(":")
            current.append((name.strip(), value.lstrip()))
    if current:
        stanzas.append(current)
    return stanzas


def format_stanza(stanza: Stanza) -> str:
    return "".join(f"{name}: {value}\n" if value and not value.startswith("\n") else f"{name}:{value}\n"
                   for name, value in stanza)


def field_value(stanza: Stanza, name: str, default: str = "") -> str:
    return next((v for n, v in stanza if n.lower() == name.lower()), default)


@dataclass(frozen=True)
class Deb:
    """A downloaded package: its control stanza and control files (scripts, md5sums, triggers...)."""

    path: Path
    control: Stanza
    files: dict[str, bytes]

    @property
    def name(self) -> str:
        return field_value(self.control, "Package")

    @property
    def version(self) -> str:
        return field_value(self.control, "Version")

    @property
    def architecture(self) -> str:
        return field_value(self.control, "Architecture")

    @property
    def info_name(self) -> str:
        """dpkg names a Multi-Arch: same package's info files `name:arch`."""
        same = field_value(self.control, "Multi-Arch") == "same"
        return f"{self.name}:{self.architecture}" if same else self.name

    @property
    def conffiles(self) -> list[str]:
        lines = self.files.get("conffiles", b"").decode().splitlines()
        return [l.split()[-1] for l in lines if l.strip()]

    def script(self, name: str) -> str | None:
        data = self.files.get(name)
        return None if data is None else data.decode(errors="replace")

    def triggers(self, kind: str) -> list[tuple[str, bool]]:
        """The package's `interest*` or `activate*` directives: (trigger name or path, noawait?)."""
        found = []
        for line in self.files.get("triggers", b"").decode(errors="replace").splitlines():
            directive, _, name = line.strip().partition(" ")
            if directive.startswith(kind) and name.strip():
                found.append((name.strip(), directive.endswith("-noawait")))
        return found


def _package_of(interested: str) -> str:
    """dpkg's trigger files name packages as `name[:arch][/noawait]`."""
    return interested.split("/")[0].split(":")[0]


def read_deb(path: Path) -> Deb:
    proc = subprocess.run(["dpkg-deb", "--ctrl-tarfile", str(path)], capture_output=True)
    if proc.returncode != 0:
        raise OciasmError(f"{path.name}: not a readable Debian package: {proc.stderr.decode().strip()}")
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        for member in tar:
            name = member_path(member.name)
            if member.isreg() and name and "/" not in name:
                files[name] = tar.extractfile(member).read()  # type: ignore[union-attr]
    stanzas = parse_stanzas(files.pop("control", b"").decode(errors="replace"))
    if not stanzas:
        raise OciasmError(f"{path.name}: its control file is missing or empty")
    return Deb(path, stanzas[0], files)


def _script_does_work(text: str, upgrade: bool) -> bool:
    """True unless the script is boilerplate plus debhelper snippets that are no-ops here."""
    def strip(match: re.Match) -> str:
        helper = match.group(1)
        harmless = helper in HARMLESS_SNIPPETS and not (upgrade and helper == "dh_installdeb")
        return "" if harmless else match.group(0)

    for line in _SNIPPET.sub(strip, text).splitlines():
        line = line.strip()
        if line and not line.startswith("#") and not _BOILERPLATE.fullmatch(line):
            return True
    return False


@dataclass
class Database:
    """The image's dpkg state, read from its layers."""

    status: list[Stanza]
    info: dict[str, bytes]                 # file name under var/lib/dpkg/info -> contents
    file_triggers: list[tuple[str, str]]   # (path, interested package)
    named_triggers: dict[str, list[str]]   # trigger name -> interested packages
    diversions: dict[str, str]             # diverted path -> diverting package
    filters: list[tuple[bool, str]]        # (include?, glob), in the order dpkg reads them
    extended_states: str
    dirs: set[str]                         # directories of the image (paths without a leading /)

    @staticmethod
    def wanted(path: str) -> bool:
        return path.startswith((f"{DPKG}/", "etc/dpkg/")) or path == EXTENDED_STATES

    @classmethod
    def read(cls, reader: MemoryReader) -> "Database":
        status = reader.text(f"{DPKG}/status")
        if status is None:
            raise NotDebian("the base image has no /var/lib/dpkg/status: packages can be installed "
                            "only on a Debian or Ubuntu base")
        info = {p[len(INFO) + 1:]: data for p, data in reader.files.items() if p.startswith(INFO + "/")}
        file_triggers = [(path, who) for path, _, who in (line.rpartition(" ") for line in
                         (reader.text(f"{DPKG}/triggers/File") or "").splitlines()) if path]
        named = {p.rsplit("/", 1)[1]: (reader.text(p) or "").split()
                 for p in reader.files if p.startswith(f"{DPKG}/triggers/")
                 and p.rsplit("/", 1)[1] not in ("File", "Unincorp", "Lock")}
        lines = (reader.text(f"{DPKG}/diversions") or "").splitlines()
        diversions = {lines[i]: lines[i + 2] for i in range(0, len(lines) - 2, 3)}
        config = [reader.text(p) or "" for p in sorted(reader.files) if p.startswith("etc/dpkg/dpkg.cfg.d/")]
        filters = []
        for line in "\n".join([*config, reader.text("etc/dpkg/dpkg.cfg") or ""]).splitlines():
            m = re.match(r"^\s*(?:--)?path-(include|exclude)[=\s]\s*(\S+)", line)
            if m:
                filters.append((m.group(1) == "include", m.group(2)))
        return cls(parse_stanzas(status), info, file_triggers, named, diversions, filters,
                   reader.text(EXTENDED_STATES) or "", set(reader.dirs))

    def installed(self, name: str) -> Stanza | None:
        return next((s for s in self.status if field_value(s, "Package") == name
                     and INSTALLED in field_value(s, "Status")), None)

    def owners(self) -> dict[str, str]:
        """Every path a package lists -> the info name of (one) package that lists it."""
        found: dict[str, str] = {}
        for name, data in self.info.items():
            if name.endswith(".list"):
                for path in data.decode(errors="replace").splitlines():
                    found.setdefault(path, name[:-5])
        return found

    def excluded(self, path: str) -> bool:
        """dpkg's --path-exclude/--path-include: the last matching filter decides."""
        verdict = False
        for include, glob in self.filters:
            if fnmatch.fnmatchcase(path, glob):
                verdict = not include
        return verdict


def container_reasons(debs: list[Deb], db: Database, upgrades: set[str]) -> list[str]:
    """Why dpkg must really run for these packages (empty: unpacking is all it would do).

    `upgrades` names the packages the image has an older version of. File triggers are
    checked once the files are known (`file_trigger_reasons`).
    """
    reasons = []
    new_interests = {name: deb.name for deb in debs for name, _ in deb.triggers("interest")}
    for deb in debs:
        upgrade = deb.name in upgrades
        for script in ("preinst", "postinst"):
            text = deb.script(script)
            if text is not None and _script_does_work(text, upgrade):
                reasons.append(f"{deb.name}: its {script} script configures the system")
        if upgrade:
            old = db.installed(deb.name)
            if old is not None and field_value(old, "Conffiles"):
                reasons.append(f"{deb.name}: upgrading it must merge its configuration files")
            for script in ("prerm", "postrm"):
                text = db.info.get(f"{deb.info_name}.{script}") or db.info.get(f"{deb.name}.{script}")
                if text is not None and _script_does_work(text.decode(errors="replace"), True):
                    reasons.append(f"{deb.name}: the installed version's {script} script must run")
        for name, _ in deb.triggers("activate"):
            handlers = [_package_of(p) for p in db.named_triggers.get(name, [])]
            handlers += [new_interests[name]] if name in new_interests else []
            reasons += [f"{deb.name}: trigger {name} makes {h} do work" for h in handlers
                        if h not in CACHE_ONLY_TRIGGERS]
    return reasons


def file_trigger_reasons(db: Database, debs: list[Deb], unpacked: "Unpacked") -> list[str]:
    """Packages (in the image or being installed) interested in paths the new files fall under,
    whose trigger does real work."""
    interests = [(path, _package_of(who)) for path, who in db.file_triggers]
    interests += [(path, deb.name) for deb in debs for path, _ in deb.triggers("interest") if path.startswith("/")]
    reasons = []
    for deb in debs:
        listed = unpacked.lists.get(deb.info_name, [])
        for path, who in interests:
            if who not in CACHE_ONLY_TRIGGERS and any(p == path or p.startswith(path + "/") for p in listed):
                reasons.append(f"{deb.name}: its files under {path} make {who} do work (a dpkg trigger)")
    return reasons


@dataclass
class Unpacked:
    lists: dict[str, list[str]]           # info name -> the paths dpkg lists for it
    conffile_md5: dict[str, str]          # conffile path -> md5 of the unpacked file
    paths: set[str] = field(default_factory=set)  # every non-directory path written


class Install:
    """Unpack `debs` (in apt's order) into `root`, following the image's directory symlinks."""

    def __init__(self, db: Database, symlinks: dict[str, str], root: Path) -> None:
        self.db, self.root = db, root
        self.symlinks = dict(symlinks)  # grows with the links the packages bring
        self.result = Unpacked({}, {})

    def resolve(self, path: str) -> str:
        return resolve_parents(path, self.symlinks)

    def unpack(self, deb: Deb) -> None:
        conffiles = set(deb.conffiles)
        listed = self.result.lists.setdefault(deb.info_name, [])
        with piped_tar(["dpkg-deb", "--fsys-tarfile", str(deb.path)], f"{deb.path.name}: cannot unpack") as tar:
            for member in tar:
                self._member(deb, member, tar, listed, conffiles)

    def _member(self, deb: Deb, member: tarfile.TarInfo, tar: tarfile.TarFile, listed: list[str],
                conffiles: set[str]) -> None:
        path = member_path(member.name)
        shown = "/" + path if path else "/."
        listed.append(shown)
        if not path:
            return
        if member.uid or member.gid or member.uname not in ("", "root") or member.gname not in ("", "root"):
            raise NeedsContainer([f"{deb.name}: {shown} belongs to {member.uname or member.uid}:"
                                  f"{member.gname or member.gid}, which only dpkg maps to the image's users"])
        if not (member.isdir() or member.isreg() or member.issym() or member.islnk()):
            raise NeedsContainer([f"{deb.name}: {shown} is a device or fifo"])
        if self.db.excluded(shown):
            return
        real = self.resolve(path)
        if member.isdir():
            if real not in self.symlinks:  # dpkg keeps a symlink where a package has a directory
                (self.root / real).mkdir(parents=True, exist_ok=True)
                os.chmod(self.root / real, member.mode & 0o7777)
            return
        diverter = self.db.diversions.get(shown)
        if diverter is not None and diverter != deb.name:
            raise NeedsContainer([f"{deb.name}: {shown} is diverted by {diverter}"])
        dest = self.root / real
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_symlink() or dest.is_file():
            dest.unlink()
        self.result.paths.add("/" + real)
        if member.issym():
            os.symlink(member.linkname, dest)
            self.symlinks[real] = member.linkname
        elif member.islnk():
            source = self.root / self.resolve(member_path(member.linkname))
            if source.is_file():  # its target may have been filtered out
                os.link(source, dest)
        else:
            digest = hashlib.md5()
            with open(dest, "wb") as out:
                stream = tar.extractfile(member)
                while chunk := stream.read(1 << 20):  # type: ignore[union-attr]
                    digest.update(chunk)
                    out.write(chunk)
            os.chmod(dest, member.mode & 0o7777)
            if shown in conffiles:
                self.result.conffile_md5[shown] = digest.hexdigest()


def status_stanza(deb: Deb, conffile_md5: dict[str, str]) -> Stanza:
    fields = dict(deb.control)
    fields["Status"] = INSTALLED
    if deb.conffiles:
        fields["Conffiles"] = "".join(f"\n {p} {conffile_md5.get(p, 'newconffile')}" for p in deb.conffiles)
    known = [(n, fields[n]) for n in _FIELD_ORDER if n in fields]
    return known + [(n, v) for n, v in deb.control if n not in _FIELD_ORDER]


def _info_files(deb: Deb) -> list[str]:
    return [f"{deb.info_name}.list", *(f"{deb.info_name}.{name}" for name in sorted(deb.files))]


def bookkeeping(db: Database, debs: list[Deb], unpacked: Unpacked, auto: set[str]) -> list[Entry]:
    """dpkg's and apt's files for the installed packages: status, info/*, triggers, auto marks."""
    names = {deb.name for deb in debs}
    kept = [s for s in db.status if field_value(s, "Package") not in names]
    status = sorted([*kept, *(status_stanza(d, unpacked.conffile_md5) for d in debs)],
                    key=lambda s: (field_value(s, "Package"), field_value(s, "Architecture")))
    entries = [Entry(f"/{DPKG}/status", "file", 0o644,
                     data="".join(format_stanza(s) + "\n" for s in status).encode())]
    file_triggers = list(db.file_triggers)
    named: dict[str, list[str]] = {}
    for deb in debs:
        listed = unpacked.lists.get(deb.info_name, [])
        entries.append(Entry(f"/{INFO}/{deb.info_name}.list", "file", 0o644,
                             data="".join(p + "\n" for p in listed).encode()))
        for name, data in sorted(deb.files.items()):
            executable = name in ("preinst", "postinst", "prerm", "postrm", "config")
            entries.append(Entry(f"/{INFO}/{deb.info_name}.{name}", "file", 0o755 if executable else 0o644,
                                 data=data))
        for trigger, noawait in deb.triggers("interest"):
            who = deb.info_name + ("/noawait" if noawait else "")
            if trigger.startswith("/"):
                file_triggers.append((trigger, who))
            else:
                named.setdefault(trigger, []).append(who)
    if len(file_triggers) != len(db.file_triggers):
        entries.append(Entry(f"/{DPKG}/triggers/File", "file", 0o644,
                             data="".join(f"{p} {w}\n" for p, w in file_triggers).encode()))
    for trigger, interested in sorted(named.items()):
        entries.append(Entry(f"/{DPKG}/triggers/{trigger}", "file", 0o644,
                             data="".join(f"{w}\n" for w in [*db.named_triggers.get(trigger, []),
                                                            *interested]).encode()))
    marks = "".join(f"Package: {d.name}\nArchitecture: {d.architecture}\nAuto-Installed: 1\n\n"
                    for d in debs if d.name in auto)
    if marks:
        states = db.extended_states
        states = states if not states or states.endswith("\n\n") else states.rstrip("\n") + "\n\n"
        entries.append(Entry(f"/{EXTENDED_STATES}", "file", 0o644, data=(states + marks).encode()))
    return entries


def removed(db: Database, debs: list[Deb], unpacked: Unpacked, resolve) -> set[str]:
    """What an upgrade deletes: files the old version had and the new one lacks (unless another
    package lists them), and the old version's info files the new one does not rewrite."""
    owners = db.owners()
    gone: set[str] = set()
    for deb in debs:
        names = (deb.info_name, deb.name)
        rewritten = set(_info_files(deb))
        gone |= {f"/{INFO}/{n}" for n in db.info if n.rsplit(".", 1)[0] in names and n not in rewritten}
        old = db.info.get(f"{deb.info_name}.list") or db.info.get(f"{deb.name}.list")
        new = set(unpacked.lists.get(deb.info_name, []))
        for path in (old or b"").decode(errors="replace").splitlines():
            real = resolve(path.lstrip("/"))
            if path not in new and real not in db.dirs and owners.get(path) in names:
                gone.add("/" + real)
    return gone - unpacked.paths


def tree_entries(root: Path) -> list[Entry]:
    """The unpacked tree as layer entries, modes kept (setuid bits included)."""
    entries: list[Entry] = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            full = Path(dirpath) / name
            image_path = "/" + str(full.relative_to(root))
            st = full.lstat()
            if full.is_symlink():
                entries.append(Entry(image_path, "symlink", link=os.readlink(full)))
            elif full.is_dir():
                entries.append(Entry(image_path, "dir", st.st_mode & 0o7777))
            else:
                entries.append(Entry(image_path, "file", st.st_mode & 0o7777, source=full, size=st.st_size))
    return entries


def whiteout_entry(path: str) -> Entry:
    return Entry(posixpath.join(posixpath.dirname(path), ".wh." + posixpath.basename(path)), "file", 0o644,
                 data=b"")
