"""Public keys for verifying JWTs, from a JWKS document (RFC 7517) at a URL or in a file.

Identity providers (Keycloak, Auth0, Entra ID, Google) sign with private keys and publish the
public halves as a JWKS; each token's header names its key by `kid`. Keys are cached; a token
whose `kid` is unknown makes the set be read again, at most once per `refetch_s` (so rotation
needs no restart, and a stream of made-up kids cannot turn the server into a fetch loop against
the provider), and a set older than `max_age_s` is read again on next use (so a withdrawn key
stops working). Reading may block (a URL, with a timeout): the edge runs `refresh` in a thread
(`wanted` tells it when), never on the event loop. PyJWT does the cryptography.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("coco.auth")

# A JWKS is a few keys; anything much larger is not one.
MAX_DOCUMENT_BYTES = 1024 * 1024
# After a failed read with no keys at all, how long requests are refused before the next try.
FAILURE_BACKOFF_S = 5.0

# The algorithms a key of each type (and, for EC, curve) may verify, when the JWK names no `alg`.
RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
EC_ALGORITHMS = {"P-256": ("ES256",), "P-384": ("ES384",), "P-521": ("ES512",)}
OKP_ALGORITHMS = {"Ed25519": ("EdDSA",), "Ed448": ("EdDSA",)}
ASYMMETRIC_ALGORITHMS = (*RSA_ALGORITHMS, "ES256", "ES384", "ES512", "EdDSA")


class KeysUnavailable(Exception):
    """The key set could not be read and no earlier copy is at hand."""


class Key:
    """One public key of the set and the algorithms it may verify."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.kid: str | None = document.get("kid") if isinstance(document.get("kid"), str) else None
        named = document.get("alg")
        if isinstance(named, str):
            algorithms: tuple[str, ...] = (named,) if named in ASYMMETRIC_ALGORITHMS else ()
        elif document.get("kty") == "RSA":
            algorithms = RSA_ALGORITHMS
        elif document.get("kty") == "EC":
            algorithms = EC_ALGORITHMS.get(str(document.get("crv")), ())
        elif document.get("kty") == "OKP":
            algorithms = OKP_ALGORITHMS.get(str(document.get("crv")), ())
        else:
            # Symmetric ("oct") keys are never taken from a key set: a shared secret is COCO_JWT_SECRET.
            algorithms = ()
        self.algorithms = algorithms
        self.usable = bool(algorithms) and document.get("use", "sig") == "sig"
        # PyJWK parses the key for the first algorithm; the key object serves every one of them.
        # Imported here, as in api/edge/auth.py: only a server given a key set needs it.
        import jwt

        self.key = jwt.PyJWK(document, algorithm=algorithms[0]).key if self.usable else None


def parse_key_set(raw: bytes | str) -> list[Key]:
    try:
        document = json.loads(raw)
    except ValueError as error:
        raise KeysUnavailable(f"the key set is not JSON: {error}") from None
    items = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise KeysUnavailable('the key set has no "keys" list')
    import jwt

    keys = []
    for item in items:
        if not isinstance(item, dict):
            continue
        try:
            key = Key(item)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError) as error:
            log.warning("JWKS: key %s skipped: %s", item.get("kid"), error)
            continue
        if key.usable:
            keys.append(key)
    if not keys:
        raise KeysUnavailable("the key set has no signing key of a supported type")
    return keys


class KeySet:
    def __init__(
        self,
        *,
        url: str | None = None,
        path: str | Path | None = None,
        timeout_s: float = 5.0,
        refetch_s: float = 60.0,
        max_age_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (url is None) == (path is None):
            raise ValueError("a key set is read from a URL or from a file, one of the two")
        if url is not None and not url.startswith(("https://", "http://")):
            raise ValueError(f"COCO_JWT_JWKS_URL must be an http(s) URL, not {url!r}")
        self.url = url
        self.path = Path(path) if path is not None else None
        self.timeout_s = timeout_s
        self.refetch_s = refetch_s
        self.max_age_s = max_age_s
        self.clock = clock
        self.keys: list[Key] | None = None
        self.loaded_at = 0.0
        self.refetched_at: float | None = None
        self.failed_at: float | None = None
        self.reads = 0
        self.lock = threading.Lock()

    @property
    def source(self) -> str:
        return self.url or str(self.path)

    def wanted(self, kid: str | None) -> bool:
        """Whether looking up `kid` now would read the set (the caller then runs `refresh` off the event loop)."""
        now = self.clock()
        if self.keys is None:
            return self.failed_at is None or now - self.failed_at >= FAILURE_BACKOFF_S
        if now - self.loaded_at >= self.max_age_s:
            return True
        if self._has(kid):
            return False
        return self.refetched_at is None or now - self.refetched_at >= self.refetch_s

    def refresh(self, kid: str | None) -> None:
        """Read the set again if `wanted(kid)` still holds once this thread has the lock."""
        with self.lock:
            if not self.wanted(kid):
                return
            now = self.clock()
            if self.keys is not None and not self._has(kid) and now - self.loaded_at < self.max_age_s:
                self.refetched_at = now
            try:
                keys = parse_key_set(self._read())
            except (KeysUnavailable, OSError, ValueError) as error:
                self.failed_at = now
                if self.keys is None:
                    raise KeysUnavailable(
                        f"the JWT signing keys could not be read from {self.source}: {error}"
                    ) from None
                # The cached keys go on serving: a provider's outage is no reason to refuse its valid tokens.
                log.warning("JWKS: keeping the cached keys; reading %s failed: %s", self.source, error)
                self.loaded_at = now
                return
            self.keys, self.loaded_at, self.failed_at = keys, now, None
            log.info("JWKS: %d keys read from %s", len(keys), self.source)

    def find(self, kid: str | None, algorithm: str) -> list[Key]:
        """The keys that may verify a token with this `kid` and `alg`, reading the set first when due
        (a blocking read: in a request, `refresh` ran in a thread just before, so this reads nothing)."""
        if self.wanted(kid):
            self.refresh(kid)
        if self.keys is None:
            raise KeysUnavailable(f"the JWT signing keys could not be read from {self.source}")
        return [k for k in self.keys if (kid is None or k.kid == kid) and algorithm in k.algorithms]

    def _has(self, kid: str | None) -> bool:
        return self.keys is not None and (kid is None or any(k.kid == kid for k in self.keys))

    def _read(self) -> bytes:
        self.reads += 1
        if self.path is not None:
            return self.path.read_bytes()
        assert self.url is not None
        request = urllib.request.Request(self.url, headers={"Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            body: bytes = response.read(MAX_DOCUMENT_BYTES + 1)
        if len(body) > MAX_DOCUMENT_BYTES:
            raise KeysUnavailable(f"the key set is larger than {MAX_DOCUMENT_BYTES} bytes")
        return body
