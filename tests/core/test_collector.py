"""The API process's cycle collector: how many objects it lets a request allocate."""

from __future__ import annotations

import gc

import pytest
from pydantic import ValidationError

from app.core.settings import Settings
from tests.helpers import instance


async def test_an_api_process_collects_after_its_threshold_and_restores_it(
    settings: Settings,
) -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        async with instance(settings, api_gc_threshold=123_456):
            assert gc.get_threshold() == (123_456, 10, 10)
        assert gc.get_threshold() == (700, 10, 10)
        async with instance(settings, api_gc_threshold=0):  # 0: Python's own thresholds
            assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*before)


def test_the_default_threshold_is_one_hundred_thousand_objects() -> None:
    assert Settings.model_fields["api_gc_threshold"].default == 100_000


@pytest.mark.parametrize("value", ["-1", "10000001", "many"])
def test_a_threshold_out_of_range_is_refused_at_start(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHISO_API_GC_THRESHOLD", value)
    with pytest.raises(ValidationError, match="api_gc_threshold"):
        Settings()
