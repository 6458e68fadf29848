"""What a saved model config names besides Keras objects, found without Keras: code stored in
the file (lambdas as Python bytecode), and functions or classes of Python's own modules
(`os.system`, `subprocess.run`, `builtins.eval`) that no Keras model refers to."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# Python builtins a crafted config could name as a "function"; a custom loss is never one.
_RISKY_BUILTINS = frozenset({
    "eval", "exec", "compile", "open", "__import__", "getattr", "setattr", "delattr",
    "globals", "locals", "vars", "input", "breakpoint", "exit", "quit", "help", "memoryview",
})
_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ())) | {
    "os", "posix", "nt", "subprocess", "sys", "shutil", "socket", "importlib", "ctypes", "pty",
    "pickle", "marshal", "runpy", "code", "codeop", "multiprocessing", "signal", "webbrowser",
}


@dataclass(frozen=True)
class StoredCode:
    """A function whose Python code is stored in the file."""

    where: str  # "the activation of layer 'dense'", "the loss"
    loadable: bool  # Keras 3 rebuilds it with safe_mode=False (a "__lambda__" object)


def _walk(config: Any) -> Iterator[tuple[Any, str | None, str]]:
    """Every dict and list with the nearest layer's name and the key it sits under."""
    stack: list[tuple[Any, str | None, str]] = [(config, None, "")]
    while stack:
        item, layer, key = stack.pop()
        yield item, layer, key
        if isinstance(item, dict):
            inner = item.get("config")
            name = inner.get("name") if isinstance(inner, dict) else None
            if "class_name" in item and isinstance(name, str) and item.get("class_name") not in (
                    "__lambda__", "function", "DTypePolicy"):
                layer = name
            stack.extend((v, layer, str(k)) for k, v in item.items()
                         if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            stack.extend((v, layer, key) for v in item if isinstance(v, (dict, list)))


def _place(layer: str | None, key: str) -> str:
    if key in ("loss", "metrics", "weighted_metrics", "compile_config"):
        return "the model's loss" if key in ("loss", "compile_config") else "a metric"
    what = {"config": "a function", "function": "the function"}.get(key, f"the {key}")
    return f"{what} of layer '{layer}'" if layer else what


def stored_code(config: dict[str, Any]) -> tuple[StoredCode, ...]:
    """Lambdas stored as code outside Lambda layers (those are reported by name already):
    Keras 3's `{"class_name": "__lambda__"}` and the Keras 2 bytecode form `{"value": [b64]}`."""
    found: list[StoredCode] = []
    inside: set[int] = set()  # a __lambda__'s own config, reported as the __lambda__
    for node, layer, key in _walk(config):
        if not isinstance(node, dict) or id(node) in inside:
            continue
        if key == "function":  # a Lambda layer's own function: reported as the layer
            continue
        if node.get("class_name") == "__lambda__":
            inside.add(id(node.get("config")))
            found.append(StoredCode(_place(layer, key), True))
        elif _bytecode(node):
            found.append(StoredCode(_place(layer, key), False))
    seen: dict[str, StoredCode] = {}
    for code in found:
        seen.setdefault(code.where, code)
    return tuple(seen.values())


def _bytecode(node: Any) -> bool:
    value = node.get("value") if isinstance(node, dict) else None
    return (isinstance(node, dict) and set(node) == {"value"} and isinstance(value, list)
            and bool(value) and isinstance(value[0], str) and len(value[0]) > 16)


def foreign_names(config: dict[str, Any]) -> tuple[str, ...]:
    """`module.name` of every function or class the config takes from Python's own modules."""
    out: list[str] = []
    for node, _, _ in _walk(config):
        if not isinstance(node, dict) or not isinstance(node.get("module"), str):
            continue
        module, cls = node["module"], node.get("class_name")
        name = node.get("config") if cls == "function" else cls
        if not isinstance(name, str):
            continue
        package = module.split(".", 1)[0]
        if package == "builtins":  # plain functions (custom losses) are saved as builtins
            risky = name in _RISKY_BUILTINS
        else:
            risky = package in _STDLIB
        label = f"{module}.{name}"
        if risky and label not in out:
            out.append(label)
    return tuple(out)
