"""AgentBench's Knowledge Graph task (held in): answer a Freebase question with the KB tools.

The agent sees the question and its entities and calls one tool per reply, in AgentBench's syntax
(`Action: get_relations(Barack Obama)`, `get_neighbors(#0, people.person.profession)`, `intersection(#1, #2)`,
`get_attributes(#3)`, `argmax(#3, attr)`, `argmin(...)`, `count(#2)`), then `Final Answer: #k`. Variables are
numbered in the order tools create them. AgentBench's rules hold: `get_neighbors` takes only a relation that
`get_relations` listed for that variable, `argmax`/`argmin` only an attribute `get_attributes` listed, and
`intersection` only variables of one type. At most 15 rounds. The score is AgentBench's answer F1: the F1 of the
final variable's members against the gold answers, averaged over all items (no answer counts 0).

Backend (option `sparql_url`): "" = the embedded rdflib graph built from the item file's own facts
(agentlm.envs.kg.local_graph), or the URL of any SPARQL endpoint holding Freebase (AgentBench's Virtuoso).
Items: AgentBench's std.json / dev.json / kg_rl_all.json ({question, qid, entities, actions, answer, ...}); the
schema comes from `ontology_dir` (default: `ontology/` beside the item file).
"""
from __future__ import annotations

import pathlib
import re
import threading
from typing import Any, Sequence

from agentlm.envs.agents import n_agent_turns
from agentlm.envs.base import Environment, Episode, Message, StepResult, Task, TaskUnscorable
from agentlm.envs.kg import sparql
from agentlm.envs.kg.local_graph import ACTION, MID, build_graph, gold_answer
from agentlm.jsonl import read_json
from agentlm.envs.kg.ontology import Ontology, load_ontology
from agentlm.envs.prompts import PromptScaffold, default_scaffold, load_scaffold
from agentlm.envs.spec import scored_episodes

INSTRUCTION = """You answer questions from a knowledge base (Freebase) by calling its tools, one call per reply.

Tools (a variable is an entity of the question, by name, or a result #k of an earlier call):
1. get_relations(variable) -> the relations leaving the variable. Call it before get_neighbors.
2. get_neighbors(variable, relation) -> a new variable: the entities the relation leads to. The relation must be
   one get_relations listed for that same variable.
3. intersection(variable1, variable2) -> a new variable holding the entities in both (both of one type).
4. get_attributes(variable) -> the numerical attributes of the variable; use it only for a superlative.
5. argmax(variable, attribute) / argmin(variable, attribute) -> a new variable: the entity with the largest /
   smallest value (the attribute must be one get_attributes listed).
6. count(variable) -> a new variable: how many entities the variable holds.

Results are numbered from #0 in the order tools create them. Write a short thought, then the call on a line of
its own, e.g.
Thought: I need the relations of the film first.
Action: get_relations(The Godfather)

When a variable is the answer, reply with "Final Answer: #k". You have at most 15 replies."""

TOOLS = ("get_relations", "get_neighbors", "intersection", "get_attributes", "argmax", "argmin", "count")
FINAL = re.compile(r"(?:Find|Final) Answer: #(\d+)")
_GRAPHS: dict[tuple[str, str], Any] = {}
_GRAPHS_LOCK = threading.Lock()


def read_items(path: str | pathlib.Path) -> list[dict[str, Any]]:
    """AgentBench KG items; a malformed one is named with its index and field."""
    p = pathlib.Path(path)
    data = read_json(p, list)
    for i, item in enumerate(data):
        for field, kind in (("question", str), ("entities", dict), ("actions", list), ("answer", list)):
            if not isinstance(item.get(field), kind):
                raise ValueError(f"{p} item {i} ({item.get('qid', '?')}): field {field!r} must be a "
                                 f"{kind.__name__}")
        for j, a in enumerate(item["answer"]):
            if not isinstance(a, dict) or "answer_argument" not in a:
                raise ValueError(f"{p} item {i}: answer {j} has no 'answer_argument'")
    return data


