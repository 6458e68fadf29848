"""Which Python files `nandoc init` may list under custom_objects, decided by READING them.

`nandoc check` imports (runs) every file listed in [model] custom_objects. A training script that
defines its loss and then trains at module level would be run whole by that import, so init
parses each .py file with `ast` (it never imports one) and answers two questions:

Which names does the file define? Its top-level `def` and `class` names (also those inside a
top-level `try:` or a plain `if`, but not under `if __name__ == "__main__":`), names assigned
at top level (`focal = make_focal(2.0)`), the `name=` of `@register_keras_serializable(...)`
(the model's config keeps a registered object as "package>name"; init compares the part after
">"), and the string keys of `get_custom_objects()["name"] = ...` and
`get_custom_objects().update({"name": ...})` registrations.

Does the file do work when imported? The rule, statement by statement, over the module body
(and over class bodies, which also run at import):

- fine: docstrings and other expressions without calls; `import`/`from ... import` (but see
  the last point for the folder's own files); `def` and `class` (their decorators and default
  values are not examined); `pass`, `global`, `del`, `assert`; `if __name__ == "__main__":`
  and `if TYPE_CHECKING:` blocks (their `else:` is examined); `try:` blocks and plain `if`
  blocks, whose parts are examined by the same rule; `raise` inside an `except` handler
  (`except ImportError: raise`).
- fine: assignments (plain, annotated, augmented) whose every call is a cheap call: a builtin
  constructor (`int`, `dict`, `frozenset`, ...) or a function of a known library (keras,
  tensorflow, numpy, math, logging, typing, pandas, ...) that is not one that does work:
  `fit`, `evaluate`, `predict`, `load*`, `save*`, `open`, `read_*`, anything in
  `tf.data`, `tf.io`, `keras.datasets`, `keras.applications`, `*_from_directory`,
  `get_file`, ... (see WORK_CALLS, WORK_MODULES, WORK_PREFIXES). Lambda bodies do not run.
  Pure str/dict methods (`LOSS_NAME.replace(...)`, `", ".join(...)`) are cheap too.
- fine: an expression statement that registers custom objects
  (`keras.saving.get_custom_objects().update(...)`, `register_keras_serializable(...)(Cls)`),
  sets a warnings filter, or sets an environment variable (`os.environ.setdefault(...)`).
- WORK: any other call at top level, as a statement (`model.fit(...)`, `main()`, even
  `print(...)`: harmless, but code that runs at import is what marks a script) or in an
  assignment (`model = build_model()`: a call of the user's own function, or of anything not
  known to be cheap); `for`/`while` loops; `with` blocks; `raise` outside an `except`;
  `import` of a file of the same folder that itself does work (it runs when imported).

A file that does not parse (syntax error, an undecodable encoding, NUL bytes) or is over
MAX_BYTES is left out, with the reason.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

MAX_BYTES = 2_000_000  # a file of custom objects is small; bigger ones are not parsed
CHEAP_BUILTINS = frozenset({
    "int", "float", "complex", "str", "bytes", "bool", "tuple", "list", "dict", "set",
    "frozenset", "object", "range", "slice", "len", "min", "max", "abs", "round", "sorted",
    "isinstance", "getattr", "hasattr", "type", "property", "staticmethod", "classmethod",
})
LIBRARIES = frozenset({
    "keras", "tensorflow", "tf_keras", "numpy", "scipy", "jax", "pandas", "polars", "math",
    "cmath", "typing", "typing_extensions", "logging", "functools", "itertools", "operator",
    "collections", "dataclasses", "enum", "re", "pathlib", "os", "warnings", "abc", "string",
    "decimal", "fractions", "random", "numbers", "types", "__future__",
})
WORK_CALLS = frozenset({
    "fit", "fit_generator", "train_on_batch", "test_on_batch", "evaluate", "evaluate_generator",
    "predict", "predict_generator", "predict_on_batch", "export", "genfromtxt", "fromfile",
    "memmap", "open", "get_file", "run", "system", "popen", "urlopen", "urlretrieve", "listdir",
    "walk", "glob", "rglob", "iterdir", "scandir", "mkdir", "makedirs", "remove", "unlink",
    "rmdir", "rename", "write_text", "write_bytes", "to_csv", "to_parquet", "sleep", "input",
})
# library modules whose functions read, download or start things: tf.data, keras.datasets
WORK_MODULES = frozenset({"data", "io", "gfile", "saved_model", "distribute", "datasets",
                          "applications", "subprocess", "shutil", "urllib", "socket"})
WORK_PREFIXES = ("read_", "load", "save", "download")
# methods of str and dict that compute a value and touch nothing: "a" + SEP.join(NAMES)
PURE_METHODS = frozenset({
    "format", "join", "replace", "strip", "lstrip", "rstrip", "lower", "upper", "split",
    "rsplit", "splitlines", "encode", "decode", "startswith", "endswith", "casefold", "zfill",
    "keys", "values", "items",
})
REGISTRATION = frozenset({"get_custom_objects", "register_keras_serializable"})
# statements that set something up for the code that follows (`warnings.filterwarnings(...)`)
SETUP_CALLS = frozenset({("warnings", "filterwarnings"), ("warnings", "simplefilter"),
                         ("os", "environ", "setdefault"), ("os", "environ", "update")})


@dataclass(frozen=True)
class PyFile:
    """What reading one .py file found: the names it defines and the first work it does."""

    path: Path
    names: frozenset[str] = frozenset()
    work: str = ""  # "line 42: model.fit(...)", or "" for a file that is safe to import
    problem: str = ""  # why the file was left out unread, or ""
    local_imports: tuple[tuple[int, str], ...] = field(default=(), repr=False)


def read_python(path: Path) -> PyFile:
    """Parse one file (never import it): its names and its top-level work, or its problem."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            return PyFile(path, problem=f"it is {size / 1e6:.1f} MB, too big for a file of "
                                        f"custom objects")
        with path.open("rb") as fh:
            source = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        return PyFile(path, problem=f"it could not be read ({exc.strerror or exc})")
    if len(source) > MAX_BYTES:  # it grew since stat
        return PyFile(path, problem="it is too big for a file of custom objects")
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        where = f" at line {exc.lineno}" if exc.lineno else ""
        return PyFile(path, problem=f"it does not parse as Python (SyntaxError{where}: "
                                    f"{_short(exc.msg or '')})")
    except (ValueError, UnicodeDecodeError, RecursionError, MemoryError) as exc:
        return PyFile(path, problem=f"it does not parse as Python ({type(exc).__name__}: "
                                    f"{_short(str(exc))})")
    try:
        scan = _Scan(_aliases(tree.body))
        scan.body(tree.body)
        names = frozenset(_names(tree.body, scan.aliases))
    except RecursionError:  # statements nested deeper than the reader follows
        return PyFile(path, problem="it is nested too deeply to be read")
    return PyFile(path, names=names, work=scan.work, local_imports=tuple(scan.imports))


