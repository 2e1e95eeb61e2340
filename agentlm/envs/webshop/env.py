"""WebShop as AgentBench runs it (held in): shop for a product from a human-written goal in 10 rounds.

Pages (search, results, item, item detail, done), their text observations ("[SEP]"-joined page text), the
clickable values and the transitions follow WebShop's text environment in its simple mode; each round's user turn
is `Observation:\n{page}\n\nAvailable Actions:\n{repr of has_search_bar and clickables}`. The agent replies with
a thought and then, on the line after "Action:", `search[keywords]` or `click[value]`; a reply without one ends
the episode with reward 0 (a format failure). Buying scores the purchase with WebShop's reward
(agentlm.envs.webshop.reward); the score is the mean reward x 100.

Items: an official WebShop data directory (products, attributes, human goals: agentlm.envs.webshop.catalog)
with a goal range: "DIR" takes the split's range (std = goals 0-199 and dev = 200-279 as AgentBench; train = 1500
onwards, WebShop's own training goals), "DIR::A:B" goals A..B-1.
"""
from __future__ import annotations

import pathlib
import re
from typing import Any, Sequence

from agentlm.envs.base import Environment, Episode, Message, StepResult, Task
from agentlm.envs.prompts import PromptScaffold, load_scaffold
from agentlm.envs.spec import mean_reward, scored_episodes
from agentlm.envs.webshop.catalog import Catalog, Goal, Product, load_catalog
from agentlm.envs.webshop.reward import purchase_reward
from agentlm.envs.webshop.search import ProductSearch

# "agentbench": the page and its actions, as AgentBench's evaluation shows them; "page": the page text alone, as
# the AgentInstruct WebShop trajectories show it (use it with prompt_file=webshop.parquet::0)
OBSERVATION_FORMATS = ("agentbench", "page")
SPLITS = {"std": (0, 200), "dev": (200, 280), "train": (1500, None)}
RESULTS_PER_PAGE = 10
ACTION = re.compile(r"[Aa]ction: *\n *((?:search|click)\[[^\]]*\])")
SEP = " [SEP] "

INSTRUCTION = """You are shopping online for a customer. Each round I show you the page you are on and the actions
it allows. There are two kinds of action: search[keywords] (when the page has a search bar) and click[value],
where the value must be one of the clickables listed. An action that is not available does nothing.
Reply with a short thought and then your action on the line after "Action:", exactly like this:

Thought:
I think I should search for the product first.

Action:
search[large blue cotton bath towel]"""

EXAMPLE = [
    ("Observation:\nWebShop [SEP] Instruction: [SEP] i want a pack of 12 unscented beeswax candles, and price lower "
     "than 40.00 dollars [SEP] Search\n\nAvailable Actions:\n{'has_search_bar': True, 'clickables': ['search']}",
     "Thought:\nI think I should search for unscented beeswax candles.\n\nAction:\n"
     "search[unscented beeswax candles 12 pack]"),
    ("Observation:\nInstruction: [SEP] i want a pack of 12 unscented beeswax candles, and price lower than 40.00 "
     "dollars [SEP] Back to Search [SEP] Page 1 (Total results: 50) [SEP] Next > [SEP] B000CANDLE [SEP] Pure Beeswax "
     "Candles, Unscented, 12 Pack [SEP] $24.99 [SEP] ...\n\nAvailable Actions:\n{'has_search_bar': False, "
     "'clickables': ['back to search', 'next >', 'b000candle', '...']}",
     "Thought:\nI think the first product matches and is under 40 dollars.\n\nAction:\nclick[b000candle]"),
    ("Observation:\nInstruction: [SEP] i want a pack of 12 unscented beeswax candles, and price lower than 40.00 "
     "dollars [SEP] Back to Search [SEP] < Prev [SEP] size [SEP] 6 pack [SEP] 12 pack [SEP] Pure Beeswax Candles, "
     "Unscented, 12 Pack [SEP] Price: $24.99 [SEP] Rating: N.A. [SEP] Description [SEP] Features [SEP] Reviews "
     "[SEP] Buy Now\n\nAvailable Actions:\n{'has_search_bar': False, 'clickables': ['back to search', '< prev', "
     "'6 pack', '12 pack', '...', 'buy now']}",
     "Thought:\nI think I should choose the 12 pack size.\n\nAction:\nclick[12 pack]"),
    ("Observation:\nInstruction: [SEP] i want a pack of 12 unscented beeswax candles, and price lower than 40.00 "
     "dollars [SEP] Back to Search [SEP] < Prev [SEP] size [SEP] 6 pack [SEP] 12 pack [SEP] ...\n\nAvailable "
     "Actions:\n{'has_search_bar': False, 'clickables': ['back to search', '< prev', '6 pack', '12 pack', '...', "
     "'buy now']}",
     "Thought:\nI think everything matches, so I buy it.\n\nAction:\nclick[buy now]"),
]


