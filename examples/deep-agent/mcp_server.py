"""The shop's MCP server (stdio), listed in mcp.json: the agent calls its tools.

`python` in mcp.json is the runtime's own Python, which has the `mcp` package.
"""

from mcp.server.mcpserver import MCPServer

HOURS = {
    "monday": "closed",
    "tuesday": "9:00-18:00",
    "wednesday": "9:00-18:00",
    "thursday": "9:00-18:00",
    "friday": "9:00-20:00",
    "saturday": "10:00-16:00",
    "sunday": "closed",
}

server = MCPServer("shop")


@server.tool()
def opening_hours(day: str) -> str:
    """When the shop is open on a day of the week (e.g. "friday")."""
    hours = HOURS.get(day.strip().lower())
    if hours is None:
        return f"{day!r} is not a day of the week"
    return f"{day.strip().capitalize()}: {hours}"


if __name__ == "__main__":
    server.run("stdio")