def read_folder(folder: Path) -> list[PyFile]:
    """Every .py file directly in `folder`, by name; a file that imports a sibling that does
    work does work itself (that import runs the sibling)."""
    files = [read_python(p) for p in sorted(folder.glob("*.py"))
             if p.is_file() and not p.name.startswith(".")]
    by_module = {f.path.stem: f for f in files}
    changed = True
    while changed:  # until no file learns of work from a sibling it imports
        changed = False
        for i, f in enumerate(files):
            if f.work or f.problem:
                continue
            for line, module in f.local_imports:
                sibling = by_module.get(module)
                if sibling is not None and sibling is not f and sibling.work:
                    files[i] = by_module[f.path.stem] = PyFile(f.path, f.names, work=(
                        f"line {line}: import {module}, and {sibling.path.name} runs code "
                        f"when imported"), local_imports=f.local_imports)
                    changed = True
                    break
    return files


# -- the names a file defines ------------------------------------------------------------------


def _names(body: list[ast.stmt], aliases: dict[str, str]) -> set[str]:
    names: set[str] = set()
    for stmt in body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(stmt.name)
            for deco in stmt.decorator_list:
                names |= _registered(deco, aliases)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                names |= _assigned(target, aliases)
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            call = stmt.value
            if isinstance(call.func, ast.Attribute) and call.func.attr == "update" \
                    and _is_registry(call.func.value, aliases):
                for arg in call.args:
                    if isinstance(arg, ast.Dict):
                        names |= {k.value for k in arg.keys if _is_str(k)}
                names |= {kw.arg for kw in call.keywords if kw.arg}
        elif isinstance(stmt, ast.If) and not _guarded(stmt.test):
            names |= _names(stmt.body, aliases) | _names(stmt.orelse, aliases)
        elif isinstance(stmt, ast.If):
            names |= _names(stmt.orelse, aliases)
        elif isinstance(stmt, (ast.Try, getattr(ast, "TryStar", ast.Try))):
            for part in (stmt.body, stmt.orelse, stmt.finalbody,
                         *(h.body for h in stmt.handlers)):
                names |= _names(part, aliases)
    return names


