"""A self-made toy world for CPU ratio sweeps and the demo: everything a tiny run needs besides the agent
trajectories, built offline from nothing (no ../shared, no downloads).

    python -m data_pipeline.word_games --data_dir D --agent_dir D/export/agentinstruct --tasks D/eval_tasks.jsonl

Why each piece exists:
- general conversations: the "general" pool of the mixture. Word games (repeat, reverse, sort, count, first,
  last) in the ShareGPT layout; a tiny model can actually learn them in minutes, so its general ability is
  measurable — the role MMLU/GSM8K play at paper scale. A held-out set of the same games is the general eval
  (scored by `python -m agentlm.eval.word_games`).
- a tokenizer: a byte-level BPE (vocabulary 512, the `tiny` preset's; <unk>, <s>, </s> at ids 0, 1, 2) trained
  on the agent trajectories and the general conversations, saved as a Hugging Face tokenizer.json, which
  agentlm.data.template.load_tokenizer reads.
- held-in evaluation items: DB / OS tasks derived by the pipeline with other seeds than the training data,
  written in the dbbench / os_interaction item formats agentlm.eval.agent reads.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import random
import sys

from agentlm.data.template import DEFAULT_SYSTEM
from agentlm.jsonl import iter_jsonl
from data_pipeline.sources.toy_tasks import MAX_COUNT, made_up_word

WORDS = ("apple", "river", "stone", "cloud", "green", "music", "table", "light", "ocean", "tiger", "paper", "smile",
         "bread", "chair", "dream", "field", "glass", "house", "juice", "lemon", "money", "night", "plant", "queen",
         "radio", "sugar", "train", "water", "zebra", "honey")
GAMES = {
    "repeat": ("Repeat these words: {}", lambda ws: " ".join(ws)),
    "reverse": ("Write these words in reverse order: {}", lambda ws: " ".join(reversed(ws))),
    "sort": ("Sort these words alphabetically: {}", lambda ws: " ".join(sorted(ws))),
    "count": ("How many words are there? {}", lambda ws: str(len(ws))),
    "first": ("What is the first word? {}", lambda ws: ws[0]),
    "last": ("What is the last word? {}", lambda ws: ws[-1]),
}
# Copy games over the kinds of token the toy agent tasks' observations carry (made-up words, numbers 1-99): a
# pretrained chat model copies any string from its context, and these give the toy's general-only model that
# ability over the same tokens. They are half of the general pool and copy 1-4 values each, because a model of
# this size learns copying only from dense copy supervision (with one copied value in six one-answer games, 300
# steps left it at 0% on every copy game). The values sit in brackets so that they tokenize as in an answer (the
# byte-level BPE gives " word" and "word" different pieces). No agent format, no environment: general data.
COPY_GAMES = {
    "copy_words": ("Copy the words in brackets: [{}]", made_up_word),
    "copy_numbers": ("Copy the numbers in brackets: [{}]", lambda rng: str(rng.randint(1, MAX_COUNT))),
}
SPECIAL = ("<unk>", "<s>", "</s>")


def general_row(rng: random.Random, index: int, split: str) -> dict:
    game = rng.choice(sorted(COPY_GAMES)) if rng.random() < 0.5 else rng.choice(sorted(GAMES))
    if game in COPY_GAMES:
        prompt, draw = COPY_GAMES[game]
        value = " ".join(draw(rng) for _ in range(rng.randint(1, 4)))
        user, reply = prompt.format(value), value
    else:
        words = rng.sample(WORDS, rng.randint(2, 6))
        prompt, answer = GAMES[game]
        user, reply = prompt.format(" ".join(words)), answer(words)
    return {"id": f"general_{split}_{index}", "game": game,
            "conversations": [{"from": "human", "value": user}, {"from": "gpt", "value": reply}]}


def write_general(data_dir: pathlib.Path, n_train: int, n_eval: int, seed: int) -> tuple[pathlib.Path, pathlib.Path]:
    """general/train.jsonl (training pool) and general_eval.jsonl (held out: no prompt also in training)."""
    rng = random.Random(seed)
    train = [general_row(rng, i, "train") for i in range(n_train)]
    seen = {r["conversations"][0]["value"] for r in train}
    held, i = [], 0
    while len(held) < n_eval:
        row = general_row(rng, i, "eval")
        i += 1
        if row["conversations"][0]["value"] not in seen:
            held.append(row)
            seen.add(row["conversations"][0]["value"])
    (data_dir / "general").mkdir(parents=True, exist_ok=True)
    train_path, eval_path = data_dir / "general" / "train.jsonl", data_dir / "general_eval.jsonl"
    train_path.write_text("".join(json.dumps(r) + "\n" for r in train))
    eval_path.write_text("".join(json.dumps(r) + "\n" for r in held))
    return train_path, eval_path


def conversation_texts(paths, template: str = "llama2", system: str | None = DEFAULT_SYSTEM) -> list[str]:
    """The text runs the trainer will encode: every turn inside the chat template's scaffolding (system block,
    [INST] markers). Training the BPE on these rather than on bare turn values gives the scaffolding its own
    pieces: with bare values the Llama-2 system block cost ~50 one-character tokens in every row."""
    from agentlm.data.template import TEMPLATES, normalize_conversation

    tmpl = TEMPLATES[template]
    texts = []
    for path in paths:
        for _, row in iter_jsonl(path):
            conv_system, turns = normalize_conversation(row.get("conversations", []))
            for k, (role, text, _) in enumerate(turns):
                pieces = tmpl.prompt(text, conv_system or system, first=k == 0) if role == "human" else \
                    tmpl.reply(text)
                texts += [value for kind, value in pieces if kind == "text"]
    return texts


def train_tokenizer(texts: list[str], vocab_size: int, out_dir: pathlib.Path) -> pathlib.Path:
    """Byte-level BPE with <unk>/<s>/</s> at ids 0/1/2 (the Llama convention the tiny preset uses)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    if tok.get_vocab_size() > vocab_size:
        raise ValueError(f"tokenizer has {tok.get_vocab_size()} pieces, more than vocab_size={vocab_size}")
    out_dir.mkdir(parents=True, exist_ok=True)
    tok.save(str(out_dir / "tokenizer.json"))
    (out_dir / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<s>", "eos_token": "</s>",
                                                               "unk_token": "<unk>"}) + "\n")
    return out_dir / "tokenizer.json"


