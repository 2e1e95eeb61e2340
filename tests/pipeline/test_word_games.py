"""data_pipeline.word_games (the tiny sweep's and the demo's self-made data) and its scorer agentlm.eval.word_games:
held-out general items never appear in training, the tokenizer has the ids the tiny preset expects, the eval items
are in the formats the environments load, and the scorer counts exact matches per game."""
import json
import re

from data_pipeline import word_games


def test_general_pool_and_held_out_set_are_disjoint(tmp_path):
    train, held = word_games.write_general(tmp_path, 300, 40, seed=3)
    train_rows = [json.loads(x) for x in train.read_text().splitlines()]
    held_rows = [json.loads(x) for x in held.read_text().splitlines()]
    assert len(train_rows) == 300 and len(held_rows) == 40
    prompts = lambda rows: {r["conversations"][0]["value"] for r in rows}
    assert not prompts(train_rows) & prompts(held_rows)
    for row in held_rows:  # every answer is the game's function of the prompt's words
        if row["game"] in word_games.COPY_GAMES:  # ... or the bracketed value itself
            assert row["conversations"][0]["value"].endswith(f"[{row['conversations'][1]['value']}]")
            continue
        words = re.split(r"[:?] ", row["conversations"][0]["value"], maxsplit=1)[1].split()
        assert row["conversations"][1]["value"] == word_games.GAMES[row["game"]][1](words)
    games = {r["game"] for r in train_rows}
    assert games == set(word_games.GAMES) | set(word_games.COPY_GAMES)
    assert word_games.write_general(tmp_path / "again", 300, 40, seed=3)[0].read_text() == train.read_text()


def test_tokenizer_matches_the_tiny_preset(tmp_path):
    from agentlm.data.template import load_tokenizer, render

    train, _ = word_games.write_general(tmp_path, 200, 10, seed=0)
    path = word_games.train_tokenizer(word_games.conversation_texts([train]), 512, tmp_path / "tok")
    tok = load_tokenizer(path)
    assert tok.vocab_size <= 512 and tok.bos_id == 1 and tok.eos_id == 2
    conv = json.loads(train.read_text().splitlines()[0])["conversations"]
    ids, mask = render(conv, tok)
    assert ids[0] == 1 and ids[-1] == 2 and max(ids) < 512 and sum(mask) > 0
    assert tok.decode(tok.encode("Sort these words: apple river")) == "Sort these words: apple river"


def test_tokenizer_learns_the_chat_template_scaffolding(tmp_path):
    """The BPE sees the turns inside the Llama-2 template, so the system block costs a few pieces per row, not
    one per character (it is in every row the trainer renders)."""
    from agentlm.data.template import DEFAULT_SYSTEM, load_tokenizer

    train, _ = word_games.write_general(tmp_path, 300, 10, seed=0)
    texts = word_games.conversation_texts([train])
    assert any(DEFAULT_SYSTEM in t and "[INST]" in t for t in texts) and any(t.endswith(" [/INST]") for t in texts)
    tok = load_tokenizer(word_games.train_tokenizer(texts, 512, tmp_path / "tok"))
    assert len(tok.encode(f"[INST] <<SYS>>\n{DEFAULT_SYSTEM}\n<</SYS>>\n\n")) <= 25
    bare = load_tokenizer(word_games.train_tokenizer(word_games.conversation_texts([train], system=None), 512,
                                                     tmp_path / "bare"))
    assert len(bare.encode(DEFAULT_SYSTEM)) > 2 * len(tok.encode(DEFAULT_SYSTEM))


def test_eval_items_from_pipeline_tasks(tmp_path):
    rows = [{"env": "db", "id": f"d{i}", "data": {"description": f"q{i}", "label": ["1"]}} for i in range(5)]
    rows += [{"env": "os", "id": "o0", "data": {"description": "x", "evaluation": {"match": "3"}}},
             {"env": "household", "id": "h0", "data": {}}]
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(json.dumps(r) + "\n" for r in rows))
    paths = word_games.write_eval_items(tasks, tmp_path / "items", per_env=3)
    assert sorted(paths) == ["db", "os"]
    db = [json.loads(x) for x in open(paths["db"])]
    assert [d["description"] for d in db] == ["q0", "q1", "q2"]
    from agentlm.envs.os_env import load_tasks

    assert load_tasks(paths["os"])[0].data["evaluation"]["match"] == "3"


def test_scorer_counts_exact_matches_per_game(tmp_path, monkeypatch):
    """Model and generation replaced by an oracle that answers the `repeat` games right and the rest wrong."""
    import importlib

    import pytest

    import agentlm.checkpoint
    from agentlm.data.template import load_tokenizer
    from agentlm.eval import word_games as scorer

    train, held = word_games.write_general(tmp_path, 200, 30, seed=1)
    tok_path = word_games.train_tokenizer(word_games.conversation_texts([train]), 512, tmp_path / "tok")
    tok = load_tokenizer(tok_path)
    rows = [json.loads(x) for x in held.read_text().splitlines()]
    answers = [r["conversations"][1]["value"] if r["game"] == "repeat" else "zebra" for r in rows]
    monkeypatch.setattr(agentlm.checkpoint, "load", lambda run_dir: (None, None))
    monkeypatch.setattr(importlib.import_module("agentlm.infer.generate"), "generate",
                        lambda cfg, params, prompts, n: [tok.encode(a) + [tok.eos_id] for a in answers])
    result = scorer.general_eval("run", str(held), str(tok_path), str(tmp_path / "out" / "general.json"))
    n_repeat = sum(r["game"] == "repeat" for r in rows)
    assert result["n"] == 30 and 0 < n_repeat < 30
    assert result["score"] == pytest.approx(100.0 * n_repeat / 30)
    assert result["per_game"]["repeat"] == 100.0
    assert json.loads((tmp_path / "out" / "general.json").read_text())["score"] == result["score"]
    held.write_text(held.read_text() + "{not json\n")
    with pytest.raises(ValueError, match=r"general_eval.jsonl:31: not valid JSON"):
        scorer.general_eval("run", str(held), str(tok_path), str(tmp_path / "out2.json"))
