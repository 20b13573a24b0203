"""The paste-ready client configurations of seed 001, with this server's URL and name."""

from __future__ import annotations

import json
from typing import Final

SERVER_NAME: Final = "till"
TOKEN_ENV: Final = "TILL_MCP_TOKEN"  # noqa: S105 - a variable name
TOKEN_HEADER: Final = "X-Till-Token"  # noqa: S105 - a header name
CLIENTS: Final = ("claude", "claudeCode", "cursor", "codex")
TITLES: Final = {"claude": "Claude Desktop", "claudeCode": "Claude Code (.mcp.json)", "cursor": "Cursor",
                 "codex": "OpenAI Codex (~/.codex/config.toml)"}


def json_snippet(public_url: str, token: str) -> str:
    """Claude Desktop, Claude Code and Cursor: the legacy SSE transport at /mcp/sse."""
    body = {"mcpServers": {SERVER_NAME: {"type": "sse", "url": f"{public_url}/mcp/sse",
                                         "headers": {"Authorization": f"Bearer {token}"}}}}
    return json.dumps(body, indent=2) + "\n"


def codex_snippet(public_url: str) -> str:
    """Codex: Streamable HTTP at /mcp; the token comes from an environment variable."""
    return (f"[mcp_servers.{SERVER_NAME}]\n"
            f'url = "{public_url}/mcp"\n'
            f'bearer_token_env_var = "{TOKEN_ENV}"\n'
            "startup_timeout_sec = 30\n")


def snippet(client: str, public_url: str, token: str) -> tuple[str, str]:
    """(body, media type) for ``/mcp/config?client=``."""
    if client == "codex":
        return codex_snippet(public_url), "application/toml"
    return json_snippet(public_url, token), "application/json"


def all_snippets(public_url: str, token: str) -> list[dict[str, str]]:
    out = [{"id": c, "title": TITLES[c], "body": snippet(c, public_url, token)[0]} for c in CLIENTS]
    out.append({"id": "codex-env", "title": "Codex: export the token in the shell that starts Codex",
                "body": f'export {TOKEN_ENV}="{token}"\n'})
    return out
