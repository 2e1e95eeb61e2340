"""A small WebShop catalogue in the official file schema (items_shuffle_1000.json, items_ins_v2_1000.json,
items_human_ins.json), made here: products with and without options and prices (fixed, range, none, over 980),
records WebShop skips (asin "nan", too long, repeated), distractors for search, and human goals (one without
instruction attributes, which makes no goal). Used by the WebShop tests and the pipeline test."""
import json
import pathlib

CAT = "\u203a"


def _product(asin, name, query, category, path, pricing="", options="", description="", bullets=()):
    return {"name": name, "product_information": {"ASIN": asin}, "brand": "Brand: Test", "brand_url": "",
            "full_description": description, "pricing": pricing, "list_price": "", "availability_status": "In Stock.",
            "images": [f"https://example.invalid/{asin}.jpg"], "product_category": f" {CAT} ".join(path),
            "average_rating": "", "small_description": list(bullets), "total_reviews": "",
            "total_answered_questions": "", "customization_options": options, "seller_id": "", "seller_name": "",
            "fulfilled_by_amazon": "", "fast_track_message": "", "aplus_present": "", "asin": asin,
            "category": category, "query": query, "page": 1, "small_description_old": ""}


def _opts(**names):
    return {name.replace("_", " ").title(): [{"value": v, "image": None} for v in values]
            for name, values in names.items()}


HOME = ["Home & Kitchen", "Bath", "Towels", "Bath Towels"]
PRODUCTS = [
    _product("B0TOWEL001", "Cotton Bath Towel Set, Hotel Quality", "bath towels", "garden", HOME, "$24.99",
             _opts(color=["Navy", "White", "Dark Gray Heather"], size=["6 Piece", "3 Piece"]),
             "Soft cotton towels for the bathroom.", ["Machine washable, quick drying", "100% cotton"]),
    _product("B0CANDLE01", "Pure Beeswax Candles Unscented 12 Pack", "Candles ", "garden",
             ["Home & Kitchen", "Home Decor", "Candles"], "$18.00 - $30.00", _opts(size=["6 Pack", "12 Pack"]),
             "Hand poured beeswax candles.", ["Long lasting clean burn"]),
    _product("B0HEADPH01", "Wireless Bluetooth Headphones Over Ear", "headphones", "electronics",
             ["Electronics", "Headphones", "Over-Ear Headphones"], "$59.99",
             _opts(color=["Black", "Blue/Green"]), "Over ear headphones with 40 hour battery.",
             ["Active noise cancelling", "Bluetooth 5.0"]),
    _product("B0SHOES001", "Men's Running Shoes Lightweight Breathable Sneakers", "running shoes", "fashion",
             ["Clothing, Shoes & Jewelry", "Men", "Shoes", "Athletic"], "",
             _opts(size=["9", "10", "11"], color=["Grey", "Black"]), "", ["Rubber sole", "Breathable mesh upper"]),
    _product("B0GREENTEA", "Organic Green Tea Bags, 100 Count", "green tea", "grocery",
             ["Grocery & Gourmet Food", "Beverages", "Tea", "Green"], "$12.50", "", "Organic sencha green tea.",
             ["USDA organic", "Caffeinated"]),
    _product("B0CONSOLE1", "Reclaimed Wood Console Table", "console tables", "garden",
             ["Home & Kitchen", "Furniture", "Tables"], "$995.00", "", "Solid reclaimed fir wood.", ["Solid wood"]),
    # distractors
    _product("B0HANDTWL1", "Cotton Hand Towels 4 Pack", "hand towels", "garden", HOME, "$14.00",
             _opts(color=["White", "Grey"]), "Small cotton hand towels.", ["Soft"]),
    _product("B0SOYCNDL1", "Scented Soy Candles Gift Set", "candles", "garden",
             ["Home & Kitchen", "Home Decor", "Candles"], "$21.00", "", "Lavender scented soy wax.", ["Gift box"]),
    _product("B0EARBUD01", "Wired Earbuds with Microphone", "earbuds", "electronics",
             ["Electronics", "Headphones", "Earbud Headphones"], "$9.99", "", "In ear wired earbuds.", ["3.5mm jack"]),
    # records WebShop skips
    _product("nan", "No ASIN", "x", "garden", HOME, "$1.00"),
    _product("B0TOOLONGASIN", "Long ASIN", "x", "garden", HOME, "$1.00"),
    _product("B0TOWEL001", "Repeated ASIN", "x", "garden", HOME, "$1.00"),
]
ATTRIBUTES = {
    "B0TOWEL001": {"attributes": ["machine washable", "quick drying"]},
    "B0CANDLE01": {"attributes": ["long lasting"]},
    "B0HEADPH01": {"attributes": ["noise cancelling", "wireless bluetooth"]},
    "B0GREENTEA": {"attributes": ["usda organic"]},
}


def _goal(asin, instruction, attributes, options, instruction_attributes, instruction_options):
    return {"asin": asin, "instruction": instruction, "attributes": attributes, "options": options,
            "instruction_attributes": instruction_attributes, "instruction_options": instruction_options,
            "assignment_id": "A", "worker_id": "W"}


GOALS = {
    "B0TOWEL001": [_goal("B0TOWEL001", "i need a machine washable bath towel set in navy, 6 piece.",
                         ["machine washable", "quick drying"], ["color: navy", "size: 6 piece"], ["machine washable"],
                         ["navy", "6 piece"]),
                   _goal("B0TOWEL001", "quick drying towels", ["quick drying"], [""], [], [])],  # no goal
    "B0CANDLE01": [_goal("B0CANDLE01", "i want long lasting beeswax candles, a 12 pack.", ["long lasting"],
                         ["size: 12 pack"], ["long lasting"], ["12 pack"])],
    "B0HEADPH01": [_goal("B0HEADPH01", "i'm looking for blue wireless bluetooth headphones.",
                         ["noise cancelling", "wireless bluetooth"], ["color: blue/green"], ["wireless bluetooth"],
                         ["blue"])],
    "B0SHOES001": [_goal("B0SHOES001", "i need breathable men's running shoes in size 10, grey.",
                         ["breathable"], ["size: 10", "color: grey"], ["breathable"], ["10", "grey"])],
    "B0GREENTEA": [_goal("B0GREENTEA", "organic green tea bags.", ["usda organic"], [""], ["usda organic"], [])],
    "B0CONSOLE1": [_goal("B0CONSOLE1", "a solid wood console table.", ["solid wood"], [""], ["solid wood"], [])],
}


def write_catalog(directory) -> pathlib.Path:
    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / "items_shuffle_1000.json").write_text(json.dumps(PRODUCTS))
    (d / "items_ins_v2_1000.json").write_text(json.dumps(ATTRIBUTES))
    (d / "items_human_ins.json").write_text(json.dumps(GOALS))
    return d
