"""Finding the function Cog calls (`run()`, `predict()`, `train()`) and reading its decorators."""

from __future__ import annotations

import ast
from dataclasses import dataclass

from .ann import dotted_name
from .literals import Unresolved, literal
from .module import ModuleInfo

Func = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class Target:
    module: ModuleInfo  # the file that defines the function (a base class may live elsewhere)
    func: Func

    @property
    def is_async(self) -> bool:
        return isinstance(self.func, ast.AsyncFunctionDef)


def find_target(module: ModuleInfo, name: str, train: bool) -> Target:
    """The class `name`'s run() (else predict()) or train(), or a plain function `name`."""
    cls = module.classes.get(name)
    if cls is not None:
        wanted = ("train",) if train else ("run", "predict")
        for method in wanted:  # run() wins over predict(), also when inherited
            found = _method(module, cls, method, set())
            if found is not None:
                return found
        need = "a train() method" if train else "a run() or predict() method"
        raise module.error(cls, f"class {name} must define {need}")
    fallback = "train" if train else "predict"
    for candidate in (name, fallback):
        func = module.functions.get(candidate)
        if func is not None:
            return Target(module, func)
    kind = "train" if train else "predict"
    raise module.error(1, f"no class or function named '{name}' in {module.rel}; check `{kind}` in cog.yaml")


def _method(module: ModuleInfo, cls: ast.ClassDef, method: str, seen: set[tuple[str, str]]) -> Target | None:
    if (module.rel, cls.name) in seen:
        return None
    seen.add((module.rel, cls.name))
    for stmt in cls.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name == method:
            return Target(module, stmt)
    for base in cls.bases:
        name = dotted_name(base)
        parent = module.find_class(name) if name else None
        if parent is not None and (found := _method(*parent, method, seen)) is not None:
            return found
    return None


def _decorator(module: ModuleInfo, func: Func, cog_name: str) -> ast.expr | None:
    for deco in func.decorator_list:
        expr = deco.func if isinstance(deco, ast.Call) else deco
        name = dotted_name(expr)
        if name is not None and module.is_cog(name, cog_name):
            return deco
    return None


def is_streaming(target: Target) -> bool:
    """`@cog.streaming` (or `@streaming` imported from cog) on the target function."""
    return _decorator(target.module, target.func, "streaming") is not None


def concurrency_max(target: Target) -> int | None:
    """N from `@cog.concurrent(max=N)`; 1 for a bare `@concurrent`; None when undecorated."""
    module = target.module
    deco = _decorator(module, target.func, "concurrent")
    if deco is None:
        return None
    if not isinstance(deco, ast.Call) or (not deco.args and not deco.keywords):
        value = 1
    else:
        if deco.args or len(deco.keywords) != 1 or deco.keywords[0].arg != "max":
            raise module.error(deco, "@concurrent only supports a literal integer max=... argument")
        try:
            value = literal(deco.keywords[0].value)
        except Unresolved:
            value = None
        if not isinstance(value, int) or isinstance(value, bool):
            raise module.error(deco, "@concurrent max must be an integer literal")
        if value < 1:
            raise module.error(deco, "@concurrent max must be at least 1")
    if value > 1 and not target.is_async:
        raise module.error(target.func, f"@concurrent(max > 1) requires an async {target.func.name}(); use `async def`")
    return value
