"""One parsed Python file of the project: its imports, constants, classes and models.

Files are parsed with `ast` only and never imported. Names imported from other
files of the project (`from .types import Output`, `import output_types as ot`)
are followed into those files, the way Cog's static generator follows them.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import OciasmError
from .ann import Ann, AnnotationError, GENERIC, dotted_name, from_ast
from .literals import Unresolved, literal

# Top-level packages that are never project files (Cog skips the same set).
EXTERNAL_MODULES = frozenset(
    "builtins typing typing_extensions collections abc enum dataclasses os sys io json re math pathlib "
    "functools itertools contextlib concurrent asyncio multiprocessing threading logging warnings unittest "
    "pytest numpy torch tensorflow jax scipy sklearn transformers diffusers accelerate safetensors PIL cv2 "
    "skimage requests httpx aiohttp fastapi flask pydantic cog".split()
)
TYPING_MODULES = ("typing", "typing_extensions")
BASEMODEL_MODULES = ("cog", "pydantic", "pydantic.v1")
BUILTINS = ("str", "int", "float", "bool", "list", "dict", "set", "None")


@dataclass(frozen=True)
class ImportEntry:
    module: str
    original: str


@dataclass(frozen=True)
class ModelField:
    name: str
    ann: Ann
    has_default: bool
    key_required: bool | None  # TypedDict only: Required/NotRequired/total
    lineno: int


@dataclass(frozen=True)
class Model:
    """A BaseModel or TypedDict class; its field types resolve in its own module."""

    name: str
    module: ModuleInfo
    fields: tuple[ModelField, ...]
    typed_dict: bool


class ModuleInfo:
    def __init__(self, project: Project, path: Path, rel: str, tree: ast.Module):
        self.project, self.path, self.rel, self.tree = project, path, rel, tree
        self.imports = _collect_imports(tree)
        self.scope = _collect_scope(tree)
        self.classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
        self.functions = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        self.models: dict[str, Model] = {}
        for cls in self.classes.values():
            model = self._class_model(cls)
            if model is not None:
                self.models[cls.name] = model

    def error(self, where: ast.AST | int, message: str) -> OciasmError:
        """A user-facing error located at a node (or line) of this file."""
        line = where if isinstance(where, int) else getattr(where, "lineno", 1)
        return OciasmError(f"{self.rel}:{line}: {message}")

    # -- names ---------------------------------------------------------------------------

    def imported_from(self, name: str, module: str | tuple[str, ...], original: str) -> bool:
        """Whether `name` here is `original` imported from `module` (or `alias.original`)."""
        modules = (module,) if isinstance(module, str) else module
        head, dot, rest = name.partition(".")
        entry = self.imports.get(head)
        if entry is None:
            return False
        if dot:
            return entry.module in modules and entry.original == entry.module and rest == original
        return entry.module in modules and entry.original == original

    def is_cog(self, name: str, original: str) -> bool:
        return self.imported_from(name, "cog", original)

    def is_typing(self, name: str, original: str) -> bool:
        return self.imported_from(name, TYPING_MODULES, original)

    # -- models --------------------------------------------------------------------------

    def find_model(self, name: str, _seen: frozenset = frozenset()) -> Model | None:
        """The model a (possibly qualified) name refers to, following local imports."""
        key = (self.rel, name)
        if key in _seen:
            return None
        seen = _seen | {key}
        if name in self.models:
            return self.models[name]
        head, dot, rest = name.partition(".")
        entry = self.imports.get(head)
        if entry is None:
            return None
        if dot:
            for module in self._modules_for_alias(entry):
                if (found := module.find_model(rest, seen)) is not None:
                    return found
            return None
        module = self.project.load(entry.module, self.rel)
        return module.find_model(entry.original, seen) if module is not None else None

    def find_class(self, name: str) -> tuple[ModuleInfo, ast.ClassDef] | None:
        """A class defined here or imported from a project file (for inherited run())."""
        if name in self.classes:
            return self, self.classes[name]
        head, dot, rest = name.partition(".")
        entry = self.imports.get(head)
        if entry is None:
            return None
        candidates = self._modules_for_alias(entry) if dot else [self.project.load(entry.module, self.rel)]
        target = rest if dot else entry.original
        for module in candidates:
            if module is not None and target in module.classes:
                return module, module.classes[target]
        return None

    def _modules_for_alias(self, entry: ImportEntry) -> list[ModuleInfo]:
        """`import a.b as x` -> a/b.py; `from pkg import mod` -> pkg/mod.py."""
        if entry.original == entry.module:
            names = [entry.module]
        else:
            sep = "" if entry.module.endswith(".") else "."
            names = [entry.module + sep + entry.original]
        return [m for m in (self.project.load(n, self.rel) for n in names) if m is not None]

    def _class_model(self, cls: ast.ClassDef) -> Model | None:
        typed_dict = base_model = False
        parents: list[Model] = []
        for base in cls.bases:
            name = dotted_name(base)
            if name is None:
                continue
            if name == "TypedDict" or name.endswith(".TypedDict") or self.is_typing(name, "TypedDict"):
                typed_dict = True
            elif name == "BaseModel" or name.endswith(".BaseModel") or self.imported_from(name, BASEMODEL_MODULES, "BaseModel"):
                base_model = True
            elif (parent := self.find_model(name)) is not None:
                parents.append(parent)
                typed_dict |= parent.typed_dict
                base_model |= not parent.typed_dict
        if not (typed_dict or base_model):
            return None
        total = not any(k.arg == "total" and isinstance(k.value, ast.Constant) and k.value.value is False for k in cls.keywords)
        fields: dict[str, ModelField] = {}
        for parent in parents:
            fields.update((f.name, f) for f in parent.fields)
        for stmt in cls.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                field = self._model_field(stmt, typed_dict, total)
                if field is not None:
                    fields[field.name] = field
        return Model(cls.name, self, tuple(fields.values()), typed_dict)

    def _model_field(self, stmt: ast.AnnAssign, typed_dict: bool, total: bool) -> ModelField | None:
        try:
            ann = from_ast(stmt.annotation)
        except AnnotationError:
            return None  # Cog skips fields whose annotation it cannot read
        has_default = False
        if stmt.value is not None:
            try:
                literal(stmt.value)
                has_default = True
            except Unresolved:
                pass  # e.g. Field(...): Cog treats the field as having no default
        key_required = None
        if typed_dict:
            key_required = total
            if ann.kind == GENERIC and len(ann.args) == 1:
                for qualifier, required in (("NotRequired", False), ("Required", True)):
                    if ann.base == qualifier or self.is_typing(ann.name, qualifier):
                        ann, key_required = ann.args[0], required
                        break
        return ModelField(stmt.target.id, ann, has_default, key_required, stmt.lineno)

    # -- constants -----------------------------------------------------------------------

    def constant(self, name: str, _depth: int = 0) -> Any:
        """A module-level literal constant, also one imported from a project file."""
        if name in self.scope:
            return self.scope[name]
        head, dot, rest = name.partition(".")
        entry = self.imports.get(head)
        if entry is None or _depth > 8:
            raise Unresolved
        if dot:
            for module in self._modules_for_alias(entry):
                try:
                    return module.constant(rest, _depth + 1)
                except Unresolved:
                    pass
            raise Unresolved
        module = self.project.load(entry.module, self.rel)
        if module is None:
            raise Unresolved
        return module.constant(entry.original, _depth + 1)

    def value(self, node: ast.expr) -> Any:
        """A literal, or a name bound to a module-level literal."""
        try:
            return literal(node)
        except Unresolved:
            name = dotted_name(node)
            if name is None:
                raise
            return self.constant(name)


class Project:
    """The project's Python files, each parsed once and only when needed."""

    def __init__(self, root: Path):
        self.root = root.resolve()
        self._cache: dict[Path, ModuleInfo | None] = {}

    def parse(self, rel: str) -> ModuleInfo:
        path = (self.root / rel).resolve()
        if (cached := self._cache.get(path)) is not None:
            return cached
        try:
            source = path.read_bytes()
        except OSError as e:
            raise OciasmError(f"{rel}: cannot read the predictor file: {e.strerror}; check `predict`/`train` in cog.yaml") from None
        try:
            tree = ast.parse(source, filename=rel)
        except SyntaxError as e:
            raise OciasmError(f"{rel}:{e.lineno or 1}: syntax error: {e.msg}; fix the Python file") from None
        self._cache[path] = None  # a module importing itself sees nothing while it loads
        module = ModuleInfo(self, path, rel, tree)
        self._cache[path] = module
        return module

    def load(self, module: str, importer_rel: str) -> ModuleInfo | None:
        """The project file an import names, or None for packages outside the project."""
        rel = _module_file(module, importer_rel, self.root)
        if rel is None:
            return None
        path = (self.root / rel).resolve()
        if path in self._cache:
            return self._cache[path]
        return self.parse(rel)


