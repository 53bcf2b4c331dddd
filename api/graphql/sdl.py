"""Print the schema's SDL: `python -m api.graphql.sdl > schema/schema.graphql`."""

from __future__ import annotations

from api.graphql.schema import make_schema


def sdl() -> str:
    return str(make_schema()).rstrip("\n") + "\n"


if __name__ == "__main__":
    print(sdl(), end="")
