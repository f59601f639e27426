"""The rules of docs/ARCHITECTURE.md that imports alone cannot show, read off the source.

- SQL (SQLAlchemy's select / insert / update / delete / text, a session's execute / scalar(s) /
  get / stream) is written only in repositories: modules named ``repository.py`` or
  ``*_repository.py`` (and the migrations, which are not under app/). A model may use
  ``text()`` for its DDL (a server default, an index predicate): that is schema, not a query.
- ``commit()`` is called only at a unit of work's boundary: routers and the other edge
  modules, jobs, the command line, the worker, and the unit-of-work helper in core. Services
  never commit.
- Every package and module directly under app/ stands on a floor of the import-linter layers
  contract, so a new domain cannot escape the floors by being left out of them.
- No module imports itself back, through any chain, the edge included (import-linter's
  contracts look at the floors and at the siblings of a package, the edge aside).

The floors themselves (who may import whom) are import-linter's (``make test`` runs it).
"""

from __future__ import annotations

import ast
import tomllib
from collections import Counter

import grimp

from app.core.settings import PROJECT_ROOT

SOURCES = ("app", "worker")
SQL_CONSTRUCTS = frozenset({"select", "insert", "update", "delete", "text"})
SESSION_SQL = frozenset({"execute", "scalar", "scalars", "get", "stream", "stream_scalars"})
# Where a unit of work ends: the edge, jobs, the command line, the worker, the helper in core.
COMMITTING_NAMES = frozenset({"router.py", "jobs.py"})
COMMITTING_FILES = frozenset(
    {"app/cli.py", "app/core/uow.py", "app/portal/dvcqg.py", "app/portal/unmapped_router.py"}
)

# Violations allowed for a while (a module being reworked), each listed exactly (file, finding,
# how many times), so that no new one slips in beside them; none today. The test fails on an
# entry that no longer matches anything, so an entry goes when its module is fixed.
KNOWN_VIOLATIONS: Counter[tuple[str, str]] = Counter()


def is_repository(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name == "repository.py" or name.endswith("_repository.py")


def may_commit(path: str) -> bool:
    return (
        path.startswith("worker/")
        or path in COMMITTING_FILES
        or path.rsplit("/", 1)[-1] in COMMITTING_NAMES
    )


def _receiver(call: ast.Call) -> str | None:
    assert isinstance(call.func, ast.Attribute)
    value = call.func.value
    if isinstance(value, ast.Name):
        return value.id
    if isinstance(value, ast.Attribute):
        return value.attr
    return None


def _session_like(name: str) -> bool:
    return name in {"session", "conn", "connection"} or name.endswith("_session")


def findings(path: str, source: str) -> list[str]:
    """What ``path`` (relative, with ``/``) breaks of the two rules, one entry per place."""
    found: list[str] = []
    sql_allowed = is_repository(path)
    ddl_text = path.endswith("models.py")
    modules: set[str] = set()  # names bound to sqlalchemy modules (``import sqlalchemy as sa``)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "sqlalchemy":
                    modules.add(alias.asname or "sqlalchemy")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            for alias in node.names:
                construct = alias.name in SQL_CONSTRUCTS and not (ddl_text and alias.name == "text")
                if construct and not sql_allowed:
                    found.append(f"sql: imports {node.module}.{alias.name}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            method, receiver = node.func.attr, _receiver(node)
            if receiver in modules and method in SQL_CONSTRUCTS and not sql_allowed:
                found.append(f"sql: calls {receiver}.{method}()")
            elif receiver and _session_like(receiver) and method in SESSION_SQL:
                if not sql_allowed:
                    found.append(f"sql: {receiver}.{method}()")
            elif method == "commit" and not may_commit(path):
                found.append(f"commit: {receiver}.commit()")
    return found


def project_findings() -> Counter[tuple[str, str]]:
    found: Counter[tuple[str, str]] = Counter()
    for root in SOURCES:
        for file in sorted((PROJECT_ROOT / root).rglob("*.py")):
            path = file.relative_to(PROJECT_ROOT).as_posix()
            found.update((path, finding) for finding in findings(path, file.read_text()))
    return found


def test_sql_stays_in_repositories_and_commits_at_the_boundaries() -> None:
    found = project_findings()
    new = found - KNOWN_VIOLATIONS
    assert not new, "\n".join(f"{path}: {what} (x{n})" for (path, what), n in sorted(new.items()))
    stale = KNOWN_VIOLATIONS - found
    assert not stale, f"fixed: delete from KNOWN_VIOLATIONS: {sorted(stale)}"


def test_the_checks_catch_what_they_forbid() -> None:
    service = """
import sqlalchemy as sa
from sqlalchemy import Select, select, text

async def work(session, db_session):
    await session.execute(select(1))
    await db_session.scalar(sa.select(1))
    row = await session.get(Model, 1)
    await session.commit()
"""
    assert sorted(findings("app/units/service.py", service)) == [
        "commit: session.commit()",
        "sql: calls sa.select()",
        "sql: db_session.scalar()",
        "sql: imports sqlalchemy.select",
        "sql: imports sqlalchemy.text",
        "sql: session.execute()",
        "sql: session.get()",
    ]
    # A repository writes SQL and never commits; a job commits and writes no SQL.
    assert findings("app/units/repository.py", service) == ["commit: session.commit()"]
    assert "sql: session.get()" in findings("app/units/jobs.py", service)
    assert "commit: session.commit()" not in findings("app/units/jobs.py", service)
    # A model's DDL may use text(); a dict's get() is no SQL.
    assert findings("app/units/models.py", "from sqlalchemy import text") == []
    assert findings("app/units/service.py", "cache.get(1); sessions.get(2)") == []


def _layers() -> list[str]:
    config = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    [floors] = [c for c in config["tool"]["importlinter"]["contracts"] if c["id"] == "floors"]
    return [m.strip() for layer in floors["layers"] for m in layer.replace(":", "|").split("|")]


def test_every_part_of_app_stands_on_a_floor() -> None:
    app = PROJECT_ROOT / "app"
    parts = {
        f"app.{p.stem}"
        for p in app.iterdir()
        if (p.is_dir() and (p / "__init__.py").exists())
        or (p.suffix == ".py" and p.stem != "__init__")
    }
    assert parts - set(_layers()) == set(), "add it to the floors in pyproject.toml"


def _cycles(imports: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other round (Tarjan's strongly connected
    components with more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(imports.get(module, ())):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(imports):
        if module not in index:
            visit(module)
    return groups


def test_no_import_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    graph = grimp.build_graph(*SOURCES)
    imports = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    assert _cycles(imports) == []
