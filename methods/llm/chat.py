"""Chat templates: a serialized :class:`~benchmark.serialize.Prompt` → the exact string the model reads.

With a chat template (``llm.prompt.chat_template`` and a tokenizer that has one), the persona is the
system message and the rest the user message, followed by the template's generation prompt (the
assistant header). Templates that reject a system role get the persona prepended to the user message.
Without a template the plain text is used, followed by a blank line. The feature spans move along
(:meth:`Prompt.spans_in`), so attention can still be read per feature in the rendered string.

The rendered string already holds the template's special tokens: tokenize it with
``add_special_tokens=False`` (the generators and the SFT code do).
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmark.serialize import SEPARATOR, Prompt


@dataclass(frozen=True)
class Rendered:
    """A prompt as the model sees it, with the feature spans in that string."""

    id: str
    text: str
    spans: dict[str, list[tuple[int, int]]]


def has_chat_template(tokenizer) -> bool:
    """Whether the tokenizer carries a chat template."""
    return bool(getattr(tokenizer, "chat_template", None))


def messages(prompt: Prompt, system_role: bool = True) -> list[dict[str, str]]:
    """The chat messages of a prompt: system (persona) + user, or one user message holding both."""
    if system_role:
        return [{"role": "system", "content": prompt.system}, {"role": "user", "content": prompt.user}]
    return [{"role": "user", "content": prompt.system + SEPARATOR + prompt.user}]


def render(tokenizer, prompt: Prompt, use_template: bool = True) -> Rendered:
    """The generation-ready string of ``prompt`` for ``tokenizer`` (see module docstring)."""
    if use_template and has_chat_template(tokenizer):
        try:
            text = tokenizer.apply_chat_template(messages(prompt), tokenize=False, add_generation_prompt=True)
        except Exception:  # noqa: BLE001 - e.g. templates that raise on a system message
            text = tokenizer.apply_chat_template(messages(prompt, system_role=False), tokenize=False,
                                                 add_generation_prompt=True)
    else:
        text = prompt.text + SEPARATOR
    return Rendered(prompt.id, text, prompt.spans_in(text))


def render_all(tokenizer, prompts: list[Prompt], use_template: bool = True) -> list[Rendered]:
    """:func:`render` for a list of prompts."""
    return [render(tokenizer, p, use_template) for p in prompts]


def end_of_turn(tokenizer, use_template: bool = True) -> str:
    """Text that closes an assistant answer in training targets: the template's end-of-turn, else EOS.

    Found by rendering a one-turn conversation with a marker answer and taking what follows the marker
    (e.g. ``<|im_end|>\\n`` for ChatML templates); falls back to the EOS token.
    """
    eos = tokenizer.eos_token or ""
    if not (use_template and has_chat_template(tokenizer)):
        return eos
    marker = "\u2063ANSWER\u2063"
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "q"}, {"role": "assistant", "content": marker}], tokenize=False)
    except Exception:  # noqa: BLE001
        return eos
    tail = text[text.find(marker) + len(marker):] if marker in text else ""
    return tail.rstrip("\n") or eos


def add_special_tokens_for(tokenizer, text: str) -> bool:
    """Whether tokenizing ``text`` should add the tokenizer's special tokens.

    Not when the text already starts with the BOS token (a chat template put it there); plain text gets
    whatever the tokenizer adds by itself, as it would in training.
    """
    bos = getattr(tokenizer, "bos_token", None)
    return not (bos and text.startswith(bos))
