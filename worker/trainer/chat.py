"""Conversations: OpenAI-style `messages` checked, rendered with the base tokenizer's chat
template, and tokenised with the loss on the assistant turns only.

Each assistant turn's span is found by rendering the conversation up to it twice: with the
generation prompt (what the model sees before it answers) and with the turn (what it should
produce). The text between the two is the turn, its end-of-turn markers included. Segments
are tokenised one by one, as at inference, where the prompt is tokenised before the answer
is generated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from worker.trainer.errors import UserError

ROLES = ("system", "user", "assistant")
Messages = list[dict[str, str]]


def _type(value: object) -> str:
    return {list: "a list", dict: "an object", type(None): "null", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def conversation_problem(messages: Any) -> str | None:
    """What is wrong with a `messages` value, or None (the same rules as the server's upload)."""
    if not isinstance(messages, list) or not messages:
        return "must be a non-empty list of {role, content} messages"
    for number, message in enumerate(messages, start=1):
        if not isinstance(message, dict):
            return f"message {number} is {_type(message)}, not an object"
        if "role" not in message:
            return f"message {number} has no 'role'"
        role = message["role"]
        if role not in ROLES:
            return f"message {number} has unknown role {role!r}; roles are {', '.join(ROLES)}"
        if "content" not in message:
            return f"message {number} ({role}) has no 'content'"
        if not isinstance(message["content"], str):
            content = _type(message["content"])
            return f"message {number} ({role}) has content that is {content}, not a string"
    if not any(message["role"] == "assistant" for message in messages):
        return "has no assistant turn, so nothing to train on"
    return None


def pair_messages(prompt: str, answer: str) -> Messages:
    """A prompt/answer pair as a user turn and an assistant turn (`data.apply_chat_template`)."""
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


def require_chat_template(tokenizer: Any, model_name: str, why: str) -> None:
    """A UserError naming the fix when the base tokenizer has no chat template."""
    if not getattr(tokenizer, "chat_template", None):
        raise UserError(
            f"{why}, but the tokenizer of {model_name} has no chat template; use a base model "
            "whose tokenizer has one (its tokenizer_config.json `chat_template` or a "
            "chat_template.jinja file, as instruct/chat models ship), or train on prompt/answer "
            "pairs with data.apply_chat_template: false",
            code="no_chat_template",
        )


def _render(tokenizer: Any, messages: Messages, *, generation_prompt: bool) -> str:
    try:
        return tokenizer.apply_chat_template(
            [{"role": m["role"], "content": m["content"]} for m in messages],
            tokenize=False,
            add_generation_prompt=generation_prompt,
        )
    except Exception as exc:  # jinja's TemplateError: a template that refuses this conversation
        raise UserError(
            f"the chat template refuses this conversation: {exc}", code="invalid_dataset"
        ) from exc


def generation_prompt(tokenizer: Any, messages: Messages) -> str:
    """The rendered turns followed by the template's cue for the assistant's next turn."""
    return _render(tokenizer, messages, generation_prompt=True)


def assistant_segments(tokenizer: Any, messages: Messages) -> list[tuple[str, bool]]:
    """The rendered conversation as (text, is_assistant) segments, up to the last assistant turn."""
    segments: list[tuple[str, bool]] = []
    done = ""  # rendered text covered by segments so far
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:index], generation_prompt=True)
        through = _render(tokenizer, messages[: index + 1], generation_prompt=False)
        if not before.startswith(done) or not through.startswith(before):
            raise UserError(
                "the chat template renders earlier turns differently once later turns follow "
                "(for instance it drops past reasoning), so the assistant turns cannot be "
                "located for the loss; split such conversations into one line per assistant turn",
                code="invalid_dataset",
            )
        if len(before) > len(done):
            segments.append((before[len(done) :], False))
        segments.append((through[len(before) :], True))
        done = through
    return segments


def tokenize_conversation(tokenizer: Any, messages: Messages) -> tuple[list[int], list[bool]]:
    """(input_ids, trained) of one conversation: `trained` is true on assistant-turn tokens."""
    segments = assistant_segments(tokenizer, messages)
    pieces: Sequence[list[int]] = tokenizer(
        [text for text, _ in segments], add_special_tokens=False
    )["input_ids"]
    input_ids: list[int] = []
    trained: list[bool] = []
    for (_, assistant), ids in zip(segments, pieces, strict=True):
        input_ids += ids
        trained += [assistant] * len(ids)
    return input_ids, trained
