"""RFC 7240 ``Prefer`` on write endpoints: ``return=representation`` asks for derived state.

Writes store events and queue their dossiers; the worker derives them within seconds. A caller
that needs the derived state in the answer says so, and pays for the derivation in its request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Header

PREFER_DESCRIPTION = (
    "`return=representation`: derive the touched dossiers before answering (and, for one "
    "event, answer with the dossier's state). Without it the events are stored and their "
    "dossiers queued; the worker derives them within seconds, and a dossier read meanwhile "
    "already reflects them."
)
PreferHeader = Annotated[str | None, Header(description=PREFER_DESCRIPTION)]
# RFC 7240 §3: the answer says which preference it honoured.
REPRESENTATION_APPLIED = {"Preference-Applied": "return=representation"}


def wants_representation(prefer: str | None) -> bool:
    """RFC 7240 ``Prefer``: comma-separated preferences, ``return=representation`` among them."""
    if not prefer:
        return False
    wanted = (p.split(";")[0].strip().lower() for p in prefer.split(","))
    return "return=representation" in wanted
