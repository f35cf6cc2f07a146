"""The remote answerer: the kept renditions sent to an OpenAI-compatible chat-completions server.

`RemoteAnswerer(url, model).answer_clips(question, clips, ...)` posts one streamed
`/chat/completions` request (vLLM, SGLang, `transformers serve` and hosted APIs speak it): a system
turn, then one user turn holding, for each kept segment in time order and each of its temporal
patches, the patch's `<t seconds>` stream-time tag as text followed by the patch's frames as PNG
images, then the question. The server pays for each frame as an image of its own (resized by its
processor, wrapped in two special tokens: `ImagePricing`), so with a remote answerer the renditions are
chosen and reported in that unit, "qwen3-vl image tokens" (sending a video instead is an extension
servers disagree on: `transformers serve` resamples a `video_url` to 32 frames of its own choosing and
times them by the file, not by the stream). The tags are the ones the local answerer's prompt carries
(`RemoteAnswerer.request` is what a test compares), so the same times reach either answerer. The
answer streams back piece by piece (server-sent events); a server error, before the stream or in it,
is one sentence.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from tempo.errors import InvalidInputError, TimedOutError, UnavailableError, redact_url
from tempo.models.config import LLM_SYSTEM_PROMPT
from tempo.models.renditions import ImagePricing, RenderedClip
from tempo.models.text import plain_text, time_tag


def png_data_url(frame: np.ndarray) -> str:
    """(H, W, 3) uint8 RGB → a data: URL of its lossless PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def clip_content(clip: RenderedClip, temporal: int = 2, words: str = "") -> list[dict[str, Any]]:
    """Chat content parts of one clip: per temporal patch, its time tag (the mean of its frames' times,
    the last frame repeating for an odd count, as the local prompt; naming the clip's stream in a
    cross-stream ask) then its frames as images; `words` (the segment's cues) after the first tag."""
    times = list(clip.frame_times)
    parts: list[dict[str, Any]] = []
    for lo in range(0, len(times), temporal):
        group = times[lo : lo + temporal]
        padded = group + [group[-1]] * (temporal - len(group))
        parts.append({"type": "text", "text": time_tag((padded[0] + padded[-1]) / 2, clip.stream)})
        if lo == 0 and words:
            parts.append({"type": "text", "text": words})
        parts += [{"type": "image_url", "image_url": {"url": png_data_url(f)}} for f in clip.frames[lo : lo + temporal]]
    return parts


class RemoteAnswerer:
    """An OpenAI-compatible chat-completions server at `url` (…/v1) serving `model`. `pricing`: how its
    image processor prices each frame (None: as the local checkpoint's preprocessor_config.json says,
    `Qwen3VLFamily.image_pricing`); the renditions are chosen in that unit."""

    def __init__(
        self,
        url: str,
        model: str,
        *,
        timeout: float = 600.0,
        api_key: str | None = None,
        pricing: ImagePricing | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise InvalidInputError(f"--answer-url must be an http(s) URL such as http://HOST:PORT/v1, not {url!r}")
        if not model.strip():
            raise InvalidInputError("--answer-model names the model the --answer-url server serves; it is empty")
        self.url = url.rstrip("/")
        self.model = model.strip()
        self.timeout = timeout
        self.api_key = api_key
        self.pricing = pricing

    def request(
        self,
        question: str,
        clips: Sequence[RenderedClip],
        *,
        max_new_tokens: int,
        temperature: float = 0.0,
        texts: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """The JSON body of the chat-completions request for `clips` (time order) and `question`;
        `texts[i]`: the words of clip i (may be empty), after its first time tag as in the local prompt."""
        words = list(texts) if texts is not None else [""] * len(clips)
        if len(words) != len(clips):
            raise ValueError(f"{len(words)} segment texts for {len(clips)} clips")
        content: list[dict[str, Any]] = []
        for clip, text in zip(clips, words, strict=True):
            content += clip_content(clip, words=text)
        content.append({"type": "text", "text": plain_text(question)})
        return {
            "model": self.model,
            "messages": [{"role": "system", "content": LLM_SYSTEM_PROMPT}, {"role": "user", "content": content}],
            "max_tokens": int(max_new_tokens),
            "temperature": float(temperature),
            "stream": True,
        }

    def answer_clips(
        self,
        question: str,
        clips: Sequence[RenderedClip],
        *,
        max_new_tokens: int,
        temperature: float = 0.0,
        on_text: Callable[[str], None] | None = None,
        texts: Sequence[str] | None = None,
    ) -> str:
        """The server's answer (stripped), streamed to `on_text` as it arrives."""
        import httpx

        body = self.request(question, clips, max_new_tokens=max_new_tokens, temperature=temperature, texts=texts)
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        where = redact_url(self.url)
        raw, sent = "", ""
        try:
            with httpx.stream(
                "POST", f"{self.url}/chat/completions", json=body, headers=headers, timeout=self.timeout
            ) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise UnavailableError(f"the answer server at {where} refused the request: {_server_error(resp)}")
                for line in resp.iter_lines():
                    piece = _delta(line)
                    if isinstance(piece, _StreamError):
                        raise UnavailableError(f"the answer server at {where} failed while answering: {piece.message}")
                    if piece is None:
                        continue
                    raw += piece
                    text = raw.strip()
                    if len(text) > len(sent) and text.startswith(sent):
                        if on_text is not None:
                            on_text(text[len(sent) :])
                        sent = text
        except httpx.TimeoutException as exc:
            raise TimedOutError(f"the answer server at {where} did not answer within {self.timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise UnavailableError(f"cannot reach the answer server at {where} ({type(exc).__name__})") from exc
        return raw.strip()


class _StreamError:
    """An error event in the middle of a stream (`transformers serve` sends `data: {"error": "..."}` when
    generation fails after the 200 response has begun)."""

    def __init__(self, message: str) -> None:
        self.message = message


def _delta(line: str) -> str | _StreamError | None:
    """The text of one server-sent event line of a streamed chat completion (None: no text)."""
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    if not data or data == "[DONE]":
        return None
    try:
        event = json.loads(data)
        if isinstance(event, dict) and event.get("error"):
            return _StreamError(_one_line(_message(event)) or "an error event without a message")
        return event["choices"][0].get("delta", {}).get("content") or None
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None


def _message(payload: Any) -> str:
    """The message of an error body: OpenAI's {"error": {"message": ...}}, {"error": "..."} (transformers
    serve's 503 and stream errors) or FastAPI's {"detail": ...} (its 400 and 422)."""
    if not isinstance(payload, dict):
        return str(payload)
    err = payload.get("error", payload.get("detail", ""))
    if isinstance(err, dict):
        return str(err.get("message") or err.get("detail") or "")
    if isinstance(err, list):  # FastAPI's validation errors: [{"loc": ..., "msg": ...}, ...]
        return "; ".join(str(e.get("msg", e)) if isinstance(e, dict) else str(e) for e in err)
    return str(err)


def _one_line(message: str) -> str:
    return " ".join(message.split())[:300]


def _server_error(resp: Any) -> str:
    """The server's own error message in one line, else the status."""
    try:
        message = _message(resp.json())
    except ValueError:
        message = resp.text
    first = _one_line(message or "")
    return f"HTTP {resp.status_code}" + (f", {first}" if first else "")
