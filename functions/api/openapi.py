"""Print the API's OpenAPI schema (sorted keys, indent 2): `make openapi` writes openapi.json.

The app is built with a database that refuses to connect: building the schema does no I/O.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from functions.api.app import create_app
from functions.api.context import ApiContext
from tekoa.settings import Settings


class _NoDatabase:
    def connection(self) -> NoReturn:
        raise RuntimeError("the schema export touches no database")


def build_schema() -> dict[str, Any]:
    """The OpenAPI document of the app as `create_app` builds it."""
    return create_app(ApiContext.build(Settings(), _NoDatabase())).openapi()


def render_schema() -> str:
    """The schema as committed: JSON, sorted keys, indent 2, trailing newline."""
    return json.dumps(build_schema(), sort_keys=True, indent=2) + "\n"


def main() -> None:
    print(render_schema(), end="")


if __name__ == "__main__":
    main()
