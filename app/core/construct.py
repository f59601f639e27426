"""Pydantic models built from values already checked, without validating them again.

``Model.model_construct`` walks every field's default at each call; a call of 1,000 portal
records builds thousands of models, so :func:`constructed` fills a copy of the model's
defaults, worked out once per model, instead. The instance is the one ``model_construct``
builds: the same values in field order, the same fields set.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

_new = object.__setattr__
# Per model: every field in order, with its default (None for a required field, which the
# caller always gives).
_BLANKS: dict[type[BaseModel], dict[str, Any]] = {}


def _blank(model: type[BaseModel]) -> dict[str, Any]:
    blank = _BLANKS.get(model)
    if blank is None:
        assert not model.__private_attributes__, "private attributes need model_construct"
        assert model.model_config.get("extra") != "allow", "extra fields need model_construct"
        blank = {
            name: None if field.is_required() else field.get_default(call_default_factory=True)
            for name, field in model.model_fields.items()
        }
        assert all(not isinstance(v, list | dict | set) for v in blank.values()), (
            "a mutable default would be shared between instances"
        )
        _BLANKS[model] = blank
    return blank


def constructed(model: type[M], values: dict[str, Any]) -> M:
    """``model.model_construct(**values)`` for ``values`` that name every required field and
    nothing else: no validation, no walk over the defaults."""
    instance = model.__new__(model)
    _new(instance, "__dict__", {**_blank(model), **values})
    _new(instance, "__pydantic_fields_set__", set(values))
    _new(instance, "__pydantic_extra__", None)
    _new(instance, "__pydantic_private__", None)
    return instance
