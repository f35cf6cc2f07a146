"""Tempo as LangChain tools: `ask_video`, `search_moments`, `list_streams`, `list_alerts` (langchain-core).

    from tempo.service import TempoService
    from tempo.tools.langchain_tools import tempo_tools

    tools = tempo_tools(TempoService(model="ckpt"))
    agent = langgraph.prebuilt.create_react_agent(chat_model, tools)

Inputs are typed (the pydantic models of tempo.agent.toolkit, shared with the MCP server); results
are JSON text. A bad argument or a user mistake (unknown stream, empty question) comes back to the
calling model as the tool's result with one sentence, never as an exception in the agent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from langchain_core.tools import StructuredTool, ToolException
from pydantic import ValidationError
from tempo.agent.toolkit import DESCRIPTIONS, INPUTS, VideoToolkit, describe_validation_error
from tempo.errors import TempoError, redact_secrets

if TYPE_CHECKING:
    from tempo.service import TempoService


def _as_tool(toolkit: VideoToolkit, name: str) -> StructuredTool:
    method: Callable[..., dict[str, Any]] = getattr(toolkit, name)

    def run(**kwargs: Any) -> str:
        try:
            return json.dumps(method(**kwargs), ensure_ascii=False)
        except TempoError as exc:
            raise ToolException(redact_secrets(str(exc))) from None

    def on_validation_error(exc: ValidationError) -> str:
        return describe_validation_error(name, exc)

    return StructuredTool.from_function(
        func=run,
        name=name,
        description=DESCRIPTIONS[name],
        args_schema=INPUTS[name],
        handle_tool_error=True,  # ToolException -> its message as the tool's result
        handle_validation_error=on_validation_error,
    )


def tempo_tools(source: TempoService | VideoToolkit, **conversation_options: Any) -> list[StructuredTool]:
    """The tools over a service (a new `Conversations` with `conversation_options`) or a toolkit."""
    toolkit = source if isinstance(source, VideoToolkit) else VideoToolkit.for_service(source, **conversation_options)
    return [_as_tool(toolkit, name) for name in ("ask_video", "search_moments", "list_streams", "list_alerts",
                                                 "transcript")]
