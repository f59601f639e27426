"""The names of the API's enumerated values, in Vietnamese and English, and their place in the
OpenAPI document.

Each domain declares its vocabularies beside its enums (``named(DossierStatus, {...})``), with
one (Vietnamese, English) pair per value; a declaration that misses a value or names one the
enum lacks fails at import. :func:`document_enums` then writes them into every enumeration of
the OpenAPI document, for people and for tools:

- ``description``: a table value | tiếng Việt | English (Swagger UI renders it, in a schema and
  under a query parameter);
- ``x-enum-names``: ``{value: {"vi": ..., "en": ...}}``, for programs;
- ``x-enumDescriptions``: ``{value: "tiếng Việt — English"}``, which ReDoc shows as a table;
- ``x-enum-varnames``: identifiers for code generators (the enum's member names).

An enumeration in the document takes the names of the vocabulary of exactly its values, or
else of the vocabularies whose values include all of its own (a response that only ever says
``stored`` or ``duplicate`` shares the vocabulary of write results); one that no vocabulary
names, or two name differently, stays bare, and ``tests/core/test_enum_docs.py`` says which.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal, NamedTuple, TypeVar

Value = int | str
T = TypeVar("T")


class Name(NamedTuple):
    vi: str
    en: str


@dataclass(frozen=True)
class Vocabulary:
    title: str
    names: dict[Value, Name]
    varnames: dict[Value, str]


VOCABULARIES: list[Vocabulary] = []


def _values(kind: object) -> tuple[Value, ...]:
    if isinstance(kind, type) and issubclass(kind, Enum):
        return tuple(member.value for member in kind)
    if typing.get_origin(kind) is typing.Literal:
        return typing.get_args(kind)
    raise TypeError(f"{kind!r} is neither an Enum nor a Literal")


def _varname(value: Value) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", str(value)).strip("_").upper()


def named(kind: T, names: Mapping[Any, tuple[str, str]], title: str | None = None) -> T:
    """Declare the Vietnamese and English name of each value of an Enum or a Literal."""
    values = _values(kind)
    given = {(k.value if isinstance(k, Enum) else k): Name(*pair) for k, pair in names.items()}
    missing = [v for v in values if v not in given]
    extra = [v for v in given if v not in values]
    if missing or extra:
        raise ValueError(f"names of {kind!r}: missing {missing}, unknown {extra}")
    if any(not name.vi.strip() or not name.en.strip() for name in given.values()):
        raise ValueError(f"names of {kind!r}: every value needs a Vietnamese and an English name")
    members = (
        {member.value: member.name.upper() for member in kind}
        if isinstance(kind, type) and issubclass(kind, Enum)
        else {}
    )
    VOCABULARIES.append(
        Vocabulary(
            title=title or str(getattr(kind, "__name__", values)),
            names={v: given[v] for v in values},
            varnames={v: members.get(v) or _varname(v) for v in values},
        )
    )
    return kind


def lookup(values: list[Value]) -> Vocabulary | None:
    """The names of these values: the vocabulary of exactly these values, else every vocabulary
    holding them all, when they agree."""
    if not values:
        return None
    wanted = set(values)
    exact = [v for v in VOCABULARIES if set(v.names) == wanted]
    candidates = exact or [v for v in VOCABULARIES if wanted <= set(v.names)]
    if not candidates:
        return None
    first = candidates[0]
    for other in candidates[1:]:
        if any(other.names[value] != first.names[value] for value in values):
            return None
    return first


TABLE_HEAD = "| Giá trị / Value | Tiếng Việt | English |\n|---|---|---|\n"


def table(values: list[Value], vocabulary: Vocabulary) -> str:
    rows = "".join(
        f"| `{value}` | {vocabulary.names[value].vi} | {vocabulary.names[value].en} |\n"
        for value in values
    )
    return TABLE_HEAD + rows


def _with_table(description: str | None, text: str) -> str:
    if description and TABLE_HEAD in description:
        return description
    return f"{description}\n\n{text}" if description else text


def _annotate(node: dict[str, Any]) -> Vocabulary | None:
    values = node.get("enum") or node.get("x-extensible-enum")
    if not isinstance(values, list):
        return None
    vocabulary = lookup(values)
    if vocabulary is None:
        return None
    node["x-enum-names"] = {
        str(v): {"vi": vocabulary.names[v].vi, "en": vocabulary.names[v].en} for v in values
    }
    node["x-enumDescriptions"] = {
        str(v): f"{vocabulary.names[v].vi} — {vocabulary.names[v].en}" for v in values
    }
    if all(isinstance(v, int) for v in values):
        node["x-enum-varnames"] = [vocabulary.varnames[v] for v in values]
    node["description"] = _with_table(node.get("description"), table(values, vocabulary))
    return vocabulary


def _nodes(node: object) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for child in node.values():
            yield from _nodes(child)
    elif isinstance(node, list):
        for child in node:
            yield from _nodes(child)


def _enum_of(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any] | None:
    """The enumeration a parameter's schema is (directly, by $ref or as one of anyOf)."""
    for option in [schema, *schema.get("anyOf", []), *schema.get("oneOf", [])]:
        ref = option.get("$ref", "")
        if ref.startswith("#/components/schemas/"):
            option = components.get(ref.rsplit("/", 1)[1], {})
        if "enum" in option or "x-extensible-enum" in option:
            return dict(option)
    return None


def document_enums(openapi: dict[str, Any]) -> dict[str, Any]:
    """Write the names of every enumerated value into an OpenAPI document (in place)."""
    for node in list(_nodes(openapi)):
        _annotate(node)
    # Swagger UI shows a parameter's own description, not its schema's: the table goes there.
    components = openapi.get("components", {}).get("schemas", {})
    for path in openapi.get("paths", {}).values():
        for operation in path.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else ():
                enum = _enum_of(parameter.get("schema", {}), components)
                vocabulary = lookup(enum.get("enum") or enum["x-extensible-enum"]) if enum else None
                if enum is not None and vocabulary is not None:
                    values = enum.get("enum") or enum["x-extensible-enum"]
                    parameter["description"] = _with_table(
                        parameter.get("description"), table(values, vocabulary)
                    )
    return openapi


# What became of one posted item (an event, a portal record, an indicator value): one
# vocabulary for every endpoint that answers per item.
WriteResult = Literal[
    "stored", "updated", "duplicate", "conflict", "rejected", "unchanged", "quarantined"
]
named(WriteResult, {
    "stored": ("Đã lưu", "Stored"),
    "updated": ("Đã cập nhật", "Updated"),
    "duplicate": ("Trùng, không thay đổi gì", "Duplicate: nothing changed"),
    "conflict": ("Xung đột, không thay đổi gì", "Conflict: nothing changed"),
    "rejected": ("Bị từ chối", "Rejected"),
    "unchanged": ("Không thay đổi", "Unchanged"),
    "quarantined": ("Tạm giữ chờ xác định đơn vị", "Quarantined until its unit is known"),
})  # fmt: skip
