"""WebShop's official data files, read as WebShop's engine reads them (specification: docs/envs/webshop.md).

- products (`items_shuffle_1000.json`, or the full `items_shuffle.json`): a JSON list of scraped Amazon products;
  a product whose `asin` is "nan", longer than 10 characters or repeated is skipped;
- attributes (`items_ins_v2_1000.json` / `items_ins_v2.json`, optional): {asin: {"attributes": [...]}}; a
  product without an entry gets the placeholder attribute "DUMMY_ATTR";
- human goals (`items_human_ins.json`): {asin: [annotation, ...]}; an annotation with no
  `instruction_attributes` makes no goal.

Goals are built in product-file order, then annotation order, and shuffled as WebShop does (Python's random
with seed 233), so goal i here is goal i there. The two draws WebShop leaves unseeded (the price of a product
with a price range, and a goal's price ceiling) are drawn here from `random.Random(price_seed)`, so runs repeat.
"""
from __future__ import annotations

import dataclasses
import functools
import pathlib
import random
import re
from typing import Any

from agentlm.jsonl import read_json

PRODUCT_FILES = ("items_shuffle_1000.json", "items_shuffle.json")
ATTRIBUTE_FILES = ("items_ins_v2_1000.json", "items_ins_v2.json")
GOAL_FILE = "items_human_ins.json"
GOAL_SEED = 233
NO_PRICE = 100.0


@dataclasses.dataclass
class Product:
    asin: str
    title: str
    description: str
    bullets: list[str]
    category: str
    query: str
    product_category: str
    options: dict[str, list[str]]  # option name -> values, as WebShop normalises them
    price_tag: str  # "$a" or "$a to $b", as the pages show it
    price: float  # the one price used for scoring
    attributes: list[str]

    def search_text(self) -> str:
        options = ", and ".join(f"{name}: {', '.join(values)}" for name, values in self.options.items())
        return " ".join([self.title, self.description, self.bullets[0] if self.bullets else "", options]).lower()


@dataclasses.dataclass
class Goal:
    asin: str
    instruction: str  # with the price clause
    attributes: list[str]
    goal_options: list[str]
    options: list[str]  # the annotation's full "name: value" choices (what the oracle clicks)
    price_upper: float
    query: str
    category: str
    name: str
    product_category: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _fmt(x: float) -> str:
    return f"${float(x)}"


def parse_pricing(pricing: Any) -> list[float]:
    """The amounts after each "$" (all but digits and "." removed), as WebShop parses them."""
    if not isinstance(pricing, str) or "$" not in pricing:
        return []
    amounts = []
    for part in pricing.split("$")[1:]:
        digits = re.sub(r"[^\d.]", "", part)
        try:
            amounts.append(float(digits))
        except ValueError:
            continue
    return amounts


def _options(raw: Any, where: str) -> dict[str, list[str]]:
    if not raw:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: customization_options must be an object or \"\", got {type(raw).__name__}")
    out = {}
    for name, values in raw.items():
        if values is None:
            continue
        if not isinstance(values, list):
            raise ValueError(f"{where}: customization_options[{name!r}] must be a list or null")
        out[name.lower()] = [str(v["value"]).strip().replace("/", " | ").lower() for v in values
                             if isinstance(v, dict) and "value" in v]
    return out


def _bullets(raw: Any) -> list[str]:
    if isinstance(raw, str):
        return [raw]
    return [str(b) for b in raw] if isinstance(raw, list) else []


def find_file(data_dir: pathlib.Path, name: str, candidates: tuple[str, ...], required: bool) -> pathlib.Path | None:
    """`name` in data_dir if given, else the first of WebShop's usual names present."""
    for n in ([name] if name else list(candidates)):
        if (data_dir / n).is_file():
            return data_dir / n
    if required:
        raise FileNotFoundError(f"WebShop data directory {data_dir}: none of {[name] if name else list(candidates)} "
                                "found (WebShop's official data files are needed; see docs/envs/webshop.md)")
    return None