def default_scaffold() -> PromptScaffold:
    turns = [{"from": "human", "value": INSTRUCTION, "loss": None}, {"from": "gpt", "value": "Ok.", "loss": False}]
    for obs, reply in EXAMPLE:
        turns += [{"from": "human", "value": obs, "loss": None}, {"from": "gpt", "value": reply, "loss": False}]
    return PromptScaffold(turns)


def parse_reply(reply: str) -> str | None:
    """The action AgentBench takes from a reply: on the line after "Action:", up to the first "]"."""
    m = ACTION.search(reply)
    return m.group(1) if m else None


def split_action(action: str) -> tuple[str, str] | None:
    """(name, lowercased argument): the name runs to the last "[" with a non-empty "...]" after it."""
    m = re.fullmatch(r"(.+)\[(.+)\]", action.strip(), re.DOTALL)
    return (m.group(1), m.group(2).lower()) if m else None


def task_range(source: str, split: str) -> tuple[str, int, int | None]:
    path, _, rng = str(source).partition("::")
    if rng:
        a, _, b = rng.partition(":")
        try:
            return path, int(a), int(b) if b else None
        except ValueError:
            raise ValueError(f"{source}: goal range after '::' must be START:END") from None
    if split not in SPLITS:
        raise ValueError(f"WebShop split {split!r}: use one of {sorted(SPLITS)} or DIR::START:END")
    return (path, *SPLITS[split])


def load_tasks(source: str, split: str = "std") -> list[Task]:
    """Goals of a WebShop data directory (see the module docstring). The source may name the product file itself
    (e.g. DIR/items_shuffle.json, the full catalogue): its attribute file is the matching items_ins_v2 file."""
    path, start, end = task_range(source, split)
    p = pathlib.Path(path).resolve()
    products = attributes = ""
    if p.is_file():
        products, p = p.name, p.parent
        attributes = products.replace("items_shuffle", "items_ins_v2")
        attributes = attributes if (p / attributes).is_file() else "-"
    catalog = load_catalog(str(p), products, attributes)
    chosen = list(range(len(catalog.goals)))[start:end]
    if not chosen:
        raise ValueError(f"{source}: no goals in range {start}:{end} ({len(catalog.goals)} goals in {p})")
    return [Task(f"webshop_{i}", "webshop", {"goal_index": i, "data_dir": str(p), "products": products,
                                              "attributes": attributes, "goal": catalog.goals[i].to_dict()}, split)
            for i in chosen]