def default_ontology_dir(data_file: str | pathlib.Path) -> pathlib.Path:
    return pathlib.Path(data_file).resolve().parent / "ontology"


def load_tasks(source: str, split: str = "dev") -> list[Task]:
    """Every item of an AgentBench KG file; the task carries the item and where its graph comes from."""
    path = pathlib.Path(source)
    tasks = []
    for i, item in enumerate(read_items(path)):
        qid = str(item.get("qid", i))
        tasks.append(Task(f"kg_{qid}", "kg", {**item, "item_file": str(path.resolve())}, split))
    return tasks


def local_graph(item_file: str, ontology_dir: str):
    """The embedded graph of one item file (built once per process)."""
    return _local_backend(item_file, ontology_dir).graph


def _local_backend(item_file: str, ontology_dir: str) -> sparql.Backend:
    """One backend (graph and query lock) per item file, shared by every worker of the process."""
    key = (str(item_file), str(ontology_dir))
    with _GRAPHS_LOCK:
        if key not in _GRAPHS:
            graph = build_graph(read_items(item_file), load_ontology(ontology_dir), str(item_file))
            _GRAPHS[key] = sparql.Backend(graph, threading.Lock())
        return _GRAPHS[key]


def f1(predicted: Sequence[str], gold: Sequence[str]) -> float:
    """AgentBench's answer F1 on sets (0 when nothing is right)."""
    p, g = set(predicted), set(gold)
    tp = len(p & g)
    if tp == 0:
        return 0.0
    precision, recall = tp / len(p), tp / len(g)
    return 2 * precision * recall / (precision + recall)


class KGSession:
    """The tools over one backend for one episode: variables, and the relations/attributes listed so far."""

    def __init__(self, backend: sparql.Backend, ontology: Ontology, entities: dict[str, str]):
        self.backend, self.ontology, self.entities = backend, ontology, entities
        self.variables: list[tuple[sparql.Program, str]] = []  # (program, type)
        self.listed_relations: dict[sparql.Program, set[str]] = {}
        self.listed_attributes: dict[sparql.Program, set[str]] = {}

    def resolve(self, arg: str) -> tuple[sparql.Program, str | None]:
        arg = arg.strip().replace("variable ", "").replace("Variable ", "")
        if arg.startswith("#"):
            k = int(arg[1:])
            if not 0 <= k < len(self.variables):
                raise ValueError(f"no variable {arg}")
            return self.variables[k]
        if arg in self.entities:
            return sparql.entity(self.entities[arg]), None
        if MID.match(arg) or re.match(r"^f\.[\w]+$", arg):
            return sparql.entity(arg), None
        raise ValueError(f"{arg!r} is neither a variable nor an entity of the question")

    def _new(self, program: sparql.Program, kind: str) -> str:
        self.variables.append((program, kind))
        k = len(self.variables) - 1
        return f"Observation: variable #{k}, which is a number" if program.op == "count" else \
            f"Observation: variable #{k}, which are instances of {kind}"

    def call(self, tool: str, args: list[str]) -> str:
        if tool == "get_relations":
            program, _ = self.resolve(args[0])
            found = sorted(self.backend.out_relations(program) & self.ontology.relations)
            self.listed_relations[program] = set(found)
            return f"Observation: [{', '.join(found)}]"
        if tool == "get_attributes":
            program, _ = self.resolve(args[0])
            found = sorted(self.backend.out_relations(program) & self.ontology.attributes)
            self.listed_attributes[program] = set(found)
            return f"Observation: [{', '.join(found)}]"
        if tool == "get_neighbors":
            program, _ = self.resolve(args[0])
            relation = args[1].strip()
            if relation not in self.listed_relations.get(program, ()):
                raise ValueError("the relation was not listed by get_relations for this variable")
            return self._new(sparql.join(relation, program), self.ontology.variable_type(relation))
        if tool == "intersection":
            (a, ta), (b, tb) = self.resolve(args[0]), self.resolve(args[1])
            if ta is None or tb is None or ta != tb:
                raise TypeError("the two variables are not of the same type")
            return self._new(sparql.Program("and", (a, b)), ta)
        if tool in ("argmax", "argmin"):
            program, kind = self.resolve(args[0])
            if args[1].strip() not in self.listed_attributes.get(program, ()):
                raise ValueError("the attribute was not listed by get_attributes for this variable")
            return self._new(sparql.Program(tool, (program, args[1].strip())), kind or "")
        if tool == "count":
            program, _ = self.resolve(args[0])
            return self._new(sparql.Program("count", (program,)), "type.int")
        raise ValueError(f"unknown tool {tool}")

    def answer(self, k: int) -> list[str]:
        return self.backend.members(self.variables[k][0])


