"""Managing webhooks: GraphQL (admin scope only), the CLI, and what each refuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.cli import main
from api.config import Settings
from api.edge.auth import Access
from api.store import WebhookStore
from tests.conftest import RunningServer
from tests.hardening.conftest import READ_TOKEN, SECRET, WRITE_TOKEN, signed

from .conftest import Admin, Receiver, checkins, row

ADMIN_TOKEN = "admin-token-0123456789"
ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ("url", "description", "event_types", "team_ids", "actor_ids", "format", "enabled", "updated_at")
LIST = "{ webhooks { id url secret enabled cursor description eventTypes teamIds actorIds format } }"


async def count_webhooks(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(text("SELECT count(*) FROM webhooks"))).scalar_one()


async def clear(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM webhooks"))


def test_admin_scope_includes_write_and_read() -> None:
    access = Access.configure(tokens=f"admin:{ADMIN_TOKEN},read:r", jwt_secret=SECRET)
    assert access.authenticate(f"Bearer {ADMIN_TOKEN}").scopes == {"admin", "write", "read"}
    assert access.authenticate(f"Bearer {signed({'role': 'admin'})}").scopes == {"admin", "write", "read"}
    assert access.authenticate(f"Bearer {signed({'scope': 'read admin'})}").allows("admin")
    assert not access.authenticate("Bearer r").allows("admin")


async def test_create_list_update_enable_delete(
    served: Callable[..., RunningServer], hooks_engine: AsyncEngine, receiver: Receiver
) -> None:
    await clear(hooks_engine)
    with served() as base:
        async with Admin(base) as admin:
            before = await checkins(hooks_engine, 1)
            hook = await admin.create(
                receiver.url, eventTypes=["TEAM_CHECKIN"], teamIds=["t-1"], description="blockers", format="SLACK"
            )
            assert hook["secret"].startswith("whsec_")
            # It starts where the log ends: what was committed before it is not sent.
            assert hook["cursor"] == str(before[0])
            assert (hook["eventTypes"], hook["teamIds"], hook["actorIds"]) == (["TEAM_CHECKIN"], ["t-1"], None)
            listed = (await admin(LIST))["webhooks"]
            assert [h["id"] for h in listed] == [hook["id"]]
            assert listed[0]["secret"] is None  # shown once, at creation
            assert listed[0] == {**hook, "secret": None}

            # Left out stays; null clears; the enum and lists round-trip.
            changed = await admin.update(hook["id"], teamIds=None, actorIds=["a-1", "a-2"], format="STANDARD")
            assert changed["teamIds"] is None and changed["actorIds"] == ["a-1", "a-2"]
            assert changed["eventTypes"] == ["TEAM_CHECKIN"] and changed["description"] == "blockers"
            assert changed["format"] == "STANDARD"
            paused = await admin.update(hook["id"], enabled=False)
            assert not paused["enabled"]
            state = await admin.webhook(hook["id"])
            assert state["disabledReason"] is None and state["deliveries"] == []
            assert (await admin.enable(hook["id"]))["enabled"]

            deleted = await admin(
                "mutation($id: ID!) { deleteWebhook(id: $id) { deletedId webhook { id url } } }", {"id": hook["id"]}
            )
            assert deleted["deleteWebhook"] == {
                "deletedId": hook["id"],
                "webhook": {"id": hook["id"], "url": receiver.url},
            }
            assert (await admin(LIST))["webhooks"] == []
            assert (await admin("query($id: ID!) { webhook(id: $id) { id } }", {"id": hook["id"]}))["webhook"] is None
    assert await count_webhooks(hooks_engine) == 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"url": "ftp://example.com/hook"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "http://user:pass@example.com/hook"}, "url"),
        ({"url": "http://127.0.0.1:1/hook", "eventTypes": []}, "eventTypes"),
        ({"url": "http://127.0.0.1:1/hook", "teamIds": []}, "teamIds"),
        ({"url": "http://127.0.0.1:1/hook", "description": "x" * 2001}, "description"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_stored(
    served: Callable[..., RunningServer], hooks_engine: AsyncEngine, fields: dict[str, object], field: str
) -> None:
    await clear(hooks_engine)
    with served() as base:
        async with Admin(base) as admin:
            body = await admin.raw(
                "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { webhook { id } } }",
                {"input": fields},
            )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
    assert body["errors"][0]["extensions"]["field"] == field
    assert await count_webhooks(hooks_engine) == 0


async def test_unknown_ids_and_bad_arguments(served: Callable[..., RunningServer], hooks_engine: AsyncEngine) -> None:
    await clear(hooks_engine)
    with served() as base:
        async with Admin(base) as admin:
            for mutation in (
                'mutation { enableWebhook(id: "nope") { webhook { id } } }',
                'mutation { deleteWebhook(id: "nope") { deletedId } }',
                'mutation { updateWebhook(id: "nope", input: {description: "x"}) { webhook { id } } }',
            ):
                assert await admin.code(mutation) == "NOT_FOUND"
            hook = await admin.create("http://127.0.0.1:1/hook")
            assert (
                await admin.code(
                    f'mutation {{ updateWebhook(id: "{hook["id"]}", input: {{url: null}}) {{ webhook {{ id }} }} }}'
                )
                == "BAD_USER_INPUT"
            )
            assert (
                await admin.code(f'{{ webhook(id: "{hook["id"]}") {{ deliveries(first: 0) {{ attempt }} }} }}')
                == "BAD_USER_INPUT"
            )
            assert (
                await admin.code(f'{{ webhook(id: "{hook["id"]}") {{ deliveries(first: 101) {{ attempt }} }} }}')
                == "BAD_USER_INPUT"
            )
            unchanged = await admin.webhook(hook["id"])
            assert unchanged["url"] == "http://127.0.0.1:1/hook"


async def test_read_and_write_tokens_are_refused(
    served: Callable[..., RunningServer], hooks_engine: AsyncEngine
) -> None:
    await clear(hooks_engine)
    tokens = f"read:{READ_TOKEN},write:{WRITE_TOKEN},admin:{ADMIN_TOKEN}"
    create = 'mutation { createWebhook(input: {url: "http://127.0.0.1:1/hook"}) { webhook { id secret } } }'
    with served(tokens=tokens, jwt_secret=SECRET) as base:
        async with Admin(base, ADMIN_TOKEN) as admin:
            hook = (await admin(create))["createWebhook"]["webhook"]
        operations = [
            create,
            "{ webhooks { id } }",
            f'{{ webhook(id: "{hook["id"]}") {{ id }} }}',
            f'mutation {{ updateWebhook(id: "{hook["id"]}", input: {{description: "x"}}) {{ webhook {{ id }} }} }}',
            f'mutation {{ enableWebhook(id: "{hook["id"]}") {{ webhook {{ id }} }} }}',
            f'mutation {{ deleteWebhook(id: "{hook["id"]}") {{ deletedId }} }}',
        ]
        for token in (READ_TOKEN, WRITE_TOKEN, signed({"role": "write"})):
            async with Admin(base, token) as refused:
                for operation in operations:
                    body = await refused.raw(operation)
                    assert body["errors"][0]["extensions"] == {"code": "FORBIDDEN", "scope": "admin"}, body
                    assert "admin scope" in body["errors"][0]["message"]
        async with Admin(base, signed({"role": "admin"})) as admin:
            listed = (await admin("{ webhooks { id description } }"))["webhooks"]
            assert listed == [{"id": hook["id"], "description": None}]
            # Admin includes write: it may post check-ins too.
            created = await admin(
                'mutation { createTeamCheckin(input: {actorId: "a-1", teamId: "t-1", date: "2026-05-18"}) '
                "{ teamCheckin { id } } }"
            )
            assert created["createTeamCheckin"]["teamCheckin"]["id"]
    assert await count_webhooks(hooks_engine) == 1


async def test_a_team_scoped_admin_token_never_widens_what_it_could_read(
    served: Callable[..., RunningServer], hooks_engine: AsyncEngine
) -> None:
    await clear(hooks_engine)
    scoped = signed({"role": "admin", "teams": ["t-1"]})
    create = "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { webhook { id teamIds } } }"
    update = (
        "mutation($id: ID!, $input: UpdateWebhookInput!) { updateWebhook(id: $id, input: $input) "
        "{ webhook { id teamIds } } }"
    )
    with served(tokens=f"admin:{ADMIN_TOKEN}", jwt_secret=SECRET) as base:
        async with Admin(base, ADMIN_TOKEN) as unscoped:
            anyone = await unscoped.create("http://127.0.0.1:1/anyone")
            other = await unscoped.create("http://127.0.0.1:1/other", teamIds=["t-2"])
        async with Admin(base, scoped) as admin:
            # Left out, the team filter is the token's teams; within them, it is kept as given.
            own = await admin.create("http://127.0.0.1:1/own", eventTypes=["TEAM_CHECKIN"])
            assert own["teamIds"] == ["t-1"]
            assert (await admin.create("http://127.0.0.1:1/given", teamIds=["t-1"]))["teamIds"] == ["t-1"]
            stored = {h["id"]: await row(hooks_engine, h["id"]) for h in (anyone, other, own)}
            count = await count_webhooks(hooks_engine)

            refusals = [
                (create, {"input": {"url": "http://127.0.0.1:1/wide", "teamIds": ["t-1", "t-2"]}}, ["t-2"]),
                (create, {"input": {"url": "http://127.0.0.1:1/wide", "teamIds": ["t-9"]}}, ["t-9"]),
                (update, {"id": own["id"], "input": {"teamIds": None}}, []),
                (update, {"id": own["id"], "input": {"teamIds": ["t-2"]}}, ["t-2"]),
                # Another's webhook, over teams this token does not read: not redirected to a URL of its own.
                (update, {"id": anyone["id"], "input": {"url": "http://127.0.0.1:1/mine"}}, []),
                (update, {"id": other["id"], "input": {"description": "mine now"}}, ["t-2"]),
            ]
            for operation, variables, outside in refusals:
                body = await admin.raw(operation, variables)
                assert body["data"] is None, body
                [error] = body["errors"]
                assert error["extensions"] == {"code": "FORBIDDEN", "teams": ["t-1"], "ids": outside}, body
                assert error["message"].startswith("permission denied: the token reads only teams t-1"), error

            # Narrowing another's webhook to its own teams is no widening.
            narrowed = await admin(update, {"id": anyone["id"], "input": {"teamIds": ["t-1"]}})
            assert narrowed["updateWebhook"]["webhook"]["teamIds"] == ["t-1"]
            stored[anyone["id"]] = await row(hooks_engine, anyone["id"])
        async with Admin(base, signed({"role": "admin", "teams": []})) as nothing:
            body = await nothing.raw(create, {"input": {"url": "http://127.0.0.1:1/none"}})
            assert body["errors"][0]["extensions"] == {"code": "FORBIDDEN", "teams": [], "ids": []}, body
        async with Admin(base, signed({"role": "write", "teams": ["t-1"]})) as writer:
            body = await writer.raw(create, {"input": {"url": "http://127.0.0.1:1/writer"}})
            assert body["errors"][0]["extensions"] == {"code": "FORBIDDEN", "scope": "admin"}, body
    assert await count_webhooks(hooks_engine) == count
    for id, before in stored.items():
        # The settings; the delivery lease columns move as the server's worker claims the webhook.
        after = await row(hooks_engine, id)
        assert {k: after[k] for k in SETTINGS} == {k: before[k] for k in SETTINGS}


def coco(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCO_")}
    env.update(DATABASE_URL=database_url, COCO_WEBHOOK_ALLOW_PRIVATE="true")
    return subprocess.run(
        [sys.executable, "-m", "api", "webhook", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_the_cli(
    hooks_database: str, hooks_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The command as a user runs it, once; then its other actions in process (each process pays the imports).
    added = coco(
        hooks_database,
        "add",
        "http://127.0.0.1:9/hook",
        "--event-type",
        "team_checkin",
        "--team",
        "t-1",
        "--format",
        "slack",
        "--json",
    )
    assert added.returncode == 0, added.stderr
    hook = json.loads(added.stdout)
    assert hook["secret"].startswith("whsec_") and hook["format"] == "slack"
    assert (hook["event_types"], hook["team_ids"], hook["actor_ids"]) == (["team_checkin"], ["t-1"], None)

    for name in [n for n in os.environ if n.startswith("COCO_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DATABASE_URL", hooks_database)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["webhook", *args])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = run("list")
    assert code == 0 and hook["id"] in out and "\tenabled\t" in out and hook["secret"] not in out
    assert run("deliveries", hook["id"]) == (0, "", "")
    code, out, _ = run("enable", hook["id"])
    assert code == 0 and f"enabled webhook {hook['id']}" in out
    code, _, err = run("add", "gopher://example.com/")
    assert code == 1 and "http:// or https://" in err
    # Private addresses are refused unless allowed, as over GraphQL.
    code, _, err = run("add", "http://127.0.0.1:9/hook")
    assert code == 1 and "loopback" in err
    code, _, err = run("enable", "nope")
    assert code == 1 and "webhook 'nope' does not exist" in err
    code, out, _ = run("remove", hook["id"])
    assert code == 0 and f"removed webhook {hook['id']}" in out
    code, out, _ = run("list")
    assert code == 0 and hook["id"] not in out


async def test_attempts_older_than_the_log_days_are_forgotten(hooks_engine: AsyncEngine) -> None:
    await clear(hooks_engine)
    store = WebhookStore(hooks_engine)
    hook = await store.create(
        url="http://127.0.0.1:9/hook",
        secret="whsec_AAAA",
        description=None,
        event_types=None,
        team_ids=None,
        actor_ids=None,
        format="standard",
    )
    async with hooks_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO webhook_deliveries (webhook_id, event_id, event_cursor, attempt, delivered, latency_ms, "
                "attempted_at) SELECT :id, 'e' || n, n, 1, true, 1.0, now() - make_interval(hours => n * 24 - 12) "
                "FROM generate_series(1, 10) AS n"
            ),
            {"id": hook.id},
        )
    assert await store.prune(7) == 3  # 7.5, 8.5 and 9.5 days old
    # Newest first: in the order logged, the last one first.
    assert [d.event_cursor for d in await store.deliveries(hook.id, 100)] == [7, 6, 5, 4, 3, 2, 1]


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COCO_WEBHOOK_RETRY_SCHEDULE_S", "1, 2,0.5")
    monkeypatch.setenv("COCO_WEBHOOK_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("COCO_WEBHOOK_LOG_DAYS", "3")
    settings = Settings.from_environment()
    assert settings.webhook_retry_schedule_s == (1.0, 2.0, 0.5)
    assert settings.webhook_allow_private and settings.webhook_log_days == 3
    for bad in ("", "soon", "1,-2"):
        monkeypatch.setenv("COCO_WEBHOOK_RETRY_SCHEDULE_S", bad)
        if bad:
            with pytest.raises(SystemExit):
                Settings.from_environment()
    # The default: 5 s, 30 s, 2 min, 10 min, 1 h, then hourly while the waits stay within a day.
    monkeypatch.delenv("COCO_WEBHOOK_RETRY_SCHEDULE_S")
    default = Settings.from_environment().webhook_retry_schedule_s
    assert default[:6] == (5, 30, 120, 600, 3600, 3600) and set(default[4:]) == {3600}
    assert sum(default) <= 86400 < sum(default) + 3600
