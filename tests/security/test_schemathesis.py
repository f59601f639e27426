"""Bad input at scale: schemathesis generates requests for every operation of the OpenAPI
schema (valid and invalid ones) against the app in-process, authenticated as admin.

No answer may be a 5xx, and every answer must match the schema: a documented status, the
documented content type, a body valid against the documented schema, and invalid input
refused with a 4xx. Derandomised, so a run is repeatable.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.core.settings import Settings
from app.main import create_app
from tests.helpers import ADMIN
from tests.security.conftest import World

# `positive_data_acceptance` is left out on purpose: input that is valid for the schema may
# still break a business rule (an unknown unit, a period not ended) and get a 404 or 422.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]
EXAMPLES = 25


@pytest.fixture
def fuzzed_app(settings: Settings) -> FastAPI:
    # Its own instance (schemathesis runs it on its own event loop), without rate limits.
    return create_app(
        settings.model_copy(update={"rate_public_per_minute": 0, "rate_write_per_minute": 0})
    )


@pytest.fixture
async def seeded(client: httpx.AsyncClient, world: World) -> World:
    return world


def _label(operation: Any) -> str:
    return f"{operation.method.upper()} {operation.path}"


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_operation_answers_5xx_or_outside_its_schema(
    fuzzed_app: FastAPI, seeded: World, mode: str
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app)
    generation = schemathesis.GenerationMode(mode)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 40

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=generation))
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case) -> None:
            response = case.call(headers=ADMIN)
            case.validate_response(response, checks=CHECKS, headers=ADMIN)

        try:
            run()
        except Unsatisfiable:
            # Nothing invalid can be written for it (no parameters, or a free-form string).
            assert generation is schemathesis.GenerationMode.NEGATIVE, _label(operation)
        except (Exception, BaseExceptionGroup) as exc:  # every operation, not just the first
            failures.append(f"{_label(operation)}: {type(exc).__name__}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
