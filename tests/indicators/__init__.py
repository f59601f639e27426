"""Service index tests. Builders of catalog documents the tests change, shared by the modules."""

from __future__ import annotations

import copy
from datetime import date
from functools import cache
from typing import Any

import yaml

from app.indicators.catalog import CATALOG_DIR, Catalog, CatalogVersion, build_catalog
from app.indicators.scoring import Counts

SHIPPED_FILE = CATALOG_DIR / "766-2022.yaml"


@cache
def _shipped_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(SHIPPED_FILE.read_text(encoding="utf-8"))
    return document


def shipped_document() -> dict[str, Any]:
    """A fresh, editable copy of the shipped version's YAML document."""
    return copy.deepcopy(_shipped_document())


def metric_entry(document: dict[str, Any], code: str) -> dict[str, Any]:
    for group in document["groups"]:
        for metric in group["metrics"]:
            if metric["code"] == code:
                entry: dict[str, Any] = metric
                return entry
    raise KeyError(code)


def switched_catalog(switch_on: date, receiving_threshold: float = 0.80) -> Catalog:
    """The shipped version ending the day before ``switch_on``, then a version ``test-next``
    whose only change is DOSSIER_RECEIVING_SATISFACTION's threshold (0.90 → 0.80)."""
    old = shipped_document()
    old["valid_to"] = date.fromordinal(switch_on.toordinal() - 1)
    new = shipped_document()
    new.update(version="test-next", valid_from=switch_on, valid_to=None)
    metric_entry(new, "DOSSIER_RECEIVING_SATISFACTION")["threshold"] = receiving_threshold
    return build_catalog([CatalogVersion.model_validate(old), CatalogVersion.model_validate(new)])


def full_marks(version: CatalogVersion) -> dict[str, Counts]:
    """Every counted code at a rate of 1 (10/10): each metric earns its maximum."""
    return {code: Counts(10, 10) for code in version.counted_codes}