class Session:
    """One shopper's page state."""

    def __init__(self, goal: Goal, catalog: Catalog, search: ProductSearch):
        self.goal, self.catalog, self.search = goal, catalog, search
        self.page, self.results, self.page_no = "search", [], 1
        self.product: Product | None = None
        self.selected: dict[str, str] = {}
        self.sub = ""

    def header(self) -> list[str]:
        return ["Instruction:", self.goal.instruction]

    def view(self) -> tuple[str, list[str], bool]:
        """(observation, clickables, has_search_bar) of the current page."""
        if self.page == "search":
            return SEP.join(["WebShop", *self.header(), "Search"]), ["search"], True
        if self.page == "results":
            shown = self.results[(self.page_no - 1) * RESULTS_PER_PAGE: self.page_no * RESULTS_PER_PAGE]
            prev = ["< Prev"] if self.page_no > 1 else []
            text = [*self.header(), "Back to Search", f"Page {self.page_no} (Total results: {len(self.results)})",
                    *prev, "Next >"]
            for asin in shown:
                p = self.catalog.products[asin]
                text += [asin, p.title, p.price_tag]
            clicks = ["back to search", *(["< prev"] if prev else []), "next >", *(a.lower() for a in shown)]
            return SEP.join(_clean(text)), _unique(clicks), False
        p = self.product
        if self.page == "item":
            text = [*self.header(), "Back to Search", "< Prev"]
            values = []
            for name, opts in p.options.items():
                text += [name, *opts]
                values += opts
            text += [p.title, f"Price: {p.price_tag}", "Rating: N.A.", "Description", "Features", "Reviews", "Buy Now"]
            clicks = ["back to search", "< prev", *values, "description", "features", "reviews", "buy now"]
            return SEP.join(_clean(text)), _unique(clicks), False
        content = {"description": [p.description], "features": p.bullets, "reviews": []}[self.sub]
        return SEP.join(_clean([*self.header(), "Back to Search", "< Prev", *content])), ["back to search", "< prev"], \
            False

    def act(self, name: str, arg: str) -> tuple[bool, dict[str, Any]]:
        """Applies one action; returns (bought, info). An unavailable action changes nothing."""
        if name == "search":
            self.results = self.search.search(arg.split(" "))
            self.page, self.page_no, self.product, self.selected = "results", 1, None, {}
            return False, {}
        _, clicks, _ = self.view()
        if name != "click" or arg not in clicks or arg == "search":
            return False, {"invalid": f"{name}[{arg}] is not available here"}
        if arg == "back to search":
            self.page, self.results, self.page_no, self.product, self.selected = "search", [], 1, None, {}
        elif self.page == "results":
            if arg == "next >":
                self.page_no += 1
            elif arg == "< prev":
                self.page_no -= 1
            else:
                self.product, self.selected, self.page = self.catalog.by_lower[arg], {}, "item"
        elif self.page == "item":
            if arg == "< prev":
                self.page, self.selected = "results", {}
            elif arg in ("description", "features", "reviews"):
                self.page, self.sub = "item_sub", arg
            elif arg == "buy now":
                return True, {}
            else:
                for option, values in self.product.options.items():
                    if arg in values:
                        self.selected[option] = arg
        elif self.page == "item_sub":  # only "< prev" is left
            self.page = "item"
        return False, {}


def _clean(parts: list[str]) -> list[str]:
    return [p.strip() for p in parts if p and p.strip()]


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


