"""One module per scenario, each with ``TITLE`` and ``run(bench) -> ScenarioResult``.

Adding a scenario is adding a module here and its name to ``bench.config.SCENARIOS`` (and to
``HTTP_SCENARIOS`` if it measures the API: it then runs once per API process count, after
``bench.use_api_processes``; ``bench.start_http()`` starts the API and its baseline with that
count, and ``bench.tag(...)`` prefixes generated ids so that passes do not collide; so does
``bench.run_id``, which carries the pass). A figure
that answers a target of ``bench.targets.TARGETS`` is built with ``bench.targets.figure(key,
…)``; throughput figures carry ``p50_ms`` / ``p99_ms`` (and the baseline's). A listed scenario
whose module is missing is left out of the default run and its targets show "not measured".
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
