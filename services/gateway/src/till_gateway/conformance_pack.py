"""The conformance fixture pack: the tools, prompts and resources the MCP conformance suite calls.

``@modelcontextprotocol/conformance`` (server scenarios) expects the "everything server" fixtures:
``test_simple_text``, ``test_image_content``, …, prompts ``test_simple_prompt`` …, resources
``test://static-text`` … (tests/interop/conformance.py, REQUIREMENTS).  They are no part of a
store: the pack is on only with ``TILL_CONFORMANCE_FIXTURES=true`` (refused unless the public URL is
a loopback address), and then it is answered here, in the gateway, because progress, logging,
sampling and elicitation need the transport (exchange.py) — the tools service has none of them.

The pack adds its entries to the last page of each list the tools service answers, answers the
fixture names itself and forwards everything else unchanged, ``completion/complete`` of
references that are not its own included (tools completes the store's prompts and templates).
Framework-free: methods take decoded params and return MCP result objects.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import struct
import wave
from collections.abc import Awaitable, Callable
from typing import Any, Final

import msgspec
from msgspec import Raw

from till_gateway.exchange import Exchange, ServerRequestError, progress_token
from till_gateway.jsonrpc import CodedError, InvalidParams

Forward = Callable[[str, Raw], Awaitable[Raw]]
RESOURCE_NOT_FOUND: Final = -32002
#: Delay between the notifications of the logging and progress tools (the suite asks for ~50 ms).
STEP_DELAY: Final = 0.05
_decoder: Final = msgspec.json.Decoder()
_encoder: Final = msgspec.json.Encoder()


def _png_1x1_red() -> str:
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    raw = b"\x00\xff\x00\x00"                      # filter byte + one RGB pixel
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return base64.b64encode(png).decode()


def _wav_silence() -> str:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * 80)            # 10 ms of silence
    return base64.b64encode(buf.getvalue()).decode()


PNG: Final = _png_1x1_red()
WAV: Final = _wav_silence()
_NO_ARGS: Final[dict[str, Any]] = {"type": "object", "properties": {}}


def _tool(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "title": name, "description": f"[conformance fixture] {description}",
            "inputSchema": schema or _NO_ARGS, "annotations": {"readOnlyHint": True}}


def _string_arg(name: str, description: str) -> dict[str, Any]:
    return {"type": "object", "properties": {name: {"type": "string", "description": description}},
            "required": [name]}


TOOLS: Final[list[dict[str, Any]]] = [
    _tool("test_simple_text", "Returns one text item."),
    _tool("test_image_content", "Returns a 1x1 PNG image item."),
    _tool("test_audio_content", "Returns a short WAV audio item."),
    _tool("test_embedded_resource", "Returns an embedded text resource."),
    _tool("test_multiple_content_types", "Returns text, image and an embedded resource."),
    _tool("test_tool_with_logging", "Sends three notifications/message while it runs."),
    _tool("test_tool_with_progress", "Sends notifications/progress 0, 50 and 100 of 100."),
    _tool("test_error_handling", "Always fails with isError."),
    _tool("test_sampling", "Asks the client for an LLM completion (sampling/createMessage).",
          _string_arg("prompt", "The prompt to send to the LLM")),
    _tool("test_elicitation", "Asks the user for input (elicitation/create).",
          _string_arg("message", "The message to show the user")),
    _tool("test_elicitation_sep1034_defaults", "Elicits with default values (SEP-1034)."),
    _tool("test_elicitation_sep1330_enums", "Elicits with the five enum schema forms (SEP-1330)."),
]
PROMPTS: Final[list[dict[str, Any]]] = [
    {"name": "test_simple_prompt", "description": "[conformance fixture] A prompt without arguments."},
    {"name": "test_prompt_with_arguments", "description": "[conformance fixture] A prompt with two arguments.",
     "arguments": [{"name": "arg1", "description": "First test argument", "required": True},
                   {"name": "arg2", "description": "Second test argument", "required": True}]},
    {"name": "test_prompt_with_embedded_resource",
     "description": "[conformance fixture] A prompt embedding a resource.",
     "arguments": [{"name": "resourceUri", "description": "URI of the resource to embed", "required": True}]},
    {"name": "test_prompt_with_image", "description": "[conformance fixture] A prompt with an image."},
]
RESOURCES: Final[list[dict[str, Any]]] = [
    {"uri": "test://static-text", "name": "static-text", "mimeType": "text/plain",
     "description": "[conformance fixture] A static text resource."},
    {"uri": "test://static-binary", "name": "static-binary", "mimeType": "image/png",
     "description": "[conformance fixture] A static binary resource."},
    {"uri": "test://watched-resource", "name": "watched-resource", "mimeType": "text/plain",
     "description": "[conformance fixture] The resource the subscribe scenarios name."},
]
TEMPLATES: Final[list[dict[str, Any]]] = [
    {"uriTemplate": "test://template/{id}/data", "name": "template-data", "mimeType": "application/json",
     "description": "[conformance fixture] A resource template with one parameter."},
]
_TEMPLATE: Final = re.compile(r"^test://template/(?P<id>[^/]{1,100})/data$")
#: Suggestions completion/complete ranks by prefix (the suite only checks the shape).
COMPLETIONS: Final[dict[str, list[str]]] = {
    "arg1": ["paris", "park", "party", "test", "testValue1"],
    "arg2": ["world", "wonder", "testValue2"],
    "id": ["1", "12", "123", "1234"],
}
_TOOL_NAMES: Final = frozenset(t["name"] for t in TOOLS)
_PROMPT_NAMES: Final = frozenset(p["name"] for p in PROMPTS)
_LISTS: Final = {"tools/list": ("tools", TOOLS), "prompts/list": ("prompts", PROMPTS),
                 "resources/list": ("resources", RESOURCES),
                 "resources/templates/list": ("resourceTemplates", TEMPLATES)}


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _args(params: dict[str, Any]) -> dict[str, Any]:
    args = params.get("arguments")
    if args is None:
        return {}
    if not isinstance(args, dict):
        raise InvalidParams("arguments must be an object", {"path": "params.arguments"})
    return args


def _required_string(args: dict[str, Any], name: str, where: str = "params.arguments") -> str:
    value = args.get(name)
    if not isinstance(value, str):
        raise InvalidParams(f"argument {name!r} (string) is required", {"path": f"{where}.{name}"})
    return value


_STATIC_RESULTS: Final[dict[str, dict[str, Any]]] = {
    "test_simple_text": {"content": [_text("This is a simple text response for testing.")]},
    "test_image_content": {"content": [{"type": "image", "data": PNG, "mimeType": "image/png"}]},
    "test_audio_content": {"content": [{"type": "audio", "data": WAV, "mimeType": "audio/wav"}]},
    "test_embedded_resource": {"content": [{"type": "resource", "resource": {
        "uri": "test://embedded-resource", "mimeType": "text/plain",
        "text": "This is an embedded resource content."}}]},
    "test_multiple_content_types": {"content": [
        _text("Multiple content types test:"),
        {"type": "image", "data": PNG, "mimeType": "image/png"},
        {"type": "resource", "resource": {"uri": "test://mixed-content-resource", "mimeType": "application/json",
                                          "text": json.dumps({"test": "data", "value": 123})}}]},
    "test_error_handling": {"isError": True,
                            "content": [_text("This tool intentionally returns an error for testing")]},
}


class ConformancePack:
    """Answers the fixture names; ``handle`` returns None for everything else."""

    def __init__(self, step_delay: float = STEP_DELAY) -> None:
        self.step_delay = step_delay

    async def handle(self, method: str, raw: Raw, forward: Forward, exchange: Exchange) -> dict[str, Any] | None:
        if method in _LISTS:
            return await self._list(method, raw, forward)
        if method == "completion/complete":
            return self.complete(_decoder.decode(raw))     # None: not a fixture reference, tools answers
        if method not in ("tools/call", "prompts/get", "resources/read"):
            return None
        params = _decoder.decode(raw)
        if method == "tools/call" and params.get("name") in _TOOL_NAMES:
            return await self.call_tool(params, exchange)
        if method == "prompts/get" and params.get("name") in _PROMPT_NAMES:
            return self.get_prompt(params)
        if method == "resources/read" and str(params.get("uri", "")).startswith("test://"):
            return self.read_resource(params)
        return None

    async def _list(self, method: str, raw: Raw, forward: Forward) -> dict[str, Any]:
        result = _decoder.decode(await forward(method, raw))
        key, extra = _LISTS[method]
        if isinstance(result, dict) and not result.get("nextCursor"):   # the last page gets the fixtures
            result[key] = [*(result.get(key) or []), *extra]
        return result if isinstance(result, dict) else {key: extra}

    # --- tools ------------------------------------------------------------------------------------

    async def call_tool(self, params: dict[str, Any], exchange: Exchange) -> dict[str, Any]:
        name: str = params["name"]
        args = _args(params)
        static = _STATIC_RESULTS.get(name)
        if static is not None:
            return dict(static)           # callers may add keys (resultType)
        if name == "test_tool_with_logging":
            for i, text in enumerate(("Tool execution started", "Tool processing data", "Tool execution completed")):
                if i:
                    await asyncio.sleep(self.step_delay)
                await exchange.log("info", text, logger="conformance")
            return {"content": [_text("Tool with logging executed successfully")]}
        if name == "test_tool_with_progress":
            token = progress_token(params)
            for i, step in enumerate((0, 50, 100)):
                if i:
                    await asyncio.sleep(self.step_delay)
                await exchange.progress(token, step, 100)
            return {"content": [_text("Tool with progress executed successfully")]}
        if name == "test_sampling":
            prompt = _required_string(args, "prompt")
            return await self._ask(exchange, "sampling/createMessage", {
                "messages": [{"role": "user", "content": _text(prompt)}], "maxTokens": 100}, _sampled)
        if name == "test_elicitation":
            message = _required_string(args, "message")
            return await self._ask(exchange, "elicitation/create", {"message": message, "requestedSchema": {
                "type": "object",
                "properties": {"username": {"type": "string", "description": "User's response"},
                               "email": {"type": "string", "description": "User's email address"}},
                "required": ["username", "email"]}}, _elicited("User response"))
        if name == "test_elicitation_sep1034_defaults":
            return await self._ask(exchange, "elicitation/create", {
                "message": "Please review and update the form fields with defaults",
                "requestedSchema": {"type": "object", "properties": {
                    "name": {"type": "string", "description": "User name", "default": "John Doe"},
                    "age": {"type": "integer", "description": "User age", "default": 30},
                    "score": {"type": "number", "description": "User score", "default": 95.5},
                    "status": {"type": "string", "description": "User status",
                               "enum": ["active", "inactive", "pending"], "default": "active"},
                    "verified": {"type": "boolean", "description": "Verification status", "default": True}}}},
                _elicited("Elicitation completed"))
        # test_elicitation_sep1330_enums
        return await self._ask(exchange, "elicitation/create", {
            "message": "Please select options from the enum fields",
            "requestedSchema": {"type": "object", "properties": {
                "untitledSingle": {"type": "string", "description": "Select one option",
                                   "enum": ["option1", "option2", "option3"]},
                "titledSingle": {"type": "string", "description": "Select one option with titles", "oneOf": [
                    {"const": "value1", "title": "First Option"}, {"const": "value2", "title": "Second Option"},
                    {"const": "value3", "title": "Third Option"}]},
                "legacyEnum": {"type": "string", "description": "Select one option (legacy)",
                               "enum": ["opt1", "opt2", "opt3"],
                               "enumNames": ["Option One", "Option Two", "Option Three"]},
                "untitledMulti": {"type": "array", "description": "Select multiple options",
                                  "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
                "titledMulti": {"type": "array", "description": "Select multiple options with titles",
                                "items": {"anyOf": [{"const": "value1", "title": "First Choice"},
                                                   {"const": "value2", "title": "Second Choice"},
                                                   {"const": "value3", "title": "Third Choice"}]}}}}},
            _elicited("Elicitation completed"))

    @staticmethod
    async def _ask(exchange: Exchange, method: str, params: dict[str, Any],
                   render: Callable[[Any], str]) -> dict[str, Any]:
        """A server request; a transport or client that cannot answer makes a tool error, not a crash."""
        try:
            answer = await exchange.request(method, params)
        except ServerRequestError as exc:
            return {"isError": True, "content": [_text(str(exc))]}
        return {"content": [_text(render(answer))]}

    # --- prompts, resources, completion -----------------------------------------------------------

    def get_prompt(self, params: dict[str, Any]) -> dict[str, Any]:
        name: str = params["name"]
        args = _args(params)
        if name == "test_simple_prompt":
            return {"messages": [{"role": "user", "content": _text("This is a simple prompt for testing.")}]}
        if name == "test_prompt_with_arguments":
            arg1 = _required_string(args, "arg1")
            arg2 = _required_string(args, "arg2")
            return {"messages": [{"role": "user",
                                  "content": _text(f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'")}]}
        if name == "test_prompt_with_embedded_resource":
            uri = _required_string(args, "resourceUri")
            return {"messages": [
                {"role": "user", "content": {"type": "resource", "resource": {
                    "uri": uri, "mimeType": "text/plain", "text": "Embedded resource content for testing."}}},
                {"role": "user", "content": _text("Please process the embedded resource above.")}]}
        return {"messages": [
            {"role": "user", "content": {"type": "image", "data": PNG, "mimeType": "image/png"}},
            {"role": "user", "content": _text("Please analyze the image above.")}]}

    def read_resource(self, params: dict[str, Any]) -> dict[str, Any]:
        uri: str = params["uri"]
        if uri == "test://static-text":
            return {"contents": [{"uri": uri, "mimeType": "text/plain",
                                  "text": "This is the content of the static text resource."}]}
        if uri == "test://static-binary":
            return {"contents": [{"uri": uri, "mimeType": "image/png", "blob": PNG}]}
        if uri == "test://watched-resource":
            return {"contents": [{"uri": uri, "mimeType": "text/plain", "text": "Watched resource content."}]}
        m = _TEMPLATE.match(uri)
        if m:
            rid = m.group("id")
            body = json.dumps({"id": rid, "templateTest": True, "data": f"Data for ID: {rid}"},
                              separators=(",", ":"))
            return {"contents": [{"uri": uri, "mimeType": "application/json", "text": body}]}
        raise CodedError(RESOURCE_NOT_FOUND, "resource not found", {"uri": uri[:200]})

    def complete(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """completion/complete for the fixture prompt and template; None for any other reference."""
        ref = params.get("ref")
        argument = params.get("argument")
        known = isinstance(ref, dict) and (
            (ref.get("type") == "ref/prompt" and ref.get("name") == "test_prompt_with_arguments")
            or (ref.get("type") == "ref/resource" and ref.get("uri") == TEMPLATES[0]["uriTemplate"]))
        if not known:
            return None
        if not isinstance(argument, dict) or not isinstance(argument.get("name"), str) \
                or not isinstance(argument.get("value", ""), str):
            raise InvalidParams("argument must be {name, value} strings", {"path": "params.argument"})
        candidates = COMPLETIONS.get(argument["name"], [])
        prefix = str(argument.get("value", "")).lower()
        values = [v for v in candidates if v.lower().startswith(prefix)][:100]
        return {"completion": {"values": values, "total": len(values), "hasMore": False}}


def _sampled(answer: Any) -> str:
    content = answer.get("content") if isinstance(answer, dict) else None
    text = content.get("text") if isinstance(content, dict) else None
    return f"LLM response: {text if text is not None else _encoder.encode(answer).decode()}"


def _elicited(label: str) -> Callable[[Any], str]:
    def render(answer: Any) -> str:
        action = answer.get("action") if isinstance(answer, dict) else None
        content = answer.get("content") if isinstance(answer, dict) else None
        return f"{label}: action={action}, content={json.dumps(content)}"

    return render
