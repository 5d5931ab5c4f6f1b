"""Text field types for user input that PostgreSQL can store and people can read.

PostgreSQL text and jsonb cannot hold the NUL character, and an unpaired UTF-16 surrogate
cannot be encoded as UTF-8: both are refused here, at the door, as a 422 naming the field,
instead of failing later in the database.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, StringConstraints


def storable_text(value: str) -> str:
    """Return `value` if PostgreSQL can store it as text, else raise ValueError."""
    if "\x00" in value:
        raise ValueError("text must not contain the NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no unpaired surrogates)") from None
    return value


def storable_json(value: Any) -> Any:
    """Return `value` if PostgreSQL can store it as jsonb (no NUL, valid Unicode), else ValueError."""
    if isinstance(value, str):
        storable_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            storable_json(key)
            storable_json(item)
    elif isinstance(value, list | tuple):
        for item in value:
            storable_json(item)
    return value


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(storable_text),
]
"""A display name: 1-100 characters after trimming surrounding whitespace."""

Description = Annotated[str, StringConstraints(max_length=2000), AfterValidator(storable_text)]
"""Free text up to 2000 characters."""

Reason = Annotated[str, StringConstraints(max_length=500), AfterValidator(storable_text)]
"""Why something was done, up to 500 characters."""
