"""WebShop: the official files' schema (the project's catalogue and the published samples), goals and prices, the
pages and actions, WebShop's reward on crafted (goal, purchase) pairs computed by hand, and the oracle buying every
goal product with reward 1."""
import json
import shutil

import pytest

pytest.importorskip("bm25s")
pytest.importorskip("thefuzz")

from agentlm.envs import loop, registry  # noqa: E402
from agentlm.envs.base import Outcome  # noqa: E402
from agentlm.envs.webshop.catalog import Goal, Product, load_catalog, parse_pricing, price_ceiling  # noqa: E402
from agentlm.envs.webshop.env import (GoalProductOracle, WebShopEnv, aggregate, load_tasks, parse_reply,  # noqa: E402
                                      split_action)
from agentlm.envs.webshop.reward import normalize_color, purchase_reward, title_nouns  # noqa: E402
from tests.envs.webshop_catalog import write_catalog  # noqa: E402

HOME = "Home & Kitchen \u203a Bath \u203a Towels \u203a Bath Towels"


@pytest.fixture
def catalog_dir(tmp_path):
    return write_catalog(tmp_path / "webshop")


def test_catalogue_follows_the_official_schema(catalog_dir):
    c = load_catalog(str(catalog_dir))
    assert list(c.products) == ["B0TOWEL001", "B0CANDLE01", "B0HEADPH01", "B0SHOES001", "B0GREENTEA", "B0CONSOLE1",
                                "B0HANDTWL1", "B0SOYCNDL1", "B0EARBUD01"]  # nan, too long and repeated skipped
    towel, candle, phones, shoes = (c.products[a] for a in ("B0TOWEL001", "B0CANDLE01", "B0HEADPH01", "B0SHOES001"))
    assert towel.options == {"color": ["navy", "white", "dark gray heather"], "size": ["6 piece", "3 piece"]}
    assert phones.options["color"] == ["black", "blue | green"]
    assert candle.price_tag == "$18.0 to $30.0" and 18.0 <= candle.price <= 30.0 and candle.query == "candles"
    assert shoes.price_tag == "$100.0" and shoes.price == 100.0 and shoes.attributes == ["DUMMY_ATTR"]
    assert parse_pricing("$1,299.00 - $1,499.99") == [1299.0, 1499.99]
    # six annotations make goals (one has no instruction attributes), shuffled with seed 233
    assert len(c.goals) == 6 and len({g.asin for g in c.goals}) == 6
    console = next(g for g in c.goals if g.asin == "B0CONSOLE1")
    assert console.price_upper == 1_000_000.0 and "price lower" not in console.instruction  # price over 980
    towel_goal = next(g for g in c.goals if g.asin == "B0TOWEL001")
    assert towel_goal.instruction.startswith("i need a machine washable bath towel set in navy, 6 piece, and price")
    assert towel_goal.price_upper in (40.0, 50.0, 60.0)  # the larger of two of 30, 40, 50, 60
    assert load_catalog(str(catalog_dir)).goals == c.goals  # seeded: the same goals every time


def test_price_ceiling_rule():
    import random
    rng = random.Random(0)
    assert all(price_ceiling(24.99, rng) in (40.0, 50.0, 60.0) for _ in range(20))
    assert price_ceiling(975.0, rng) == 990.0 and price_ceiling(985.0, rng) is None


def test_published_samples_load(shared, tmp_path):
    """The samples keep the official files' exact bytes: 4 products; none of the 31 sample goal ASINs is among
    them, so no goal is built (the error says so)."""
    src = shared("data", "webshop")
    shutil.copy(src / "sample_items_shuffle_1000.json", tmp_path / "items_shuffle_1000.json")
    shutil.copy(src / "sample_items_human_ins.json", tmp_path / "items_human_ins.json")
    c = load_catalog(str(tmp_path))
    assert len(c.products) == 4 and c.products["B09DG92LJL"].options == {}  # {"Color": null} gives no option
    assert c.products["B08R3XSC65"].price_tag == "$100.0"
    assert all(p.attributes == ["DUMMY_ATTR"] for p in c.products.values())  # no items_ins_v2 file
    assert len(json.loads((tmp_path / "items_human_ins.json").read_text())) == 31 and c.goals == []
    with pytest.raises(ValueError, match="no goals"):
        load_tasks(str(tmp_path), "std")


