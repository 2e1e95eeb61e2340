"""Chat templates: a conversation -> token ids + per-token loss mask, shared by training and inference.

Public contract (docs/architecture.md, "Templates"):

    tok = load_tokenizer("tokenizer.model")            # SentencePiece .model or HF tokenizer.json
    ids, loss_mask = render(conversation, tok, template="llama2", system=DEFAULT_SYSTEM)
    prompt_ids = render_prompt(conversation, tok)      # conversation ends with a human turn

A conversation is the AgentInstruct/ShareGPT list of turns `{"from": "human"|"gpt", "value": str, "loss": ...}`
(OpenAI-style `{"role": "user"|"assistant"|"system", "content": str}` is accepted too). An optional leading
`system` turn replaces the configured system prompt.

Loss mask rule (1 = the token is a training target):
  * human turns, the system prompt and all template scaffolding: 0;
  * gpt turn with `loss: true`: 1 on the reply tokens *and* the end-of-turn token (EOS for Llama 2);
  * gpt turn with `loss: false` (AgentInstruct's fixed scaffold replies such as "Ok."): 0;
  * gpt turn with `loss` missing or None (general ShareGPT data): 1, like `loss: true`.

Token boundaries. Every assistant reply is tokenised by its own `encode` call, separately from the prompt text
before it, so the ids a model is trained on are exactly the ids it sees when `render_prompt` builds the prompt
and generation continues from there. With SentencePiece (Llama 2) each `encode` call adds the model's
dummy-prefix space: the prompt "[INST] ... [/INST]" starts with "▁[" and the reply starts with "▁<word>" --
the same pieces Meta's reference `chat_completion` produces when it encodes the whole exchange at once (tests check
this on all 1,420 published AgentInstruct rows). Text between special tokens is encoded in maximal runs; runs
never cross the prompt/reply boundary. BOS/EOS and the ChatML/Llama-3 markers are inserted as ids, never as literal text
(markers a vocabulary does not hold as special tokens are encoded as text; end-of-turn markers then fall back
to the tokenizer's EOS id so generation still stops on one id).

Images: a turn's text may hold `IMAGE_SENTINEL` (agentlm.data.images) where an image sits; given the token count
of each image (`image_tokens`, in order), each sentinel becomes that many `image_token_id` placeholders with loss 0
and `Rendered.image_mask` 1 (the model puts the image's patch embeddings there). The text on either side of an
image is encoded in its own call. Text without sentinels renders exactly as without images.

Templates:
  * "llama2" (default, what AgentLM used): per exchange `<s>[INST] {user} [/INST] {reply} </s>`, the first
    exchange's user text preceded by `<<SYS>>\\n{system}\\n<</SYS>>\\n\\n`; user and reply text are stripped.
  * "chatml": `<|im_start|>{role}\\n{text}<|im_end|>\\n` per message, prompt ends `<|im_start|>assistant\\n`.
  * "llama3": `<|begin_of_text|>` then `<|start_header_id|>{role}<|end_header_id|>\\n\\n{text}<|eot_id|>`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Sequence

from agentlm.data.images import IMAGE_SENTINEL
from agentlm.data.tokenizer import Tokenizer, load_tokenizer

__all__ = ["DEFAULT_SYSTEM", "TEMPLATES", "Rendered", "load_tokenizer", "render", "render_prompt",
           "render_detailed", "render_prompt_detailed", "normalize_conversation", "stop_ids"]

DEFAULT_SYSTEM = "You are a helpful, respectful and honest assistant."
ROLE_ALIASES = {"human": "human", "user": "human", "gpt": "gpt", "assistant": "gpt", "system": "system"}

# A piece is ("text", str) or ("special", marker). Markers "<bos>"/"<eos>" mean the tokenizer's BOS/EOS ids.
_BOS, _EOS = ("special", "<bos>"), ("special", "<eos>")


def _text(s: str):
    return ("text", s)


class _Llama2:
    name = "llama2"
    end_of_turn = "<eos>"

    def prompt(self, user: str, system: str | None, first: bool):
        sys_block = f"<<SYS>>\n{system}\n<</SYS>>\n\n" if (first and system) else ""
        return [_BOS, _text(f"[INST] {sys_block}{user} [/INST]")]

    def reply(self, text: str):
        # Meta's layout "{reply} </s>": the space before EOS is part of the trained reply text.
        return [_text(f"{text} "), _EOS]


class _ChatML:
    name = "chatml"
    end_of_turn = "<|im_end|>"

    def prompt(self, user: str, system: str | None, first: bool):
        pieces = [] if first else [_text("\n")]
        if first and system:
            pieces += [("special", "<|im_start|>"), _text(f"system\n{system}"), ("special", "<|im_end|>"), _text("\n")]
        return pieces + [("special", "<|im_start|>"), _text(f"user\n{user}"), ("special", "<|im_end|>"), _text("\n"),
                         ("special", "<|im_start|>"), _text("assistant\n")]

    def reply(self, text: str):
        return [_text(text), ("special", self.end_of_turn)]


class _Llama3:
    name = "llama3"
    end_of_turn = "<|eot_id|>"

    def _message(self, role: str, text: str):
        return [("special", "<|start_header_id|>"), _text(role), ("special", "<|end_header_id|>"), _text(f"\n\n{text}"),
                ("special", "<|eot_id|>")]

    def prompt(self, user: str, system: str | None, first: bool):
        pieces = [("special", "<|begin_of_text|>")] if first else []
        if first and system:
            pieces += self._message("system", system)
        return pieces + self._message("user", user) + [("special", "<|start_header_id|>"), _text("assistant"),
                                                       ("special", "<|end_header_id|>"), _text("\n\n")]

    def reply(self, text: str):
        return [_text(text), ("special", self.end_of_turn)]


TEMPLATES = {t.name: t for t in (_Llama2(), _ChatML(), _Llama3())}


@dataclasses.dataclass
class Rendered:
    """ids and loss mask plus where each exchange ends (whole-turn truncation) and which turn made each span."""

    ids: list[int]
    loss_mask: list[int]
    exchange_ends: list[int]          # token offset just after each exchange's reply (or trailing prompt)
    spans: list[tuple[int, int, int, str, bool]]  # (start, end, turn index, role, trained)
    image_mask: list[int] = dataclasses.field(default_factory=list)   # 1 at image placeholder tokens


def _get_template(template):
    if isinstance(template, str):
        if template not in TEMPLATES:
            raise ValueError(f"unknown chat template {template!r}; known: {sorted(TEMPLATES)}")
        return TEMPLATES[template]
    return template


def normalize_conversation(conversation: Sequence[dict]) -> tuple[str | None, list[tuple[str, str, Any]]]:
    """(leading system text or None, [(role 'human'|'gpt', stripped text, loss flag)]), checking the shape.

    Raises ValueError naming the turn for unknown roles, non-string values, a conversation that does not
    start with a human turn or does not alternate. (The dataset builders validate rows more thoroughly.)
    """
    system, turns = None, []
    for i, turn in enumerate(conversation):
        if not isinstance(turn, dict):
            raise ValueError(f"turn {i}: expected a dict, got {type(turn).__name__}")
        raw_role = turn.get("from", turn.get("role"))
        role = ROLE_ALIASES.get(raw_role) if isinstance(raw_role, str) else None
        if role is None:
            raise ValueError(f"turn {i}: unknown role {raw_role!r} (expected one of {sorted(ROLE_ALIASES)})")
        value = turn.get("value", turn.get("content"))
        if not isinstance(value, str):
            raise ValueError(f"turn {i}: value must be a string, got {type(value).__name__}")
        if role == "system":
            if i != 0:
                raise ValueError(f"turn {i}: a system turn is only allowed first")
            system = value.strip()
            continue
        expected = "human" if len(turns) % 2 == 0 else "gpt"
        if role != expected:
            raise ValueError(f"turn {i}: expected a {expected} turn, got {role} (turns must alternate, human first)")
        turns.append((role, value.strip(), turn.get("loss")))
    return system, turns


class _Images:
    """Hands out placeholder runs for the image sentinels of a conversation, in order."""

    def __init__(self, counts: Sequence[int] | None, token_id: int):
        self.counts, self.token_id, self.used = list(counts or []), token_id, 0

    def next_run(self) -> list[int]:
        if self.used >= len(self.counts):
            raise ValueError(f"the conversation has more image placeholders than the {len(self.counts)} images given")
        self.used += 1
        return [self.token_id] * self.counts[self.used - 1]


def _encode_pieces(pieces, tokenizer: Tokenizer, images: _Images | None = None) -> tuple[list[int], list[int]]:
    """Encode text runs (maximal, between special tokens and images) and resolve markers to ids.

    Returns (ids, image mask)."""
    ids: list[int] = []
    image_mask: list[int] = []
    run: list[str] = []

    def encode_text(text: str):
        new = tokenizer.encode(text) if text else []
        ids.extend(new)
        image_mask.extend([0] * len(new))

    def flush():
        if run:
            chunks = "".join(run).split(IMAGE_SENTINEL)
            for k, chunk in enumerate(chunks):
                if k:
                    if images is None:
                        raise ValueError("text holds an image placeholder but no image token counts were given")
                    placeholders = images.next_run()
                    ids.extend(placeholders)
                    image_mask.extend([1] * len(placeholders))
                encode_text(chunk)
            run.clear()

    for kind, value in pieces:
        if kind == "text":
            run.append(value)
            continue
        flush()
        token_id = _marker_id(value, tokenizer)
        if token_id is None:
            run.append(value)        # marker this vocabulary lacks: literal text
        else:
            ids.append(token_id)
            image_mask.append(0)
    flush()
    return ids, image_mask


def _marker_id(marker: str, tokenizer: Tokenizer) -> int | None:
    if marker == "<bos>":
        if tokenizer.bos_id is None:
            raise ValueError(f"{tokenizer!r} has no BOS token; the llama2 template needs one")
        return tokenizer.bos_id
    if marker == "<eos>":
        if tokenizer.eos_id is None:
            raise ValueError(f"{tokenizer!r} has no EOS token; the template needs one to end replies")
        return tokenizer.eos_id
    token_id = tokenizer.special_id(marker)
    if token_id is None and marker in ("<|im_end|>", "<|eot_id|>"):
        return _marker_id("<eos>", tokenizer)
    if token_id is None and marker == "<|begin_of_text|>" and tokenizer.bos_id is not None:
        return tokenizer.bos_id
    return token_id


def stop_ids(tokenizer: Tokenizer, template="llama2") -> list[int]:
    """Ids that end an assistant turn under `template` (generation stops on any of them)."""
    tmpl = _get_template(template)
    ids = {_marker_id(tmpl.end_of_turn, tokenizer)}
    if tokenizer.eos_id is not None:
        ids.add(tokenizer.eos_id)
    return sorted(i for i in ids if i is not None)


def _trained(loss) -> bool:
    if loss is None:
        return True
    if isinstance(loss, bool):
        return loss
    raise ValueError(f"loss must be true, false or null, got {loss!r}")


def render_detailed(conversation: Sequence[dict], tokenizer: Tokenizer, template="llama2",
                    system: str | None = DEFAULT_SYSTEM, image_tokens: Sequence[int] | None = None,
                    image_token_id: int = 0) -> Rendered:
    """Render with span bookkeeping; see the module docstring for the layout, mask rule, boundaries and images."""
    tmpl = _get_template(template)
    images = _Images(image_tokens, image_token_id)
    conv_system, turns = normalize_conversation(conversation)
    if conv_system is not None:
        system = conv_system
    out = Rendered([], [], [], [])
    turn_offset = 1 if conv_system is not None else 0

    def add(encoded: tuple[list[int], list[int]], turn: int, role: str, trained: bool):
        ids, image_mask = encoded
        if role != "human" and any(image_mask):
            raise ValueError(f"turn {turn}: images are only allowed in human turns")
        start = len(out.ids)
        out.ids.extend(ids)
        out.image_mask.extend(image_mask)
        out.loss_mask.extend([1 if trained else 0] * len(ids))
        out.spans.append((start, len(out.ids), turn, role, trained))

    for k, (role, text, loss) in enumerate(turns):
        if role == "human":
            if loss is True:
                raise ValueError(f"turn {k + turn_offset}: loss=true on a human turn")
            add(_encode_pieces(tmpl.prompt(text, system, first=(k == 0)), tokenizer, images), k + turn_offset, role,
                False)
            if k == len(turns) - 1:
                out.exchange_ends.append(len(out.ids))
        else:
            add(_encode_pieces(tmpl.reply(text), tokenizer, images), k + turn_offset, role, _trained(loss))
            out.exchange_ends.append(len(out.ids))
    if images.used != len(images.counts):
        raise ValueError(f"{len(images.counts)} images given but the conversation has {images.used} placeholders")
    return out


def render(conversation: Sequence[dict], tokenizer: Tokenizer, template="llama2",
           system: str | None = DEFAULT_SYSTEM) -> tuple[list[int], list[int]]:
    """(token ids, loss mask) of a whole conversation; a trailing human turn is rendered as a prompt (mask 0)."""
    r = render_detailed(conversation, tokenizer, template, system)
    return r.ids, r.loss_mask


def render_prompt(conversation: Sequence[dict], tokenizer: Tokenizer, template="llama2",
                  system: str | None = DEFAULT_SYSTEM) -> list[int]:
    """Ids for generation: the conversation must end with a human turn; the ids end where the reply starts."""
    return render_prompt_detailed(conversation, tokenizer, template, system).ids


def render_prompt_detailed(conversation: Sequence[dict], tokenizer: Tokenizer, template="llama2",
                           system: str | None = DEFAULT_SYSTEM, image_tokens: Sequence[int] | None = None,
                           image_token_id: int = 0) -> Rendered:
    """`render_prompt` with the image placeholders of a prompt that holds images (ids and `image_mask`)."""
    _, turns = normalize_conversation(conversation)
    if not turns or turns[-1][0] != "human":
        raise ValueError("render_prompt needs a conversation that ends with a human turn")
    return render_detailed(conversation, tokenizer, template, system, image_tokens, image_token_id)
