"""The demo organisation: who is in it, what they work on, and what they write.

Pure data; `api.ops.demo.seed` turns it into rows for a given week. Every id starts
with `DEMO_PREFIX`, which is how a re-run finds (and only finds) demo rows.
"""

from __future__ import annotations

from dataclasses import dataclass

DEMO_PREFIX = "demo-"


@dataclass(frozen=True)
class Person:
    key: str
    name: str
    role: str
    timezone: str | None
    agent: bool = False

    @property
    def id(self) -> str:
        return f"{DEMO_PREFIX}{'a' if self.agent else 'p'}-{self.key}"


@dataclass(frozen=True)
class DemoTeam:
    key: str
    name: str
    description: str
    members: tuple[str, ...]  # person keys, in order

    @property
    def id(self) -> str:
        return f"{DEMO_PREFIX}t-{self.key}"


@dataclass(frozen=True)
class Goal:
    key: str
    title: str
    description: str
    owner: str  # person key; the first of actor_ids, and the author of the updates
    actors: tuple[str, ...]
    teams: tuple[str, ...]
    parent: str | None
    # Timeframe relative to the last day of the demo week, in days.
    starts: int
    ends: int
    # (title, content, status, progress) at the start of the week, then at its end.
    updates: tuple[tuple[str, str, str, int], tuple[str, str, str, int]]

    @property
    def id(self) -> str:
        return f"{DEMO_PREFIX}g-{self.key}"


PEOPLE: tuple[Person, ...] = (
    Person("quinn", "Quinn Reed", "Product Manager", "America/Chicago"),
    Person("amara", "Amara Okafor", "Backend Lead", "Europe/Berlin"),
    Person("diego", "Diego Santos", "Senior Backend Engineer", "America/Sao_Paulo"),
    Person("priya", "Priya Nair", "Backend Engineer", "Asia/Kolkata"),
    Person("tom", "Tom Becker", "Site Reliability Engineer", "Europe/Berlin"),
    Person("lena", "Lena Fischer", "Frontend Lead", "Europe/Vienna"),
    Person("kenji", "Kenji Watanabe", "Frontend Engineer", "Asia/Tokyo"),
    Person("sofia", "Sofia Rossi", "Product Designer", "Europe/Rome"),
    Person("maya", "Maya Thompson", "Marketing Lead", "America/New_York"),
    Person("jonas", "Jonas Lindqvist", "Content Strategist", "Europe/Stockholm"),
    Person("aisha", "Aisha Rahman", "Growth Marketer", "America/Los_Angeles"),
    Person("ci-sentinel", "CI Sentinel", "Watches builds, flaky tests and deploys", None, agent=True),
    Person(
        "ui-review",
        "UI Review Bot",
        "Checks accessibility and visual regressions on every pull request",
        None,
        agent=True,
    ),
    Person("research", "Research Bot", "Compiles ongoing market and competitor research", None, agent=True),
)

TEAMS: tuple[DemoTeam, ...] = (
    DemoTeam(
        "backend",
        "Backend",
        "APIs, data and the infrastructure they run on",
        ("amara", "diego", "priya", "tom", "ci-sentinel"),
    ),
    DemoTeam(
        "frontend",
        "Frontend",
        "The web app: design system, screens and their performance",
        ("lena", "kenji", "sofia", "quinn", "ui-review"),
    ),
    DemoTeam(
        "marketing",
        "Marketing",
        "Positioning, content and the launch campaign",
        ("maya", "jonas", "aisha", "quinn", "research"),
    ),
)