def load_products(path: pathlib.Path, attributes: dict[str, Any], rng: random.Random) -> list[Product]:
    products, seen = [], set()
    for i, raw in enumerate(read_json(path, list)):
        where = f"{path} product {i}"
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: not an object")
        asin = str(raw.get("asin", "nan"))
        if asin == "nan" or len(asin) > 10 or asin in seen:
            continue
        for field in ("name", "query", "category"):
            if not isinstance(raw.get(field), str):
                raise ValueError(f"{where} ({asin}): field {field!r} must be a string")
        seen.add(asin)
        amounts = parse_pricing(raw.get("pricing", ""))
        if not amounts:
            tag, price = _fmt(NO_PRICE), NO_PRICE
        elif len(amounts) == 1:
            tag, price = _fmt(amounts[0]), amounts[0]
        else:
            tag, price = f"{_fmt(amounts[0])} to {_fmt(amounts[1])}", rng.uniform(amounts[0], amounts[1])
        attrs = (attributes.get(asin) or {}).get("attributes") or ["DUMMY_ATTR"]
        products.append(Product(asin, raw["name"], str(raw.get("full_description") or ""),
                                _bullets(raw.get("small_description")), raw["category"], raw["query"].lower().strip(),
                                str(raw.get("product_category", "")), _options(raw.get("customization_options"), where),
                                tag, price, list(attrs)))
    return products


def price_ceiling(price: float, rng: random.Random) -> float | None:
    """WebShop's goal price ceiling: the larger of two distinct draws from the first four multiples of 10 above
    the price (None when fewer than two exist: no price clause)."""
    candidates = [c for c in range(10, 1000, 10) if c > price][:4]
    if len(candidates) < 2:
        return None
    return float(max(rng.sample(candidates, 2)))


def build_goals(products: list[Product], human: dict[str, Any], rng: random.Random, where: str) -> list[Goal]:
    goals = []
    for p in products:
        for j, ann in enumerate(human.get(p.asin, [])):
            if not isinstance(ann, dict) or not isinstance(ann.get("instruction"), str):
                raise ValueError(f"{where}: goal {p.asin}[{j}] has no instruction")
            if not ann.get("instruction_attributes"):
                continue
            upper = price_ceiling(p.price, rng)
            text = ann["instruction"].strip(".")
            if upper is None:
                upper = 1_000_000.0
            else:
                text = f"{text}, and price lower than {upper:.2f} dollars"
            goals.append(Goal(p.asin, text, list(ann["instruction_attributes"]),
                              list(ann.get("instruction_options") or []),
                              [o for o in ann.get("options") or [] if o], upper, p.query, p.category, p.title,
                              p.product_category))
    random.Random(GOAL_SEED).shuffle(goals)
    return goals


@dataclasses.dataclass
class Catalog:
    products: dict[str, Product]  # by ASIN, in file order
    goals: list[Goal]
    source: str

    by_lower: dict[str, Product] = dataclasses.field(init=False, repr=False)

    def __post_init__(self):
        self.by_lower = {a.lower(): p for a, p in self.products.items()}


@functools.lru_cache(maxsize=4)
def load_catalog(data_dir: str, products: str = "", attributes: str = "", goals: str = "",
                 price_seed: int = 0) -> Catalog:
    """The products, attributes and human goals of an official WebShop data directory (loaded once per process).
    File names default to WebShop's (the first present of each list); attributes "-" = none."""
    d = pathlib.Path(data_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"WebShop data directory {d} does not exist (WebShop's official data files are "
                                "needed; see docs/envs/webshop.md)")
    rng = random.Random(price_seed)
    attr_path = None if attributes == "-" else find_file(d, attributes, ATTRIBUTE_FILES, required=False)
    attrs = read_json(attr_path, dict) if attr_path else {}
    product_path = find_file(d, products, PRODUCT_FILES, required=True)
    items = load_products(product_path, attrs, rng)
    goal_path = find_file(d, goals, (GOAL_FILE,), required=True)
    built = build_goals(items, read_json(goal_path, dict), rng, str(goal_path))
    return Catalog({p.asin: p for p in items}, built, str(d))