def _assigned(target: ast.expr, aliases: dict[str, str]) -> set[str]:
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, (ast.Tuple, ast.List)):
        return set().union(*(_assigned(t, aliases) for t in target.elts))
    if isinstance(target, ast.Subscript) and _is_str(target.slice) \
            and _is_registry(target.value, aliases):
        return {target.slice.value}  # get_custom_objects()["name"] = obj
    return set()


def _registered(deco: ast.expr, aliases: dict[str, str]) -> set[str]:
    """The name= of @register_keras_serializable(package, name)."""
    if not isinstance(deco, ast.Call) or _dotted(deco.func, aliases)[-1:] != [
            "register_keras_serializable"]:
        return set()
    name = next((kw.value for kw in deco.keywords if kw.arg == "name"),
                deco.args[1] if len(deco.args) > 1 else None)
    return {name.value} if _is_str(name) else set()


def _is_registry(node: ast.expr, aliases: dict[str, str]) -> bool:
    return isinstance(node, ast.Call) and _dotted(node.func, aliases)[-1:] == [
        "get_custom_objects"]


def _is_str(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) \
        and node.value.isprintable() and bool(node.value)


# -- the work a file does when imported --------------------------------------------------------


def _aliases(body: list[ast.stmt]) -> dict[str, str]:
    """Local name -> the dotted module path it was imported as, for every import anywhere."""
    out: dict[str, str] = {}
    for node in (n for stmt in body for n in ast.walk(stmt)):
        if isinstance(node, ast.Import):
            for a in node.names:
                out[a.asname or a.name.split(".")[0]] = a.name if a.asname else \
                    a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


