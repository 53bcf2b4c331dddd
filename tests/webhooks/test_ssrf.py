"""Server-side request forgery: private addresses refused at creation and at every attempt."""

from __future__ import annotations

import asyncio
import ipaddress
import random
from collections.abc import Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks import Webhook as Verifier

from api.store import WebhookStore
from api.webhooks import ssrf
from api.webhooks.delivery import parse_retry_after, retry_delay
from api.webhooks.signing import new_secret, signed_headers
from tests.conftest import RunningServer

from .conftest import Admin, Receiver, checkins

REFUSED = [
    ("http://127.0.0.1:8080/hook", "a loopback address"),
    ("http://localhost/hook", "a loopback address"),
    ("http://[::1]/hook", "a loopback address"),
    ("http://10.1.2.3/hook", "a private address"),
    ("https://192.168.0.10/hook", "a private address"),
    ("http://172.16.5.5/hook", "a private address"),
    ("http://169.254.169.254/latest/meta-data", "a link-local address"),
    ("http://[fe80::1]/hook", "a link-local address"),
    ("http://[::ffff:127.0.0.1]/hook", "a loopback address"),
    ("http://0.0.0.0/hook", "the unspecified address"),
    ("http://100.64.0.1/hook", "not a public address"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED)
async def test_private_addresses_are_refused(url: str, reason: str) -> None:
    with pytest.raises(ssrf.Refused) as refused:
        await ssrf.check(url, allow_private=False)
    assert reason in str(refused.value) and "COCO_WEBHOOK_ALLOW_PRIVATE" in str(refused.value)
    await ssrf.check(url, allow_private=True)


async def test_public_addresses_pass_and_the_attempt_goes_to_the_checked_one() -> None:
    assert ssrf.forbidden(ipaddress.ip_address("93.184.215.14")) is None
    assert ssrf.forbidden(ipaddress.ip_address("2606:4700::1111")) is None
    target = await ssrf.target("https://93.184.215.14:8443/in?x=1", allow_private=False)
    assert (target.url, target.host_header) == ("https://93.184.215.14:8443/in?x=1", "93.184.215.14:8443")
    named = await ssrf.target("http://localhost:9/hook?a=b", allow_private=True)
    assert named.host_header == "localhost:9" and named.extensions == {}
    assert named.url in ("http://127.0.0.1:9/hook?a=b", "http://[::1]:9/hook?a=b")


async def test_refused_at_creation_and_nothing_is_stored(
    served: Callable[..., RunningServer], hooks_engine: AsyncEngine
) -> None:
    async with hooks_engine.begin() as conn:
        await conn.execute(text("DELETE FROM webhooks"))
    with served(webhook_allow_private=False) as base:
        async with Admin(base) as admin:
            for url, reason in REFUSED[:4]:
                body = await admin.raw(
                    "mutation($url: String!) { createWebhook(input: {url: $url}) { webhook { id } } }", {"url": url}
                )
                error = body["errors"][0]
                assert error["extensions"]["code"] == "BAD_USER_INPUT" and error["extensions"]["field"] == "url"
                assert reason in error["message"]
            assert (await admin("{ webhooks { id } }"))["webhooks"] == []


async def test_refused_at_each_attempt(
    served: Callable[..., RunningServer], hooks_engine: AsyncEngine, receiver: Receiver
) -> None:
    # Stored while private addresses were allowed (or the name resolved elsewhere then): each attempt checks again.
    hook = await WebhookStore(hooks_engine).create(
        url=receiver.url,
        secret=new_secret(),
        description=None,
        event_types=None,
        team_ids=None,
        actor_ids=None,
        format="standard",
    )
    with served(webhook_allow_private=False, webhook_retry_schedule_s=(0.1,) * 50) as base:
        async with Admin(base) as admin:
            expected = await checkins(hooks_engine, 1)
            deadline = asyncio.get_running_loop().time() + 20
            while len(log := (await admin.webhook(hook.id))["deliveries"]) < 2:
                assert asyncio.get_running_loop().time() < deadline, "no refused attempts logged"
                await asyncio.sleep(0.05)
            assert all(int(d["eventCursor"]) == expected[0] and not d["delivered"] for d in log)
            assert all(
                d["status"] is None and d["error"].startswith("refused: 127.0.0.1 is a loopback address") for d in log
            )
            await admin("mutation($id: ID!) { deleteWebhook(id: $id) { deletedId } }", {"id": hook.id})
    assert receiver.received == []


def test_signatures_verify_with_standard_webhooks() -> None:
    secret = new_secret()
    body = b'{"type":"coordination_event.team_checkin"}'
    headers = signed_headers(secret, "msg-1", body)
    assert Verifier(secret).verify(body, headers) == {"type": "coordination_event.team_checkin"}
    assert signed_headers(secret, "msg-1", body, timestamp=1_700_000_000)["webhook-signature"].startswith("v1,")


def test_the_retry_schedule_is_jittered_and_retry_after_honoured() -> None:
    rng = random.Random(7)
    schedule = (5.0, 30.0, 120.0)
    waits = [retry_delay(schedule, 2, None, rng) for _ in range(200)]
    assert 24.0 <= min(waits) < max(waits) <= 36.0 and len(set(waits)) > 100
    assert retry_delay(schedule, 1, 60.0, rng) == 60.0
    assert retry_delay(schedule, 3, 1.0, rng) >= 96.0
    assert retry_delay(schedule, 1, 10 * 86400, rng) == 3600.0
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert 0 <= parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # type: ignore[operator]