def test_pages_actions_and_format(catalog_dir):
    task = next(t for t in load_tasks(f"{catalog_dir}::0:", "std") if t.data["goal"]["asin"] == "B0TOWEL001")
    env = WebShopEnv()
    prefix = env.reset(task)
    assert prefix[-1]["value"].startswith("Observation:\nWebShop [SEP] Instruction: [SEP] i need a machine washable")
    assert prefix[-1]["value"].endswith("Available Actions:\n{'has_search_bar': True, 'clickables': ['search']}")
    assert parse_reply("Action: search[x]") is None  # same line: not an action, as in AgentBench
    assert parse_reply("Thought:\nok\n\nAction:\n  click[a [b]] tail") == "click[a [b]"
    assert split_action("search[foo [bar]") == ("search[foo ", "bar")  # the name is not "search": a no-op
    r = env.step("Thought:\nI think so.\n\nAction:\nsearch[cotton towel]")
    assert "Page 1 (Total results: " in r.observation and "'next >'" in r.observation
    results = r.observation
    assert results.index("B0TOWEL001") < results.index("B0HANDTWL1") or "B0HANDTWL1" not in results
    r = env.step("Action:\nclick[b0nothere]")
    assert r.invalid and not r.done and r.observation == results  # unavailable: nothing changes
    r = env.step("Action:\nclick[b0towel001]")
    assert "[SEP] color [SEP] navy [SEP] white [SEP] dark gray heather [SEP] size [SEP] 6 piece" in r.observation
    assert "Price: $24.99 [SEP] Rating: N.A. [SEP] Description [SEP] Features [SEP] Reviews [SEP] Buy Now" \
        in r.observation
    r = env.step("Action:\nclick[features]")
    assert r.observation.split("\n")[1].endswith("< Prev [SEP] Machine washable, quick drying [SEP] 100% cotton")
    env.step("Action:\nclick[< prev]")
    env.step("Action:\nclick[white]")
    r = env.step("Action:\nclick[buy now]")
    # attribute matched, option navy missed (white), 6 piece missed, price ok: (1 + 0 + 1) / 4
    assert r.done and r.reward == pytest.approx(0.5) and r.info["selected"] == {"color": "white"}
    env.reset(task)
    r = env.step("I will just buy it")
    assert r.done and r.reward == 0 and r.info["format_fail"]


def _goal(**kw):
    base = dict(asin="B0TOWEL001", instruction="towels", attributes=["machine washable", "quick drying"],
                goal_options=["navy", "6 piece"], options=[], price_upper=30.0, query="bath towels", category="garden",
                name="Cotton Bath Towel Set", product_category=HOME)
    return Goal(**{**base, **kw})


def _product(**kw):
    base = dict(asin="B0TOWEL001", title="Cotton Bath Towel Set", description="Soft towels.",
                bullets=["Thick and soft"], category="garden", query="bath towels", product_category=HOME,
                options={}, price_tag="$24.99", price=24.99, attributes=["machine washable", "quick drying"])
    return Product(**{**base, **kw})


LONG_TITLE = "Cotton Hotel Spa Bath Towel Set Luxury Ring Spun Extra Absorbent Plush"  # 12 content words
CRAFTED = [
    # (what it covers, goal, product, selected options, hand-computed reward)
    ("everything matches: (2 + 2 + 1) / 5", _goal(), _product(), ["navy", "6 piece"], 1.0),
    ("one goal option not chosen: (2 + 1 + 1) / 5", _goal(), _product(), ["navy"], 0.8),
    ("over the price ceiling: (2 + 2 + 0) / 5", _goal(), _product(price=35.0), ["navy", "6 piece"], 0.8),
    ("no attribute: (0 + 2 + 1) / 5", _goal(), _product(attributes=["DUMMY_ATTR"]), ["navy", "6 piece"], 0.6),
    ("attributes as substrings of bullets and title, none in the list: (2 + 0 + 1) / 3",
     _goal(attributes=["machine washable", "cotton"], goal_options=[]),
     _product(attributes=["DUMMY_ATTR"], bullets=["Machine washable on cold"]), [], 1.0),
    ("fuzzy attributes: token sets 'washable machine' and 'quick-drying' match: 3 / 3",
     _goal(goal_options=[]), _product(attributes=["washable machine", "quick-drying"]), [], 1.0),
    ("colour normalisation: 'navy blue' becomes 'blue', which does not match 'navy': (2 + 1 + 1) / 5",
     _goal(), _product(), ["navy blue", "6 piece"], 0.8),
    ("colour normalisation helps: 'dark gray heather' and 'dark grey' both become 'dark': (2 + 1 + 1) / 4",
     _goal(goal_options=["dark grey"]), _product(), ["dark gray heather"], 1.0),
    ("type 0.5: other query and category, 1 of 6 title nouns shared; then (1 + 0 + 1) / 2",
     _goal(attributes=["machine washable"], goal_options=[], name="Cotton Bath Towel Set Hotel Spa"),
     _product(title="Cotton Apron", query="aprons", product_category="Kitchen \u203a Aprons"), [], 0.5),
    ("type 1 by the query despite a weak title match", _goal(attributes=["machine washable"], goal_options=[],
                                                            name="Cotton Bath Towel Set Hotel Spa"),
     _product(title="Cotton Apron", product_category="Kitchen \u203a Aprons"), [], 1.0),
    ("type 1 by the category (2 parts shared)", _goal(attributes=["machine washable"], goal_options=[],
                                                     name="Cotton Bath Towel Set Hotel Spa"),
     _product(title="Cotton Apron", query="aprons", product_category="Home & Kitchen \u203a Bath \u203a Aprons"),
     [], 1.0),
    ("type 0.1: title score 1/12 under 0.1", _goal(attributes=["machine washable"], goal_options=[], name=LONG_TITLE),
     _product(title="Cotton Apron", query="aprons", product_category="Kitchen"), [], 0.1),
    ("type 0: no title noun shared", _goal(attributes=["machine washable"], goal_options=[]),
     _product(title="Leather Wallet", query="wallets", product_category="Accessories"), [], 0.0),
    ("goal title without nouns: title score 0.2, no other match -> 0.5", _goal(goal_options=[], name="The Of"),
     _product(query="aprons", product_category="Kitchen"), [], 0.5),
]


