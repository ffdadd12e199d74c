"""Deep-agent folders (`AGENTS.md`, `skills/`, `mcp.json`, `deepagents.toml`) as graphs."""
