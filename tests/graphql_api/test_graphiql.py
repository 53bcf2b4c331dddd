"""GraphiQL at /graphql in headless Chromium with every request to another origin blocked: it renders,
runs a query with the token entered in its token field or its headers editor, shows a subscription's
events, and says when the token is missing or refused; and no page the server serves names another origin."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from api.graphql import ide
from api.store.writes import WriteService
from tests.browser import launched, playwright_api
from tests.conftest import RunningServer
from tests.hardening.conftest import SECRET, signed

async_api = playwright_api()

TOKEN = "graphiql-read-token-0123456789"
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def secured_url(database_url: str, engine: AsyncEngine) -> Iterator[str]:
    """A server of this module's own with access control on (its live feed sees only this module's events)."""
    with RunningServer(database_url, tokens=f"read:{TOKEN}", jwt_secret=SECRET) as url:
        yield url


@pytest_asyncio.fixture(loop_scope="session")
async def page(secured_url: str) -> AsyncIterator[Any]:
    """A page whose every request to another origin is aborted (and recorded), and whose
    Content-Security-Policy violations are recorded."""
    async with launched() as browser:
        context = await browser.new_context()
        own = urlsplit(secured_url).netloc
        elsewhere: list[str] = []

        async def only_this_origin(route: Any) -> None:
            if urlsplit(route.request.url).netloc == own or route.request.url.startswith("data:"):
                await route.continue_()
            else:
                elsewhere.append(route.request.url)
                await route.abort()

        await context.route("**/*", only_this_origin)
        await context.add_init_script(
            "window.__violations = [];"
            "document.addEventListener('securitypolicyviolation',"
            " e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"
        )
        page = await context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
        page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
        page.elsewhere = elsewhere  # type: ignore[attr-defined]
        page.problems = problems  # type: ignore[attr-defined]
        yield page


async def set_editor(page: Any, selector: str, text: str) -> None:
    """Replace an editor's text (GraphiQL 3's editors are CodeMirror 5 instances)."""
    await page.locator(f"{selector} .CodeMirror").first.wait_for(timeout=WAIT_MS)
    await page.evaluate(
        "([selector, text]) => document.querySelector(selector + ' .CodeMirror').CodeMirror.setValue(text)",
        [selector, text],
    )


async def run(page: Any, operation: str, name: str) -> None:
    """Run an operation named `name` from the query editor (once GraphiQL has read the new text: it does so
    after a short debounce, and runs the operation it knows of until then)."""
    await set_editor(page, ".graphiql-query-editor", operation)
    await page.wait_for_function(
        "name => document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.operationName === name",
        arg=name,
        timeout=WAIT_MS,
    )
    await page.locator(".graphiql-execute-button").click()


async def refetch_schema(page: Any) -> None:
    """Re-fetch the schema until the headers editor's token has gone with it (GraphiQL takes an edit in
    after a short debounce)."""
    for _ in range(50):
        async with page.expect_response(lambda r: r.url.endswith("/graphql") and r.request.method == "POST") as got:
            await page.locator("button[aria-label='Re-fetch GraphQL schema']").click()
        if (await got.value).status == 200:
            return
    raise AssertionError("GraphiQL never sent the token of its headers editor")


async def response_text(page: Any) -> str:
    return await page.evaluate(
        "() => { const e = document.querySelector('.result-window .CodeMirror');"
        " return e ? e.CodeMirror.getValue() : ''; }"
    )


async def wait_for_response(page: Any, pattern: str) -> str:
    try:
        await page.wait_for_function(
            "pattern => { const e = document.querySelector('.result-window .CodeMirror');"
            " return e && new RegExp(pattern).test(e.CodeMirror.getValue()); }",
            arg=pattern,
            timeout=WAIT_MS,
        )
    except async_api.TimeoutError:
        raise AssertionError(f"no {pattern} in the response: {await response_text(page)}") from None
    return await response_text(page)


async def test_graphiql_runs_offline_with_the_token_in_its_headers_editor(
    page: Any, secured_url: str, fresh_world: AsyncEngine
) -> None:
    # Without a token the page still loads (it holds no data); the API refuses the same request.
    loaded = await page.goto(f"{secured_url}/graphql")
    assert loaded.status == 200
    assert "default-src 'none'" in loaded.headers["content-security-policy"]
    await page.locator(".graphiql-container").wait_for(timeout=WAIT_MS)
    # Its first introspection went without a token: refused, as the console says.
    await page.wait_for_function("() => document.querySelector('.graphiql-container')", timeout=WAIT_MS)
    await page.locator("button[data-name='headers']").click()
    await set_editor(
        page, ".graphiql-editor-tool .graphiql-editor:not(.hidden)", f'{{"Authorization": "Bearer {TOKEN}"}}'
    )
    await refetch_schema(page)
    # The explorer plugin lists the schema's fields, fetched with the token.
    await page.locator("button[aria-label='Show GraphiQL Explorer']").click()
    await page.locator(".graphiql-explorer-root").get_by_text("goalStories", exact=True).wait_for(timeout=WAIT_MS)
    assert all("401" in problem for problem in page.problems), page.problems
    page.problems.clear()

    await run(page, 'query Story { goalStory(id: "g-1") { title latestUpdate { status } } }', "Story")
    answered = await wait_for_response(page, '"title"')
    assert '"title": "Launch"' in answered and '"status": "AT_RISK"' in answered, answered

    # A subscription: the events since a cursor are replayed, then a new one arrives live.
    await run(page, 'subscription Events { coordinationEvents(after: "0") { eventType referenceId cursor } }', "Events")
    await wait_for_response(page, '"coordinationEvents"')
    await WriteService(fresh_world).create(
        "team_checkin", [{"id": "c-live", "actor_id": "a-1", "team_id": "t-1", "date": "2026-05-22"}]
    )
    shown = await wait_for_response(page, '"referenceId": "c-live"')
    assert '"eventType": "TEAM_CHECKIN"' in shown, shown
    await page.locator(".graphiql-execute-button").click()  # stops the subscription

    assert page.elsewhere == [], page.elsewhere
    assert await page.evaluate("() => window.__violations") == []
    assert page.problems == [], page.problems


async def access_status(page: Any) -> tuple[str, str]:
    status = page.locator("#coco-access-status")
    return await status.get_attribute("data-problem") or "", (await status.text_content() or "").strip()


async def test_graphiql_with_the_token_field_runs_a_query_and_a_subscription(
    page: Any, secured_url: str, fresh_world: AsyncEngine
) -> None:
    await page.goto(f"{secured_url}/graphql")
    await page.locator(".graphiql-container").wait_for(timeout=WAIT_MS)
    # The schema's introspection went without a token: the line above the IDE says one is missing.
    await page.locator("#coco-access-status[data-problem='missing']").wait_for(timeout=WAIT_MS)
    assert (await access_status(page))[1] == "No access token: this server needs one. Enter it above."
    assert all("401" in problem for problem in page.problems), page.problems
    page.problems.clear()

    await page.locator("#coco-token").fill(TOKEN)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Use token").click()
    await page.locator(".graphiql-container").wait_for(timeout=WAIT_MS)
    await page.locator("#coco-access-status[data-problem='none']").wait_for(timeout=WAIT_MS)
    await page.wait_for_function(
        "() => document.querySelector('#coco-access-status').textContent.startsWith('Using the access token')",
        timeout=WAIT_MS,
    )
    assert await page.evaluate("() => sessionStorage.getItem('coco.token')") == TOKEN
    # The schema came with the token: the explorer lists its fields.
    await page.locator("button[aria-label='Show GraphiQL Explorer']").click()
    await page.locator(".graphiql-explorer-root").get_by_text("goalStories", exact=True).wait_for(timeout=WAIT_MS)

    await run(page, 'query Story { goalStory(id: "g-1") { title } }', "Story")
    assert '"title": "Launch"' in await wait_for_response(page, '"title"')

    # The subscription's socket carries the token in its connection_init.
    await run(page, 'subscription Events { coordinationEvents(after: "0") { eventType referenceId } }', "Events")
    await wait_for_response(page, '"coordinationEvents"')
    await WriteService(fresh_world).create(
        "team_checkin", [{"id": "c-field", "actor_id": "a-1", "team_id": "t-1", "date": "2026-05-22"}]
    )
    assert '"eventType": "TEAM_CHECKIN"' in await wait_for_response(page, '"referenceId": "c-field"')
    await page.locator(".graphiql-execute-button").click()  # stops the subscription
    assert page.problems == [], page.problems

    # A token in a link replaces the tab's and leaves the address bar; one the server does not know is
    # called so.
    await page.goto(f"{secured_url}/graphql?token=not-a-token-of-this-server")
    await page.locator("#coco-access-status[data-problem='invalid']").wait_for(timeout=WAIT_MS)
    assert page.url == f"{secured_url}/graphql"
    assert (await access_status(page))[1].startswith("The server did not accept the access token")
    assert await page.evaluate("() => sessionStorage.getItem('coco.token')") == "not-a-token-of-this-server"
    assert page.elsewhere == [], page.elsewhere
    assert await page.evaluate("() => window.__violations") == []


@pytest.mark.parametrize(
    ("claims", "kind", "says"),
    [
        ({"role": "read", "exp": -3600}, "expired", "The access token has expired."),
        ({"scope": "profile"}, "scope", "The access token does not grant the read scope"),
    ],
    ids=["expired", "no read scope"],
)
async def test_graphiql_says_why_a_token_is_refused(
    page: Any, secured_url: str, claims: dict[str, Any], kind: str, says: str
) -> None:
    # Signed now (a token made at collection would have expired by the time a long suite gets here).
    if "exp" in claims:
        claims = {**claims, "exp": int(time.time()) + claims["exp"]}
    token = signed(claims)
    await page.goto(f"{secured_url}/graphql?token={token}")
    await page.locator(".graphiql-container").wait_for(timeout=WAIT_MS)
    await page.locator(f"#coco-access-status[data-problem='{kind}']").wait_for(timeout=WAIT_MS)
    assert (await access_status(page))[1].startswith(says)
    # A subscription is refused too (its socket closed with 4403), and the line still says why.
    await run(page, "subscription Events { coordinationEvents { cursor } }", "Events")
    assert "4403" in await wait_for_response(page, "4403")
    assert (await access_status(page))[1].startswith(says)
    assert page.elsewhere == [], page.elsewhere


async def test_the_assets_are_immutable_at_versioned_urls(secured_url: str) -> None:
    async with httpx.AsyncClient(base_url=secured_url, timeout=30) as client:
        served = await client.get(ide.asset_url("graphiql.min.js"), headers={"Accept-Encoding": "gzip"})
        assert served.status_code == 200
        assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert served.headers["content-encoding"] == "gzip"
        assert served.headers["content-type"].startswith("text/javascript")
        assert len(served.content) == (ide.ASSETS / "graphiql.min.js").stat().st_size
        # Another digest (an older page cached somewhere) is not served these files under a year-long cache.
        stale = await client.get(f"{ide.PREFIX}/0123456789abcdef/graphiql.min.js")
        assert stale.status_code == 404
        # A GET with a query is a query: it needs the token.
        query = await client.get("/graphql", params={"query": "{ __typename }"}, headers={"Accept": "text/html"})
        assert query.status_code == 401


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href", "action") and value]


PAGES = ("/graphql", "/docs", "/viewer/")


async def test_no_page_names_another_origin(server_url: str) -> None:
    async with httpx.AsyncClient(base_url=server_url, timeout=30, follow_redirects=True) as client:
        for path in PAGES:
            served = await client.get(path, headers={"Accept": "text/html"})
            assert served.status_code == 200 and served.headers["content-type"].startswith("text/html"), path
            links = Links()
            links.feed(served.text)
            assert links.urls, f"{path} links nothing: the parser missed its assets"
            resolved = [urlsplit(urljoin(str(served.url), url)) for url in links.urls]
            foreign = [u.geturl() for u in resolved if u.scheme != "data" and u.netloc != urlsplit(server_url).netloc]
            assert foreign == [], (path, foreign)
            # Nor in an inline script or style.
            assert not re.search(r"https?://(?!127\.0\.0\.1)", served.text.replace("http://www.w3.org", "")), path
