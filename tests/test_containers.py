"""Static checks of the container setup (no Docker engine needed).

``compose.yaml`` and the ``Dockerfile`` are read as text/YAML and checked against the code:
every project service runs a real ``chiso`` subcommand, every ``CHISO_*`` variable is a
setting, the infrastructure images and start-up ordering are what the deployment expects.
"""

from __future__ import annotations

import argparse
import re
from functools import cache
from typing import Any

import yaml

from app.cli import build_parser
from app.core.settings import PROJECT_ROOT, Settings

COMPOSE_FILE = PROJECT_ROOT / "compose.yaml"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"


@cache
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return data


def services() -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose()["services"]
    return result


def project_services() -> dict[str, dict[str, Any]]:
    """Services built from this repository (build context ``.``)."""
    found = {}
    for name, service in services().items():
        build = service.get("build")
        context = build.get("context", ".") if isinstance(build, dict) else build
        if context in (".", "./"):
            found[name] = service
    return found


def cli_subcommands() -> set[str]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    raise AssertionError("chiso CLI has no subcommands")


def command_words(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    assert command, "project service without a command"
    return command.split() if isinstance(command, str) else [str(word) for word in command]


def depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):  # short form: no condition at all
        return {name: {} for name in deps}
    result: dict[str, dict[str, Any]] = deps
    return result


def image_major(image: str) -> int:
    match = re.fullmatch(r"[\w./-]+:(\d+)(?:[.\-].*)?", image)
    assert match, f"image {image!r} has no numeric version tag"
    return int(match.group(1))


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    logical, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    if current:
        logical.append(current)
    pairs = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        pairs.append((keyword.upper(), args.strip()))
    return pairs


# --- compose.yaml -------------------------------------------------------------------------


def test_project_services_exist() -> None:
    assert {"migrate", "api", "worker", "portal-sim"} <= set(project_services())


def test_every_project_service_runs_a_real_chiso_subcommand() -> None:
    known = cli_subcommands()
    unknown = {
        name: command_words(service)[0]
        for name, service in project_services().items()
        if command_words(service)[0] not in known
    }
    assert not unknown, f"commands not in `chiso` CLI ({sorted(known)}): {unknown}"


def test_migrate_runs_migrate() -> None:
    assert command_words(services()["migrate"])[0] == "migrate"


def test_infrastructure_image_versions() -> None:
    assert image_major(services()["postgres"]["image"]) == 16
    assert image_major(services()["redis"]["image"]) == 7


def test_postgres_dependents_wait_for_healthy() -> None:
    dependents = {
        name: deps["postgres"]
        for name, service in services().items()
        if "postgres" in (deps := depends_on(service))
    }
    assert dependents, "nothing waits for postgres"
    for name, dep in dependents.items():
        assert dep.get("condition") == "service_healthy", name


def test_api_waits_for_migrations() -> None:
    api = depends_on(services()["api"])
    assert api["migrate"]["condition"] == "service_completed_successfully"
    assert api["redis"]["condition"] == "service_healthy"


def test_healthchecks_on_infrastructure_and_api() -> None:
    for name in ("postgres", "redis", "api"):
        healthcheck = services()[name].get("healthcheck", {})
        assert healthcheck.get("test") and not healthcheck.get("disable"), name
    assert any("/readyz" in str(part) for part in services()["api"]["healthcheck"]["test"])


def test_named_volumes_declared() -> None:
    declared = set(compose().get("volumes") or {})
    used = set()
    for service in services().values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume["source"]
            if not source.startswith((".", "/", "~")):
                used.add(source)
    assert used, "no named volumes"
    assert used <= declared, f"undeclared volumes: {sorted(used - declared)}"


def test_compose_chiso_variables_are_settings() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    names = set(re.findall(r"\bCHISO_([A-Z0-9_]+)", text))
    assert names
    fields = set(Settings.model_fields)
    missing = sorted(f"CHISO_{name}" for name in names if name.lower() not in fields)
    assert not missing, f"not fields of Settings: {missing}"


def test_admin_token_is_required() -> None:
    for name in project_services():
        env = services()[name].get("environment") or {}
        assert re.fullmatch(r"\$\{CHISO_ADMIN_TOKEN:\?.+\}", str(env.get("CHISO_ADMIN_TOKEN")))


# --- Dockerfile ---------------------------------------------------------------------------


def test_dockerfile_is_multi_stage() -> None:
    froms = [args for keyword, args in dockerfile_instructions() if keyword == "FROM"]
    assert len(froms) >= 2, froms


def test_dockerfile_runs_as_non_root() -> None:
    users = [args for keyword, args in dockerfile_instructions() if keyword == "USER"]
    assert users, "no USER instruction"
    final = users[-1].split(":", 1)[0]
    assert final not in ("root", "0"), users


def test_dockerfile_entrypoint_is_chiso() -> None:
    entrypoints = [args for keyword, args in dockerfile_instructions() if keyword == "ENTRYPOINT"]
    assert entrypoints, "no ENTRYPOINT"
    assert yaml.safe_load(entrypoints[-1]) == ["chiso"]


def test_dockerfile_installs_the_lock_with_hashes() -> None:
    instructions = dockerfile_instructions()
    assert any(
        keyword == "COPY" and "requirements/base.lock" in args for keyword, args in instructions
    )
    assert any(
        keyword == "RUN" and "pip install" in args and "--require-hashes" in args
        for keyword, args in instructions
    )
