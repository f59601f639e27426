"""Signatures: what chiso sends verifies with the receiver snippet of docs/WEBHOOKS.md."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from typing import Any

from app.core.settings import PROJECT_ROOT
from app.webhooks.signing import signature, verify

SECRET = "whsec_0123456789abcdef"
BODY = b'{"id":1,"kind":"dossier.overdue","data":{"dossier_code":"H01.01-260302-0001"}}'


def docs_snippet() -> Any:
    """The receiver's function, exactly as the documentation prints it."""
    text = (PROJECT_ROOT / "docs" / "WEBHOOKS.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    namespace: dict[str, Any] = {}
    exec(compile(code, "WEBHOOKS.md", "exec"), namespace)
    return namespace["verify_chiso_signature"]


def test_header_is_timestamp_and_hmac_of_timestamp_dot_body() -> None:
    header = signature(SECRET, BODY, 1772697600)
    mac = hmac.new(SECRET.encode(), b"1772697600." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1772697600,v1={mac}"


def test_the_documented_receiver_accepts_chiso_and_rejects_forgeries() -> None:
    receiver = docs_snippet()
    now = int(time.time())
    header = signature(SECRET, BODY, now)
    assert receiver(SECRET, BODY, header)
    assert not receiver(SECRET, BODY + b" ", header)  # body changed
    assert not receiver("whsec_another-secret-value", BODY, header)
    assert not receiver(SECRET, BODY, signature(SECRET, BODY, now - 3600))  # a replay
    assert not receiver(SECRET, BODY, "v1=deadbeef")
    assert not receiver(SECRET, BODY, "garbage")


def test_the_reference_verifier_agrees() -> None:
    now = int(time.time())
    header = signature(SECRET, BODY, now)
    assert verify(SECRET, BODY, header, now)
    assert verify(SECRET, BODY, f"{header},v1=00ff", now)  # any matching v1 is enough
    assert not verify(SECRET, BODY, header, now + 301)
    assert not verify(SECRET, BODY[:-1], header, now)
    assert not verify(SECRET, BODY, "t=soon,v1=00", now)