class _Scan:
    def __init__(self, aliases: dict[str, str]) -> None:
        self.aliases = aliases
        self.work = ""
        self.imports: list[tuple[int, str]] = []  # (line, module) of non-library imports

    def body(self, stmts: list[ast.stmt], in_handler: bool = False) -> None:
        for stmt in stmts:
            if self.work:
                return
            what = self.stmt(stmt, in_handler)
            if what:
                self.work = f"line {stmt.lineno}: {what}"

    def stmt(self, s: ast.stmt, in_handler: bool) -> str:
        """What `s` does at import time that counts as work, or ""."""
        if isinstance(s, ast.Import):
            self.imports += [(s.lineno, a.name.split(".")[0]) for a in s.names]
        elif isinstance(s, ast.ImportFrom):
            if s.level and not s.module:
                self.imports += [(s.lineno, a.name) for a in s.names]
            elif s.module:
                self.imports.append((s.lineno, s.module.split(".")[0]))
        elif isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)):
            pass
        elif isinstance(s, ast.ClassDef):
            self.body(s.body)
        elif isinstance(s, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = s.targets if isinstance(s, ast.Assign) else [s.target]
            for node in (*targets, s.value):
                call = self.costly_call(node) if node is not None else None
                if call is not None:
                    return (f"{_text(targets[0])} = {_call_text(call)}"
                            if call is s.value else _call_text(call))
        elif isinstance(s, ast.Expr):
            return self.expression(s.value)
        elif isinstance(s, ast.If):
            if not _guarded(s.test):
                call = self.costly_call(s.test)
                if call is not None:
                    return _call_text(call)
                self.body(s.body, in_handler)
            self.body(s.orelse, in_handler)
        elif isinstance(s, (ast.Try, getattr(ast, "TryStar", ast.Try))):
            self.body(s.body, in_handler)
            for handler in s.handlers:
                self.body(handler.body, in_handler=True)
            self.body(s.orelse, in_handler)
            self.body(s.finalbody, in_handler)
        elif isinstance(s, ast.Assert):
            call = self.costly_call(s.test)
            return _call_text(call) if call is not None else ""
        elif isinstance(s, ast.Raise):
            return "" if in_handler else f"raise {_text(s.exc) if s.exc else ''}".strip()
        elif isinstance(s, (ast.For, ast.AsyncFor)):
            return f"a for loop (for {_text(s.target)} in ...)"
        elif isinstance(s, ast.While):
            return "a while loop"
        elif isinstance(s, (ast.With, ast.AsyncWith)):
            items = ", ".join(_text(i.context_expr) for i in s.items)
            return f"a with block (with {items}:)"
        elif not isinstance(s, (ast.Pass, ast.Global, ast.Nonlocal, ast.Delete)):
            return f"a top-level {type(s).__name__.lower()} statement"
        return ""

    def expression(self, value: ast.expr) -> str:
        if isinstance(value, (ast.Await, ast.Yield, ast.YieldFrom)):
            return "an await"
        if isinstance(value, ast.Call):
            dotted = _dotted(value.func, self.aliases)
            allowed = REGISTRATION.intersection(dotted) or tuple(dotted) in SETUP_CALLS
            inner = [self.costly_call(a) for a in (*value.args, *(k.value for k in
                                                                   value.keywords))]
            costly = next((c for c in inner if c is not None), None)
            if not allowed:
                return _call_text(value)
            return _call_text(costly) if costly is not None else ""
        call = self.costly_call(value)
        return _call_text(call) if call is not None else ""

    def costly_call(self, node: ast.AST) -> ast.Call | None:
        """The first call in `node` that is not known to be cheap (lambda bodies excluded)."""
        stack = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, ast.Lambda):
                stack += n.args.defaults + [d for d in n.args.kw_defaults if d is not None]
                continue
            if isinstance(n, ast.Call) and not self.cheap(n):
                return n
            if isinstance(n, (ast.Await, ast.Yield, ast.YieldFrom)):
                return ast.Call(func=ast.Name(id="await"), args=[], keywords=[])
            stack += reversed(list(ast.iter_child_nodes(n)))
        return None

    def cheap(self, call: ast.Call) -> bool:
        if isinstance(call.func, ast.Attribute) and call.func.attr in PURE_METHODS:
            return True  # its receiver is examined on its own
        dotted = _dotted(call.func, self.aliases)
        if not dotted:
            return False
        root = dotted[0]
        if len(dotted) == 1 and root in CHEAP_BUILTINS:
            return True
        if root not in LIBRARIES:
            return False  # the user's own function, or a method of one of their objects
        return not WORK_MODULES.intersection(dotted) and not any(
            part in WORK_CALLS or part.startswith(WORK_PREFIXES)
            or part.endswith(("_from_directory", "_from_array")) for part in dotted)


def _guarded(test: ast.expr) -> bool:
    """`__name__ == "__main__"` or `TYPE_CHECKING`: a block that does not run at import."""
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq):
        sides = [test.left, test.comparators[0]]
        return any(isinstance(x, ast.Name) and x.id == "__name__" for x in sides) and any(
            isinstance(x, ast.Constant) and x.value == "__main__" for x in sides)
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _dotted(func: ast.expr, aliases: dict[str, str]) -> list[str]:
    """`np.load` -> ["numpy", "load"]; `get_custom_objects().update` -> [..., "update"];
    [] when the callee is not a name (a subscript, a lambda)."""
    parts: list[str] = []
    node = func
    while True:
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Name):
            parts += reversed(aliases.get(node.id, node.id).split("."))
            return list(reversed(parts))
        else:
            return []


def _call_text(call: ast.Call) -> str:
    return f"{_text(call.func)}(...)"


def _text(node: ast.AST | None) -> str:
    if node is None:
        return ""
    try:
        text = ast.unparse(node)
    except Exception:  # an exotic node: the line number still says where
        return type(node).__name__
    return _short(text)


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."