def parse_call(line: str) -> tuple[str, list[str]] | None:
    """The first known tool called on an action line, with its comma-separated arguments."""
    for name in re.findall(r"(\w+)\(", line):
        if name in TOOLS:
            m = re.search(rf"{name}\((.+?)\)", line)
            if m:
                return name, re.split(r"\s*,\s*", m.group(1))
    return None


class KGEnv(Environment):
    name = "kg"

    def __init__(self, max_rounds: int = 15, sparql_url: str = "", ontology_dir: str = "",
                 prompt_file: str | None = None, gold_check: bool = True):
        self.max_rounds, self.sparql_url, self.ontology_dir = max_rounds, sparql_url, ontology_dir
        self.gold_check = gold_check and not sparql_url  # only the embedded graph can miss facts
        self.scaffold: PromptScaffold = load_scaffold(prompt_file) if prompt_file else default_scaffold(INSTRUCTION)
        self.session: KGSession | None = None
        self.gold: list[str] = []
        self._endpoint = sparql.Backend.endpoint(sparql_url) if sparql_url else None

    def _backend(self, task: Task) -> tuple[sparql.Backend, Ontology]:
        item_file = task.data.get("item_file", "")
        ontology_dir = self.ontology_dir or (str(default_ontology_dir(item_file)) if item_file else "")
        if not ontology_dir:
            raise ValueError(f"{task.id}: set the KG option ontology_dir (the task names no item file)")
        ontology = load_ontology(ontology_dir)
        if self._endpoint is not None:
            return self._endpoint, ontology
        if not item_file:
            raise ValueError(f"{task.id}: the embedded graph needs the item file (task data 'item_file')")
        return _local_backend(item_file, ontology_dir), ontology

    def reset(self, task: Task) -> list[Message]:
        backend, ontology = self._backend(task)
        self.session = KGSession(backend, ontology, dict(task.data["entities"]))
        self.gold = gold_answer(task.data)
        if self.gold_check:
            reached = replay_gold(task, backend, ontology)
            if f1(reached, self.gold) < 1.0:
                raise TaskUnscorable(f"the embedded graph does not give the gold answer by the gold program "
                                     f"(it gives {reached[:5]}); see docs/envs/kg.md")
        entities = ", ".join(task.data["entities"])
        return self.scaffold.build(f"Question: {task.data['question']}\nEntities: [{entities}]")

    def step(self, action: str) -> StepResult:
        message = action.split("Observation:")[0].replace("\\_", "_")
        final = FINAL.findall(message)
        if final:
            k = int(final[0])
            if k >= len(self.session.variables):
                return StepResult(self.scaffold.observe("Invalid variable id! Need to recheck the action."),
                                  invalid=True)
            predicted = self.session.answer(k)
            score = f1(predicted, self.gold)
            return StepResult("", score, True, {"predicted": predicted[:50], "gold": self.gold, "f1": score,
                                                "exact": set(predicted) == set(self.gold)})
        for line in message.split("\n"):
            if re.match(r"Action.*?:", line):
                call = parse_call(line)
                if call is None:
                    return StepResult(self.scaffold.observe("No tool call found on the action line. Need to "
                                                            "recheck the action."), invalid=True)
                tool, args = call
                try:
                    return StepResult(self.scaffold.observe(self.session.call(tool, args)))
                except TypeError:
                    note = "The two variables are not of the same type. You may further explore them by get_relations."
                except (ValueError, IndexError, KeyError) as e:
                    note = f"You may have made a mistake ({e}) and need to fix it."
                return StepResult(self.scaffold.observe(f"{tool}({', '.join(args)}) cannot be executed. {note}"),
                                  invalid=True)
        return StepResult(self.scaffold.observe("No executable function found! Need to recheck the action."),
                          invalid=True)

    def parse_ok(self, action: str) -> bool:
        if FINAL.search(action):
            return True
        return any(re.match(r"Action.*?:", line) and parse_call(line) for line in action.split("\n"))