class WebShopEnv(Environment):
    name = "webshop"

    def __init__(self, max_rounds: int = 10, prompt_file: str | None = None, spacy_model: str = "en_core_web_lg",
                 search_seed: int = 0, observation_format: str = "agentbench"):
        if observation_format not in OBSERVATION_FORMATS:
            raise ValueError(f"webshop observation_format {observation_format!r}: use one of {OBSERVATION_FORMATS}")
        self.max_rounds, self.spacy_model, self.search_seed = max_rounds, spacy_model, search_seed
        self.observation_format = observation_format
        self.scaffold = load_scaffold(prompt_file) if prompt_file else default_scaffold()
        self.session: Session | None = None
        self._search: dict[int, ProductSearch] = {}

    def reset(self, task: Task) -> list[Message]:
        d = task.data
        catalog = load_catalog(d["data_dir"], d.get("products", ""), d.get("attributes", ""))
        goal = catalog.goals[int(d["goal_index"])]
        if goal.instruction != d["goal"]["instruction"]:
            raise ValueError(f"{task.id}: goal {d['goal_index']} of {d['data_dir']} is not the task's goal (the data "
                             "files changed since the tasks were made)")
        if id(catalog) not in self._search:
            self._search = {id(catalog): ProductSearch(catalog, self.search_seed)}
        self.session = Session(goal, catalog, self._search[id(catalog)])
        return self.scaffold.build(self._observe())

    def _observe(self) -> str:
        text, clicks, bar = self.session.view()
        if self.observation_format == "page":
            return text
        return f"Observation:\n{text}\n\nAvailable Actions:\n{ {'has_search_bar': bar, 'clickables': clicks} !r}"

    def step(self, action: str) -> StepResult:
        found = parse_reply(action)
        if found is None:
            return StepResult("", 0.0, True, {"format_fail": True}, invalid=True)
        parts = split_action(found)
        if parts is None:
            return StepResult(self.scaffold.observe(self._observe()), invalid=True)
        bought, info = self.session.act(*parts)
        if bought:
            s = self.session
            r = purchase_reward(s.goal, s.product, list(s.selected.values()), self.spacy_model)
            return StepResult("", r.reward, True, {"asin": s.product.asin, "selected": dict(s.selected),
                                                   "r_type": r.r_type, "n_att": r.n_att, "n_opt": r.n_opt,
                                                   "r_price": r.r_price, **r.details})
        return StepResult(self.scaffold.observe(self._observe()), info=info, invalid=bool(info))

    def parse_ok(self, action: str) -> bool:
        found = parse_reply(action)
        return found is not None and split_action(found) is not None


class GoalProductOracle:
    """Buys the goal's own product with the annotation's options: searches the goal text (then the product's
    title if the product is not in the first five result pages), opens the product, clicks each option value,
    buys. It reads only the page text it is shown (either observation format) and the task's goal."""

    def act(self, conversation: list[Message], task: Task) -> str:
        goal = task.data["goal"]
        page = _page_text(conversation[-1]["value"])
        segments = page.split(SEP)
        mine = [m["value"] for m in conversation if m["from"] == "gpt" and m.get("loss")]
        if segments[0] == "WebShop":  # the search page
            searches = sum("search[" in m for m in mine)
            query = goal["instruction"].split(", and price lower than")[0] if searches == 0 else goal["name"]
            return _reply("I should search for the product first.", f"search[{_keywords(query)}]")
        if goal["asin"] in segments:
            return _reply("this product matches the goal.", f"click[{goal['asin'].lower()}]")
        if segments[-1] == "Buy Now":  # the item page
            wanted = [o.split(":", 1)[1].strip().replace("/", " | ").lower() for o in goal["options"] if ":" in o]
            clicked = {m.split("click[", 1)[1].split("]")[0] for m in mine if "click[" in m}
            for value in wanted:
                if value in segments and value not in clicked:
                    return _reply(f"I should choose the option {value}.", f"click[{value}]")
            return _reply("everything matches the goal, so I buy it.", "click[buy now]")
        m = re.search(r"Page (\d+) \(Total results: (\d+)\)", page)
        if m and int(m.group(1)) < 5 and int(m.group(1)) * RESULTS_PER_PAGE < int(m.group(2)):
            return _reply("the product is not on this page; I look at the next one.", "click[next >]")
        return _reply("I should search again with other words.", "click[back to search]")


def _page_text(observation: str) -> str:
    """The page text of an observation in either format."""
    text = observation.removeprefix("Observation:\n")
    return text.split("\n\nAvailable Actions:\n", 1)[0].strip()


def _keywords(text: str) -> str:
    return re.sub(r"[\[\]]", " ", text).strip()


def _reply(thought: str, action: str) -> str:
    return f"Thought:\nI think {thought}\n\nAction:\n{action}"


def aggregate(episodes: Sequence[Episode], tasks: Sequence[Task]) -> dict[str, Any]:
    """AgentBench's WebShop score: the mean purchase reward x 100, with its format-failure rate and mean rounds."""
    scored = scored_episodes(episodes)
    n = len(scored) or 1
    fails = sum(bool(e.info.get("format_fail")) for e in scored)
    return {**mean_reward(episodes, tasks), "format_fail_rate": fails / n,
            "average_round": sum(e.rounds for e in scored) / n}
