"""One module per scenario, each with ``TITLE`` and ``run(bench) -> ScenarioResult``.

Adding a scenario is adding a module here and its name to ``bench.config.SCENARIOS``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType

from bench.context import Bench
from bench.model import ScenarioResult


def load(name: str) -> ModuleType:
    return importlib.import_module(f"bench.scenarios.{name}")


def runner(name: str) -> tuple[str, Callable[[Bench], ScenarioResult]]:
    module = load(name)
    return module.TITLE, module.run
