"""The cache headers of GET queries (persisted ones above all: a GET naming a document by its hash is a
short URL a CDN or the browser can keep).

A query answered without an error gets an ETag (a hash of its body) and `Cache-Control`: `no-cache`
(keep it, but ask again each time; a matching `If-None-Match` answers 304 without the body) or, with
`COCO_GRAPHQL_GET_MAX_AGE`, a max-age; `private` when access control is on, since the answer then depends
on the token. Anything else (an error, a refusal, a persisted document not found yet) is `no-store`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from api.config import Settings

# The answer differs by negotiated media type, and by token when access control is on.
VARY = "Accept, Authorization"


@dataclass(frozen=True)
class Policy:
    max_age_s: int
    private: bool

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        secured = bool(
            settings.tokens
            or settings.tokens_file
            or settings.jwt_secret
            or settings.jwt_jwks_url
            or settings.jwt_jwks_file
        )
        return cls(max(settings.graphql_get_max_age_s, 0), private=secured)

    @property
    def cache_control(self) -> str:
        audience = "private" if self.private else "public"
        return f"{audience}, max-age={self.max_age_s}" if self.max_age_s else f"{audience}, no-cache"


def cached(request: Request, response: Response, clean: bool, policy: Policy) -> Response:
    """The response with its cache headers, or 304 when the client holds the same body already."""
    if not clean or response.status_code != 200:
        response.headers["Cache-Control"] = "no-store"
        return response
    headers = {
        "ETag": '"' + hashlib.sha256(response.body).hexdigest()[:32] + '"',
        "Cache-Control": policy.cache_control,
        "Vary": VARY,
    }
    if _matches(request.headers.get("if-none-match"), headers["ETag"]):
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    return response


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag in tags or "*" in tags