GOALS: tuple[Goal, ...] = (
    Goal(
        "launch",
        "Launch PSC 2.0",
        "Ship PSC 2.0 to every customer: the v2 public API, the redesigned web app and a launch campaign "
        "that brings 500 teams onto the new plan in its first month.",
        owner="quinn",
        actors=("quinn", "amara", "lena", "maya"),
        teams=("backend", "frontend", "marketing"),
        parent=None,
        starts=-45,
        ends=40,
        updates=(
            (
                "Launch on track, API contract frozen",
                "The v2 API contract is frozen and the web app redesign is halfway through. Marketing has the "
                "positioning signed off. Biggest risk: the frontend depends on pagination landing this week.",
                "on_track",
                42,
            ),
            (
                "Beta date holds; frontend needs the API this week",
                "Backend shipped cursor pagination to staging, so the frontend can finally wire up the new lists. "
                "Launch campaign assets are in review. We hold the beta date, with no slack left on the frontend.",
                "on_track",
                55,
            ),
        ),
    ),
    Goal(
        "api",
        "Ship the v2 public API",
        "Versioned, documented REST and GraphQL endpoints with cursor pagination and rate limits.",
        owner="amara",
        actors=("amara", "diego", "priya", "tom"),
        teams=("backend",),
        parent="launch",
        starts=-45,
        ends=14,
        updates=(
            (
                "Contract frozen, pagination in progress",
                "All v2 endpoints are specified and reviewed. Cursor pagination is the last large piece; "
                "rate limiting is done behind a flag.",
                "on_track",
                60,
            ),
            (
                "Pagination on staging, load test next",
                "Cursor pagination is on staging for every list endpoint. Next: the load test at twice launch "
                "traffic and the migration guide for v1 clients.",
                "on_track",
                74,
            ),
        ),
    ),
    Goal(
        "web",
        "Redesign the web app for v2",
        "New navigation, the v2 design system and every screen moved onto the v2 API.",
        owner="lena",
        actors=("lena", "kenji", "sofia"),
        teams=("frontend",),
        parent="launch",
        starts=-40,
        ends=21,
        updates=(
            (
                "Design system done, screens blocked on the API",
                "The design system and navigation are merged. The list screens wait for cursor pagination, so we "
                "are working on settings and onboarding first.",
                "at_risk",
                38,
            ),
            (
                "Unblocked: list screens moving to v2",
                "Pagination reached staging mid-week and the list screens are moving over. Still at risk until the "
                "performance budget passes on low-end phones.",
                "at_risk",
                49,
            ),
        ),
    ),
    Goal(
        "campaign",
        "Run the PSC 2.0 launch campaign",
        "Announce PSC 2.0 and bring 500 teams onto the new plan in the first month.",
        owner="maya",
        actors=("maya", "jonas", "aisha", "research"),
        teams=("marketing",),
        parent="launch",
        starts=-30,
        ends=40,
        updates=(
            (
                "Positioning signed off",
                "Positioning and pricing page copy are approved. The launch post and the email sequence are drafted.",
                "on_track",
                30,
            ),
            (
                "Assets in review, webinar booked",
                "Launch post, emails and the demo video are in review. The launch webinar is booked and "
                "120 people have registered so far.",
                "on_track",
                46,
            ),
        ),
    ),
)

