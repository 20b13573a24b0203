"""``/mcp/docs``: the tool catalogue as markdown, generated from tools' registry (never hand-written)."""

from __future__ import annotations

from typing import Any


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _params(schema: Any) -> list[str]:
    if not isinstance(schema, dict):
        return []
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    rows = []
    for name, prop in props.items():
        prop = prop if isinstance(prop, dict) else {}
        kind = prop.get("type", "any")
        if isinstance(kind, list):
            kind = " or ".join(str(k) for k in kind)
        desc = prop.get("description", "")
        rows.append(f"| `{_cell(name)}` | {_cell(kind)} | {'yes' if name in required else 'no'} | {_cell(desc)} |")
    return rows


def render_markdown(catalogue: dict[str, Any], public_url: str) -> str:
    lines = ["# Till MCP tools", "",
             f"Server: `{public_url}/mcp` (Streamable HTTP) and `{public_url}/mcp/sse` (legacy SSE).", ""]
    tools = catalogue.get("tools") or []
    lines += [f"{len(tools)} tools.", ""]
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        lines += [f"## `{tool.get('name', '?')}`", ""]
        if tool.get("title"):
            lines += [f"**{_cell(tool['title'])}**", ""]
        if tool.get("description"):
            lines += [str(tool["description"]), ""]
        annotations = tool.get("annotations") or {}
        hints = [k for k in ("readOnlyHint", "destructiveHint", "idempotentHint") if annotations.get(k)]
        if hints:
            lines += ["Hints: " + ", ".join(hints), ""]
        rows = _params(tool.get("inputSchema"))
        if rows:
            lines += ["| parameter | type | required | description |", "|---|---|---|---|", *rows, ""]
    resources = [*(catalogue.get("resources") or []), *(catalogue.get("resourceTemplates") or [])]
    if resources:
        lines += ["# Resources", ""]
        for res in resources:
            if isinstance(res, dict):
                uri = res.get("uri") or res.get("uriTemplate") or "?"
                lines.append(f"- `{uri}` {_cell(res.get('description') or res.get('name') or '')}")
        lines.append("")
    prompts = catalogue.get("prompts") or []
    if prompts:
        lines += ["# Prompts", ""]
        for prompt in prompts:
            if isinstance(prompt, dict):
                lines.append(f"- `{prompt.get('name', '?')}` {_cell(prompt.get('description') or '')}")
        lines.append("")
    return "\n".join(lines)
