"""The import graph points one way (views -> services -> store), and the names of the HTTP
interface are each written once (README, "How it works")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The application's own top-level packages and modules (tests, bench and deploy are not it).
APPLICATION = sorted(
    (
        {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
        | {p.stem for p in ROOT.glob("*.py")}
    )
    - {"tests", "bench", "deploy", "scripts"}
)


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth of the file (lazy imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def application_files() -> list[Path]:
    """The application's Python files."""
    files = [ROOT / f"{name}.py" for name in APPLICATION if (ROOT / f"{name}.py").exists()]
    for name in APPLICATION:
        if (ROOT / name).is_dir():
            files.extend(sorted((ROOT / name).rglob("*.py")))
    return files


@pytest.mark.parametrize("path", sorted((ROOT / "store").glob("*.py")), ids=lambda p: p.name)
def test_store_imports_nothing_above_it(path):
    """A store module imports the standard library, redis and other store modules only."""
    upward = {
        module
        for module in imported_modules(path)
        if module.split(".")[0] in APPLICATION and module.split(".")[0] != "store"
    }
    assert upward == set(), f"{path.name} imports {sorted(upward)}"


def test_the_application_is_found():
    """The check above sees the packages it guards (else it would pass on nothing)."""
    assert {"store", "security", "services", "blueprints", "errors", "app"} <= set(APPLICATION)
    assert "security.passwords" not in imported_modules(ROOT / "store" / "users.py")


def test_credentials_use_the_store_only_to_digest():
    """Reading a credential needs the store's digest and key shape, nothing else of it."""
    store_imports = {
        module.split(".")[1]
        for module in imported_modules(ROOT / "security" / "credentials.py")
        if module.startswith("store.")
    }
    assert store_imports == {"digest"}


# Each name is written in http_names.py and imported wherever it is needed.
HTTP_NAMES = ("/mcp", "X-MCP-API-Key", "X-CSRF-Token")


def string_constants(path: Path) -> list[str]:
    """The string literals of a file's code (docstrings, which are prose, left out)."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


@pytest.mark.parametrize("name", HTTP_NAMES)
def test_http_names_are_written_once(name):
    """Only http_names.py spells the MCP path and our two headers as a literal."""
    spelled_in = [
        str(path.relative_to(ROOT))
        for path in application_files()
        if any(text == name for text in string_constants(path))
    ]
    assert spelled_in == ["http_names.py"]
