"""WebShop's purchase reward (REWARD.md section 6 in ../shared/data/webshop; docs/envs/webshop.md):

    R = r_type * (N_att + N_opt + r_price) / (|G_att| + |G_opt| + 1)

attributes match by fuzzy token-set ratio > 85 against the product's attributes or as substrings of its title,
bullet points or description; options match by fuzzy ratio > 85 after colour normalisation; the price must not
exceed the goal's ceiling; r_type scales everything by how well the product's type matches the goal's (query,
category path, title nouns).

Title nouns: WebShop tags titles with spaCy's `en_core_web_lg` (NOUN and PROPN tokens). `title_nouns` uses an
installed spaCy model of that name (option `spacy_model`); when none is installed (models are not on PyPI, and
nothing is downloaded at run time) it falls back to every word token of the title except a stop list, which
gives the same r_type whenever the titles share their nouns or nothing at all, and can differ in between; the
episode info says which was used.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.util
import re
from typing import Callable

from thefuzz import fuzz

from agentlm.envs.webshop.catalog import Goal, Product

COLORS = tuple("""alabaster apricot aqua ash asphalt azure banana beige black blue blush bordeaux bronze brown burgundy
camel camo caramel champagne charcoal cheetah chestnut chocolate christmas coffee cognac copper coral cranberry cream
crystal dark denim eggplant elephant espresso fuchsia gold granite grape graphite grass gray green grey heather indigo
ivory ivy khaki lavender lemon leopard light lilac lime magenta maroon mauve merlot midnight mint mocha multicolor
mushroom mustard natural navy nude olive orange peach pewter pink plum purple rainbow red rose royal rust sand sapphire
seashell silver skull slate steel stone stonewash sunflower tan taupe teal tiger turquoise violet walnut wheat white
wine yellow""".split())
assert len(COLORS) == 102
FUZZY_THRESHOLD = 85
STOPWORDS = frozenset("a an and or the of for with in on to by from at as is are be this that these those it its "
                      "x".split())


def normalize_color(text: str) -> str:
    """The first colour word (in vocabulary order) that occurs in `text` as a plain substring, else `text`."""
    for color in COLORS:
        if color in text:
            return color
    return text


def matched_attributes(goal: Goal, product: Product) -> int:
    texts = (product.title.lower(), " ".join(product.bullets).lower(), product.description.lower())
    n = 0
    for g in goal.attributes:
        if any(fuzz.token_set_ratio(a, g) > FUZZY_THRESHOLD for a in product.attributes) or \
                any(g in t for t in texts):
            n += 1
    return n


def matched_options(goal: Goal, selected: list[str]) -> int:
    chosen = [normalize_color(s) for s in selected]
    return sum(any(fuzz.token_set_ratio(s, normalize_color(o)) > FUZZY_THRESHOLD for s in chosen)
               for o in goal.goal_options)


@functools.lru_cache(maxsize=2)
def _spacy(model: str):
    import spacy
    return spacy.load(model, disable=["ner", "parser", "lemmatizer"])


def spacy_available(model: str) -> bool:
    """Whether spaCy and the model package are installed (checked without importing spaCy, which is slow)."""
    return all(importlib.util.find_spec(m) is not None for m in ("spacy", model))


def title_nouns(title: str, model: str = "en_core_web_lg") -> tuple[list[str], str]:
    """(the title's noun tokens, lowercased, duplicates kept; "spacy:<model>" or "fallback")."""
    if model and spacy_available(model):
        return [t.text.lower() for t in _spacy(model)(title) if t.pos_ in ("NOUN", "PROPN")], f"spacy:{model}"
    words = re.findall(r"[a-z][a-z'-]*", title.lower())
    return [w for w in words if w not in STOPWORDS and len(w) > 1], "fallback"


def type_factor(goal: Goal, product: Product, nouns: Callable[[str], tuple[list[str], str]]) -> tuple[float, dict]:
    query_match = product.query == goal.query.lower().strip()
    parts = lambda s: {x.strip() for x in s.split("›")}  # noqa: E731
    category_match = len(parts(product.product_category) & parts(goal.product_category)) >= 2
    got, how = nouns(product.title)
    want, _ = nouns(goal.name)
    title_score = len(set(got) & set(want)) / len(want) if want else 0.2
    r = 1.0
    if not (query_match or category_match or title_score > 0.2):
        r = 0.5
    if title_score < 0.1:
        r = 0.1
    if title_score == 0:
        r = 0.0
    return r, {"query_match": query_match, "category_match": category_match, "title_score": title_score,
               "nouns": how}


@dataclasses.dataclass
class Reward:
    reward: float
    r_type: float
    n_att: int
    n_opt: int
    r_price: float
    details: dict


def purchase_reward(goal: Goal, product: Product, selected: list[str], spacy_model: str = "en_core_web_lg") -> Reward:
    """The score of buying `product` with the option values `selected` for `goal`."""
    n_att = matched_attributes(goal, product)
    n_opt = matched_options(goal, selected)
    r_price = 1.0 if product.price <= goal.price_upper else 0.0
    r_type, details = type_factor(goal, product, lambda t: title_nouns(t, spacy_model))
    total = len(goal.attributes) + len(goal.goal_options) + 1
    return Reward(r_type * (n_att + n_opt + r_price) / total, r_type, n_att, n_opt, r_price, details)