def write_eval_items(tasks_file: pathlib.Path, out_dir: pathlib.Path, per_env: int) -> dict[str, str]:
    """dbbench / os_interaction item files from a pipeline tasks.jsonl (its rows' `data` are in those formats)."""
    items: dict[str, list] = {}
    for _, row in iter_jsonl(tasks_file):
        if row.get("env") in ("db", "os") and len(items.setdefault(row["env"], [])) < per_env:
            items[row["env"]].append(row["data"])
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for env, rows in items.items():
        paths[env] = str(out_dir / f"{env}.jsonl")
        pathlib.Path(paths[env]).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return paths


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m data_pipeline.word_games", description=__doc__.split("\n\n")[0])
    p.add_argument("--data_dir", required=True)
    p.add_argument("--agent_dir", required=True, help="the pipeline's export/agentinstruct directory")
    p.add_argument("--tasks", default="", help="a pipeline tasks.jsonl with held-out DB/OS tasks (eval items)")
    p.add_argument("--n_general", type=int, default=600)
    p.add_argument("--n_general_eval", type=int, default=60)
    p.add_argument("--eval_items_per_env", type=int, default=8)
    p.add_argument("--vocab_size", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    data_dir = pathlib.Path(a.data_dir)
    agent_files = sorted(pathlib.Path(a.agent_dir).glob("*.jsonl"))
    if not agent_files:
        raise SystemExit(f"--agent_dir {a.agent_dir}: no *.jsonl trajectories (run the data pipeline first)")
    general, general_eval_path = write_general(data_dir, a.n_general, a.n_general_eval, a.seed)
    tok = train_tokenizer(conversation_texts([*agent_files, general]), a.vocab_size, data_dir / "tokenizer")
    items = write_eval_items(pathlib.Path(a.tasks), data_dir / "eval_items", a.eval_items_per_env) if a.tasks else {}
    print(json.dumps({"general": str(general), "general_eval": str(general_eval_path), "tokenizer": str(tok),
                      "eval_items": items}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