@pytest.mark.parametrize("what,goal,product,selected,expected", CRAFTED, ids=[c[0][:40] for c in CRAFTED])
def test_reward_on_crafted_pairs(what, goal, product, selected, expected):
    r = purchase_reward(goal, product, selected, spacy_model="")  # the fallback noun tokens, pinned
    assert r.reward == pytest.approx(expected), (what, r)


def test_reward_parts():
    assert normalize_color("washable") == "ash" and normalize_color("standard") == "tan"
    assert normalize_color("light navy") == "light" and normalize_color("10") == "10"
    assert title_nouns("The Cotton Towel of Spa", "")[0] == ["cotton", "towel", "spa"]
    r = purchase_reward(_goal(), _product(price=35.0), ["navy blue"], spacy_model="")
    assert (r.n_att, r.n_opt, r.r_price, r.r_type) == (2, 0, 0.0, 1.0) and r.reward == pytest.approx(0.4)


def test_oracle_buys_every_goal_with_reward_one(catalog_dir):
    spec = registry.get("webshop")
    tasks = spec.tasks(f"{catalog_dir}::0:")
    episodes = loop.run_tasks(spec.env_factory(spacy_model=""), spec.make_oracle(), tasks, progress=False)
    assert [e.outcome for e in episodes] == [Outcome.SUCCESS] * 6
    summary = aggregate(episodes, tasks)
    assert summary["score"] == 100.0 and summary["format_fail_rate"] == 0 and summary["average_round"] <= 5


def test_splits_follow_agentbench(catalog_dir):
    assert len(load_tasks(str(catalog_dir), "std")) == 6  # std is goals 0-199: all six here
    with pytest.raises(ValueError, match="no goals in range 200:280"):
        load_tasks(str(catalog_dir), "dev")
    assert [t.data["goal_index"] for t in load_tasks(f"{catalog_dir}::2:4", "std")] == [2, 3]
    full = load_tasks(str(catalog_dir / "items_shuffle_1000.json"), "std")
    assert len(full) == 6 and full[0].data["products"] == "items_shuffle_1000.json"


def test_agentinstruct_prompt_and_page_observations(catalog_dir, shared):
    """With AgentInstruct's WebShop prompt and its observation format (the page text alone), the oracle still
    buys every goal product."""
    spec = registry.get("webshop")
    prompt = f"{shared('data', 'agentinstruct', 'webshop.parquet')}::0"
    factory = spec.env_factory(prompt_file=prompt, observation_format="page", spacy_model="")
    tasks = spec.tasks(f"{catalog_dir}::0:")
    episodes = loop.run_tasks(factory, spec.make_oracle(), tasks, progress=False)
    assert [e.reward for e in episodes] == [1.0] * 6
    first = episodes[0].conversation
    assert first[0]["value"].startswith("You are web shopping.") and first[1]["value"] == "Ok."
    assert first[2]["value"].startswith("WebShop [SEP] Instruction: [SEP] ")  # no "Observation:" wrapper
    with pytest.raises(ValueError, match="observation_format"):
        WebShopEnv(observation_format="html")


def test_special_searches_and_ranking(catalog_dir):
    from agentlm.envs.webshop.search import ProductSearch
    search = ProductSearch(load_catalog(str(catalog_dir)))
    assert search.search("wireless bluetooth headphones".split())[0] == "B0HEADPH01"
    assert search.search("beeswax candles".split())[0] == "B0CANDLE01"
    assert set(search.search(["<c>", "electronics"])) == {"B0HEADPH01", "B0EARBUD01"}
    assert search.search(["<q>", "running", "shoes"]) == ["B0SHOES001"]
    assert len(search.search(["<r>"])) == 9 and search.search(["zzzz"]) == []
    with pytest.raises(ValueError, match="attribute index"):
        search.search(["<a>", "x"])
