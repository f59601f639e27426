"""An import-linter contract type of this project (``[tool.importlinter]`` in pyproject.toml).

``edge``: the HTTP edge (routers) may import any domain's service, schemas and access
dependencies, but never another domain's repository: what a route needs from another domain
goes through that domain's rules. Built-in ``forbidden`` contracts cannot say "another": a
router importing its own domain's repository is fine.
"""

from __future__ import annotations

from typing import Any

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output
from importlinter.application import contract_utils
from importlinter.application.contract_utils import AlertLevel
from importlinter.domain.helpers import module_expressions_to_modules
from importlinter.domain.imports import Module


def is_repository(module: str) -> bool:
    name = module.rsplit(".", 1)[-1]
    return name == "repository" or name.endswith("_repository")


class EdgeContract(Contract):
    """Options: ``edges``, the edge modules (``app.*.router``, ...), whose domain is the
    package that holds them; ``ignore_imports`` as in the built-in contracts. A repository is
    a module named ``repository`` or ``*_repository`` (where the SQL is:
    tests/test_architecture.py holds it there)."""

    type_name = "edge"

    edges = fields.ListField(subfield=fields.ModuleExpressionField())
    ignore_imports = fields.SetField(subfield=fields.ImportExpressionField(), required=False)

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        removal = contract_utils.remove_ignored_imports_and_report(
            graph=graph,
            ignore_imports=self.ignore_imports,  # type: ignore[arg-type]
            unmatched_alerting=AlertLevel.ERROR,
        )
        edges = module_expressions_to_modules(graph, self.edges)  # type: ignore[arg-type]
        broken: list[dict[str, Any]] = []
        for edge in sorted(edges, key=lambda m: m.name):
            domain = edge.parent
            for imported in sorted(graph.find_modules_directly_imported_by(edge.name)):
                if is_repository(imported) and not Module(imported).is_descendant_of(domain):
                    lines = graph.get_import_details(importer=edge.name, imported=imported)
                    broken.append(
                        {
                            "importer": edge.name,
                            "imported": imported,
                            "lines": [d["line_number"] for d in lines],
                        }
                    )
        return ContractCheck(
            kept=not broken,
            warnings=list(removal.warnings),
            ignored_import_count=removal.ignored_import_count,
            metadata={"broken": broken},
        )

    def render_broken_contract(self, check: ContractCheck) -> None:
        for item in check.metadata["broken"]:
            where = ", ".join(f"l.{n}" for n in item["lines"])
            output.print_error(
                f"{item['importer']} imports another domain's {item['imported']} ({where})",
                bold=False,
            )
            output.new_line()
