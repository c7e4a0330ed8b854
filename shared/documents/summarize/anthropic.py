"""Anthropic's Messages API."""

from __future__ import annotations

from typing import Any

from shared.documents.summarize.chat import (
    BadResponse,
    ChatClient,
    _ChatSummarizer,
    _Reply,
    dig,
    token_count,
)

ANTHROPIC_VERSION = "2023-06-01"


class AnthropicAPI(ChatClient):
    """The Messages API: POST {base_url}/v1/messages (the summarizer and the extractor)."""

    name = "anthropic"
    default_model = "claude-3-5-haiku-latest"
    default_base_url = "https://api.anthropic.com"
    key_setting = "ANTHROPIC_API_KEY"

    @property
    def endpoint(self) -> str:
        base = self.base_url if self.base_url.endswith("/v1") else f"{self.base_url}/v1"
        return f"{base}/messages"

    def _headers(self) -> dict[str, str]:
        return {
            "x-api-key": self._api_key,
            "anthropic-version": ANTHROPIC_VERSION,
            "content-type": "application/json",
        }


class AnthropicSummarizer(AnthropicAPI, _ChatSummarizer):
    """Summaries over the Messages API."""

    def _body(self, system: str, prompt: str) -> dict[str, Any]:
        return {
            "model": self.model,
            "max_tokens": self.config.max_output_tokens,
            "system": system,
            "messages": [{"role": "user", "content": prompt}],
        }

    def _reply(self, data: Any) -> _Reply:
        content = dig(data, "content")
        if not isinstance(content, list):
            raise BadResponse
        texts = [
            block["text"]
            for block in content
            if isinstance(block, dict)
            and block.get("type") == "text"
            and isinstance(block.get("text"), str)
        ]
        if not texts or not texts[0].strip():
            raise BadResponse
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        return _Reply(
            text=texts[0],
            input_tokens=token_count(usage.get("input_tokens")),
            output_tokens=token_count(usage.get("output_tokens")),
        )
