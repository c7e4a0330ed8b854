"""OpenAI's Chat Completions, at any compatible base URL."""

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


class OpenAIAPI(ChatClient):
    """Chat Completions at any OpenAI-compatible base URL: POST {base_url}/chat/completions
    (the summarizer and the extractor)."""

    name = "openai"
    default_model = "gpt-4o-mini"
    default_base_url = "https://api.openai.com/v1"
    key_setting = "OPENAI_API_KEY"

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/chat/completions"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}", "content-type": "application/json"}


class OpenAISummarizer(OpenAIAPI, _ChatSummarizer):
    """Summaries over Chat Completions."""

    def _body(self, system: str, prompt: str) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": prompt},
            ],
            "max_tokens": self.config.max_output_tokens,
        }

    def _reply(self, data: Any) -> _Reply:
        text = dig(data, "choices", 0, "message", "content")
        if not isinstance(text, str) or not text.strip():
            raise BadResponse
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        return _Reply(
            text=text,
            input_tokens=token_count(usage.get("prompt_tokens")),
            output_tokens=token_count(usage.get("completion_tokens")),
        )