# What each member works through during the week, per (person, team): a check-in
# reports one step as done ("previously") and names the following one ("next").
WORK: dict[tuple[str, str], tuple[str, ...]] = {
    ("amara", "backend"): (
        "Reviewed the v2 pagination design with Diego",
        "Merged the rate limiter behind a feature flag",
        "Wrote the v1 to v2 migration guide outline",
        "Paired with Priya on the idempotency keys",
        "Planned the load test with Tom",
        "Cut the v2 release candidate",
    ),
    ("diego", "backend"): (
        "Implemented cursor encoding for list endpoints",
        "Moved goal and team lists to cursor pagination",
        "Fixed ordering ties in the cursor comparison",
        "Deployed pagination to staging",
        "Answered frontend questions about page sizes",
        "Removed the offset pagination fallback",
    ),
    ("priya", "backend"): (
        "Added idempotency keys to POST endpoints",
        "Wrote contract tests for the v2 error format",
        "Documented the webhook payloads",
        "Fixed the timezone bug in check-in dates",
        "Added OpenAPI examples for every endpoint",
        "Reviewed Diego's pagination pull request",
    ),
    ("tom", "backend"): (
        "Set up the staging database with production-sized data",
        "Added dashboards for v2 latency and error rates",
        "Wrote the load test scenarios",
        "Ran the first load test at launch traffic",
        "Tuned the connection pool after the load test",
        "Prepared the on-call runbook for launch week",
    ),
    ("ci-sentinel", "backend"): (
        "Quarantined two flaky pagination tests",
        "Reported a 12% slower test suite after the ORM upgrade",
        "Verified the staging deploy of the pagination branch",
        "Flagged a failing contract test on main within 4 minutes",
        "Confirmed main is green for the release candidate",
        "Summarised last week's build health for the team",
    ),
    ("lena", "frontend"): (
        "Merged the new navigation shell",
        "Split the list screens into pagination-ready components",
        "Reviewed Sofia's empty-state designs",
        "Wired the goal list to the v2 API",
        "Set the performance budget for low-end phones",
        "Planned the beta feedback round with Quinn",
    ),
    ("kenji", "frontend"): (
        "Built the settings screens on the v2 design system",
        "Added skeleton loading states to the dashboard",
        "Moved onboarding onto the v2 API",
        "Implemented infinite scroll with the new cursors",
        "Cut the dashboard bundle by 80 kB",
        "Fixed focus handling in the command palette",
    ),
    ("sofia", "frontend"): (
        "Finished the empty and error state designs",
        "Ran five usability sessions on the new navigation",
        "Updated the icon set for dark mode",
        "Wrote up the usability findings",
        "Designed the in-app launch announcement",
        "Reviewed contrast issues found by UI Review Bot",
    ),
    ("quinn", "frontend"): (
        "Prioritised the beta feedback backlog",
        "Agreed the cut line for launch scope with Lena",
        "Wrote acceptance criteria for the goal tree screen",
        "Demoed the new navigation to the support team",
        "Confirmed the beta customer list",
        "Signed off the in-app announcement copy",
    ),
    ("ui-review", "frontend"): (
        "Checked 14 pull requests for accessibility regressions",
        "Flagged low contrast on the new status badges",
        "Found two screens without keyboard focus styles",
        "Confirmed visual snapshots for the navigation shell",
        "Reported a layout shift on the dashboard at 390 px",
        "Verified all blocking accessibility issues are fixed",
    ),
    ("maya", "marketing"): (
        "Got positioning signed off by leadership",
        "Briefed the agency on the launch video",
        "Reviewed the launch post draft",
        "Booked the launch webinar and speakers",
        "Aligned launch date messaging with Quinn",
        "Approved the paid social budget",
    ),
    ("jonas", "marketing"): (
        "Drafted the launch blog post",
        "Wrote the three-email launch sequence",
        "Collected two customer quotes for the launch post",
        "Edited the v2 migration guide for tone",
        "Prepared the press kit",
        "Wrote the webinar landing page",
    ),
    ("aisha", "marketing"): (
        "Set up launch campaign tracking",
        "Built the waitlist segment for the beta invite",
        "Launched the webinar registration ads",
        "A/B tested the pricing page headline",
        "Reported week-one registration numbers",
        "Prepared the upgrade nudge for existing customers",
    ),
    ("quinn", "marketing"): (
        "Reviewed the launch messaging against the roadmap",
        "Shared the final feature list with Marketing",
        "Recorded the product walkthrough for the webinar",
        "Answered pricing FAQ questions from sales",
        "Checked the launch post for accuracy",
        "Confirmed the webinar demo script",
    ),
    ("research", "marketing"): (
        "Summarised three competitor launches from last quarter",
        "Compiled pricing pages of five competitors",
        "Collected 40 customer comments about v1 pagination",
        "Tracked mentions of PSC in community forums",
        "Drafted a comparison table for the launch page",
        "Summarised webinar registration sources",
    ),
}

BLOCKERS: dict[str, tuple[str, ...]] = {
    "backend": (
        "Waiting on security review of the token scopes",
        "Staging database is out of disk space again",
        "Need a decision on the v1 sunset date",
    ),
    "frontend": (
        "List screens wait for cursor pagination on staging",
        "Need final copy for the empty states",
        "Design tokens for dark mode not published yet",
    ),
    "marketing": (
        "Launch video waiting on the final UI",
        "Legal has not approved the customer quotes",
        "Need the final launch date to book ads",
    ),
}
