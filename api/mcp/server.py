"""The MCP server: tools and resources over one `Reader` and one `WriteService`.

Built on the SDK's low-level `Server` rather than `MCPServer`, because the
tools' input schemas come from `api.entities` (not from Python signatures)
and their errors are ours to word. The same server object answers over
Streamable HTTP (`api.mcp.http`) and stdio (`api.mcp.stdio`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError

from api import __version__
from api.errors import DomainError
from api.mcp.arguments import Arguments
from api.mcp.failures import describe, tool_error, unexpected, unknown_tool
from api.mcp.read_tools import READ_TOOLS
from api.mcp.resources import TEMPLATES, UnknownResource, list_resources, read_resource
from api.mcp.tools import Backend, ToolSpec
from api.mcp.view_tools import VIEW_TOOLS
from api.mcp.write_tools import WRITE_TOOLS
from api.store import Reader, WriteService

log = logging.getLogger("coco.mcp")

TOOLS: dict[str, ToolSpec] = {tool.name: tool for tool in (*WRITE_TOOLS, *READ_TOOLS, *VIEW_TOOLS)}

INSTRUCTIONS = """\
This server holds a team's Continuous Coordination (CoCo) data: actors (people and agents), teams,
team check-ins, goal stories (nested projects and objectives) and goal story updates. Every check-in
and update records a coordination event.

To post a check-in: find your actor id (list_actors, search by name) and the team (list_teams, or
member_id=your id), read the team's recent check-ins (get_team_checkins, or the resource
coco://teams/{team_id}/last-week), then call post_team_checkin with previously / next / blockers
as lists of short bullets. To post a goal story update: find the goal story (list_goal_stories with
search), read it with get_goal_story, then call post_goal_story_update. Dates are YYYY-MM-DD. A
failed call writes nothing and says which argument to fix. To follow what others post, call
get_coordination_events with the next_cursor of your previous call. For the state of things:
get_team_coverage (who checked in, day by day), get_open_blockers, get_stale_goal_stories and
get_goal_rollup (a goal's subtree with status counts and progress).
"""


def create_server(reader: Reader, writer: WriteService) -> Server[Any]:
    backend = Backend(reader, writer)

    async def on_list_tools(
        ctx: ServerRequestContext[Any],
        params: types.PaginatedRequestParams | None,
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[tool.definition() for tool in TOOLS.values()])

    async def on_call_tool(
        ctx: ServerRequestContext[Any],
        params: types.CallToolRequestParams,
    ) -> types.CallToolResult:
        return await call_tool(backend, params.name, params.arguments)

    async def on_list_resources(
        ctx: ServerRequestContext[Any],
        params: types.PaginatedRequestParams | None,
    ) -> types.ListResourcesResult:
        try:
            return types.ListResourcesResult(resources=await list_resources(backend))
        except DomainError as error:
            raise MCPError(code=types.INTERNAL_ERROR, message=error.message) from error

    async def on_list_resource_templates(
        ctx: ServerRequestContext[Any],
        params: types.PaginatedRequestParams | None,
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=list(TEMPLATES))

    async def on_read_resource(
        ctx: ServerRequestContext[Any],
        params: types.ReadResourceRequestParams,
    ) -> types.ReadResourceResult:
        try:
            return types.ReadResourceResult(contents=[await read_resource(backend, params.uri)])
        except UnknownResource as error:
            raise MCPError(code=types.INVALID_PARAMS, message=str(error), data={"uri": params.uri}) from error
        except DomainError as error:
            # A resource has no isError channel; its failure is a protocol error carrying our wording.
            failure = describe(None, error)
            code = types.INVALID_PARAMS if failure.kind in ("not_found", "invalid_argument") else types.INTERNAL_ERROR
            raise MCPError(code=code, message=failure.text(), data={"uri": params.uri}) from error

    return Server(
        "coco",
        version=__version__,
        title="Continuous Coordination",
        description="Team check-ins, goal stories and their updates, for people and AI agents.",
        instructions=INSTRUCTIONS,
        get_tool_input_schema=lambda name: TOOLS[name].input_schema if name in TOOLS else None,
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
        on_list_resources=on_list_resources,
        on_list_resource_templates=on_list_resource_templates,
        on_read_resource=on_read_resource,
    )


async def call_tool(backend: Backend, name: str, arguments: dict[str, Any] | None) -> types.CallToolResult:
    """Run one tool; whatever goes wrong comes back as a tool error, never as a broken session."""
    tool = TOOLS.get(name)
    if tool is None:
        return unknown_tool(name, list(TOOLS))
    try:
        result = await tool.handler(backend, Arguments(arguments, tool.input_schema))
    except DomainError as error:
        log.info("tool %s refused: %s", name, error.message)
        return tool_error(tool, error)
    except Exception:
        log.exception("tool %s failed", name)
        return unexpected(tool)
    text = json.dumps(result, ensure_ascii=False)
    return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=result)
