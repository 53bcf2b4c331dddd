"""Where in a JWT's claims the scope, the actor and the teams are: claim paths.

A path names a claim inside the claims object, key by key, as PostgREST's `jwt-role-claim-key`:

    scope                            {"scope": "read write"}
    realm_access.roles               {"realm_access": {"roles": ["write"]}}            (Keycloak)
    resource_access."coco-api".roles a key in double quotes is taken verbatim
    "https://coco.example/scope"     {"https://coco.example/scope": [...]}             (Auth0)
    ."https://coco.example/scope"    a leading dot is allowed (PostgREST writes one)
    https://coco.example/scope       unquoted, a path that begins with http:// or https:// is one key

Keys are separated by dots outside double quotes; a quoted key may hold dots and slashes but no
double quote. A path that does not lead to a value gives None.
"""

from __future__ import annotations

from typing import Any

ClaimPath = tuple[str, ...]


def parse_path(text: str) -> ClaimPath:
    """The keys of a claim path; ValueError names what is wrong with it."""
    raw = text.strip()
    if raw.startswith(("https://", "http://")):
        return (raw,)
    if raw.startswith("."):
        raw = raw[1:]
    keys: list[str] = []
    i = 0
    while True:
        if i < len(raw) and raw[i] == '"':
            end = raw.find('"', i + 1)
            if end < 0:
                raise ValueError(f"claim path {text!r}: a quoted key is not closed")
            key = raw[i + 1 : end]
            i = end + 1
            if i < len(raw) and raw[i] != ".":
                raise ValueError(f"claim path {text!r}: a dot must follow a quoted key")
        else:
            end = raw.find(".", i)
            end = len(raw) if end < 0 else end
            key = raw[i:end]
            if '"' in key:
                raise ValueError(f"claim path {text!r}: a quote may only open a key")
            i = end
        if not key:
            raise ValueError(f"claim path {text!r}: empty key")
        keys.append(key)
        if i >= len(raw):
            return tuple(keys)
        i += 1  # the dot
        if i >= len(raw):
            raise ValueError(f"claim path {text!r}: ends with a dot")


def lookup(claims: Any, path: ClaimPath) -> Any:
    value = claims
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def names(value: Any) -> list[str]:
    """A claim that lists names: a space-separated string (OAuth's `scope`) or a list of strings."""
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