def _module_file(module: str, importer_rel: str, root: Path) -> str | None:
    dots = len(module) - len(module.lstrip("."))
    parts = [p for p in module[dots:].split(".") if p]
    if not parts or (not dots and parts[0] in EXTERNAL_MODULES):
        return None
    base = Path(importer_rel).parent if dots else Path()
    for _ in range(dots - 1):
        base = base.parent
    for candidate in (base.joinpath(*parts).with_suffix(".py"), base.joinpath(*parts, "__init__.py")):
        full = (root / candidate).resolve()
        if full.is_relative_to(root) and full.is_file():
            return candidate.as_posix()
    return None


def _top_level(tree: ast.Module) -> list[ast.stmt]:
    """Module statements, including those under top-level `if`/`try` (guarded imports)."""
    out: list[ast.stmt] = []
    stack = list(reversed(tree.body))
    while stack:
        stmt = stack.pop()
        out.append(stmt)
        if isinstance(stmt, (ast.If, ast.Try)):
            nested = stmt.body + stmt.orelse + getattr(stmt, "finalbody", [])
            for handler in getattr(stmt, "handlers", []):
                nested += handler.body
            stack.extend(reversed(nested))
    return out


def _collect_imports(tree: ast.Module) -> dict[str, ImportEntry]:
    names = {b: ImportEntry("builtins", b) for b in BUILTINS}
    for stmt in _top_level(tree):
        if isinstance(stmt, ast.ImportFrom):
            module = "." * stmt.level + (stmt.module or "")
            for alias in stmt.names:
                names[alias.asname or alias.name] = ImportEntry(module, alias.name)
        elif isinstance(stmt, ast.Import):
            for alias in stmt.names:
                names[alias.asname or alias.name] = ImportEntry(alias.name, alias.name)
                if alias.asname is None and "." in alias.name:
                    # `import a.b` binds `a`; `a.b.X` is reached through it.
                    head = alias.name.split(".", 1)[0]
                    names.setdefault(head, ImportEntry(head, head))
    return names


def _collect_scope(tree: ast.Module) -> dict[str, Any]:
    scope: dict[str, Any] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            target, value = stmt.target, stmt.value
        else:
            continue
        if isinstance(target, ast.Name):
            try:
                scope[target.id] = literal(value)
            except Unresolved:
                scope.pop(target.id, None)  # rebound to something dynamic
    return scope
