"""The layout shows the architecture, and the imports keep to it: each layer imports only
itself and the layers below; Airflow only in its own subpackage (and dags/); the runtime
package never imports the developer tools."""

from __future__ import annotations

import ast
from pathlib import Path

from kam.settings import PROJECT_DIR

PACKAGE = PROJECT_DIR / "plugins" / "kam"
# Lowest first, in the order the data flows; a module may import its own layer and lower ones.
LAYERS = (
    ("kam.constants", "kam.settings", "kam.contract", "kam.processes"),
    ("kam.local.embedded_server", "kam.warehouse"),
    ("kam.transform", "kam.ingest", "kam.quality", "kam.headlines", "kam.alerts", "kam.local.mail_catcher"),
    ("kam.pipeline", "kam.report", "kam.docs", "kam.local.runner", "kam.local.superset"),
    ("kam.status", "kam.on_airflow"),
    ("kam.cli",),
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module it imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _layer(module: str) -> int | None:
    for number, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return number
    return None


MODULES = {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_has_a_layer():
    assert [m for m in MODULES if m != "kam" and _layer(m) is None] == []


def test_no_import_runs_back_up_a_layer():
    upward = sorted(
        f"{module} ({_layer(module)}) imports {imported} ({_layer(imported)})"
        for module, imports in MODULES.items()
        if module != "kam"
        for imported in imports
        if imported.startswith("kam.") and _layer(imported) is not None and _layer(imported) > _layer(module)
    )
    assert upward == []


def test_only_the_airflow_subpackage_imports_airflow():
    importers = sorted(
        module
        for module, imports in MODULES.items()
        if any(i == "airflow" or i.startswith("airflow.") for i in imports)
        and not module.startswith("kam.on_airflow")
    )
    assert importers == []


def test_the_runtime_package_never_imports_the_developer_tools():
    assert (
        sorted(m for m, imports in MODULES.items() if any(i.split(".")[0] == "tools" for i in imports)) == []
    )
