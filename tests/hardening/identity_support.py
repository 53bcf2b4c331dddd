"""An identity provider for the tests: keys made by `cryptography`, a JWKS served over real HTTP."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

ISSUER = "https://idp.coco.test/"
AUDIENCE = "coco-api"


class SigningKey:
    """A private key, its kid and algorithm, and its public half as a JWK."""

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        self.kid = f"{algorithm.lower()}-{uuid.uuid4().hex[:8]}"
        if algorithm.startswith(("RS", "PS")):
            self.private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            public = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        elif algorithm == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
            public = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        elif algorithm == "ES384":
            self.private = ec.generate_private_key(ec.SECP384R1())
            public = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        elif algorithm == "EdDSA":
            self.private = ed25519.Ed25519PrivateKey.generate()
            public = OKPAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            raise ValueError(algorithm)
        self.jwk = {**public, "kid": self.kid, "use": "sig"}

    def mint(self, claims: dict[str, Any], *, kid: str | None = "own", **headers: Any) -> str:
        """A token with the provider's iss and aud, valid for ten minutes, unless `claims` says otherwise
        (a claim given as None is left out)."""
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600, "sub": "user-1", **claims}
        body = {k: v for k, v in body.items() if v is not None}  # None: leave the claim out
        header = {**headers}
        if kid is not None:
            header["kid"] = self.kid if kid == "own" else kid
        return jwt.encode(body, self.private, algorithm=self.algorithm, headers=header)


class KeyServer:
    """A JWKS endpoint on loopback whose keys the test may change; it counts the reads."""

    def __init__(self, *keys: SigningKey) -> None:
        self.keys = list(keys)
        self.reads = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.reads += 1
                body = json.dumps({"keys": [k.jwk for k in owner.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"

    def __enter__(self) -> KeyServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def unsigned(claims: dict[str, Any]) -> str:
    """A token with `alg: none`, as an attacker would send it."""
    return jwt.encode({"iss": ISSUER, "aud": AUDIENCE, **claims}, None, algorithm="none")