def replay_gold(task: Task, backend: sparql.Backend, ontology: Ontology) -> list[str]:
    """What the gold action sequence answers on `backend` (its last variable), under AgentBench's rules; []
    when a step breaks them."""
    session = KGSession(backend, ontology, dict(task.data["entities"]))
    try:
        for action in task.data["actions"]:
            m = ACTION.match(action)
            session.call(m.group(1), [a.strip() for a in m.group(2).split(",")])
        return session.answer(len(session.variables) - 1) if session.variables else []
    except (ValueError, TypeError, KeyError, AttributeError):
        return []


class GoldActionOracle:
    """Replays an item's gold action sequence, naming question entities as the agent sees them, then answers
    with the last variable (how AgentBench's gold programs end)."""

    def act(self, conversation: list[Message], task: Task) -> str:
        actions, turn = task.data["actions"], n_agent_turns(conversation)
        # a name the tool syntax cannot carry stays a MID (AgentBench splits arguments on commas and deletes
        # "variable " from them)
        names = {mid: surface for surface, mid in task.data["entities"].items()
                 if not re.search(r"[,()]|[Vv]ariable ", surface)}
        if turn >= len(actions):
            n_vars = sum(1 for a in actions if a.split("(")[0] in ("get_neighbors", "intersection", "count",
                                                                   "argmax", "argmin"))
            return f"Thought: #{n_vars - 1} is the answer to the question.\nFinal Answer: #{n_vars - 1}"
        m = ACTION.match(actions[turn])
        tool, args = m.group(1), [names.get(a.strip(), a.strip()) for a in m.group(2).split(",")]
        return f"Thought: {_THOUGHT[tool]}\nAction: {tool}({', '.join(args)})"


_THOUGHT = {
    "get_relations": "I look at the relations of this variable to choose the next step.",
    "get_neighbors": "This relation leads towards the answer.",
    "intersection": "The answer must satisfy both conditions, so I intersect the two variables.",
    "get_attributes": "The question asks for a superlative, so I look at the numerical attributes.",
    "argmax": "The question asks for the largest value of this attribute.",
    "argmin": "The question asks for the smallest value of this attribute.",
    "count": "The question asks how many there are.",
}


def aggregate(episodes: Sequence[Episode], tasks: Sequence[Task]) -> dict[str, Any]:
    """AgentBench's KG score: mean answer F1 (x 100) over the scored items, plus exact match and the share of
    items that ended with an answer; items the embedded graph cannot answer are counted apart."""
    scored = scored_episodes(episodes)
    n = len(scored) or 1
    f1s = [float(e.info.get("f1", 0.0)) if "f1" in e.info else 0.0 for e in scored]
    return {"score": 100.0 * sum(f1s) / n, "f1": sum(f1s) / n,
            "exact_match": sum(bool(e.info.get("exact")) for e in scored) / n,
            "answered": sum("f1" in e.info for e in scored) / n,
            "scored": len(scored), "unscorable": len(episodes) - len(scored)}
