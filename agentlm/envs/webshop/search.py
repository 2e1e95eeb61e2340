"""Product search: BM25 over WebShop's search documents with bm25s (in place of WebShop's Lucene/Pyserini index;
same scoring family, Lucene's BM25 variant with Pyserini's default k1 = 0.9, b = 0.4, English stop words, no
stemming), plus WebShop's special queries "<r>" (50 random products), "<c> category" and "<q> scrape query"."""
from __future__ import annotations

import random
import threading

from agentlm.envs.webshop.catalog import Catalog

TOP_K = 50


class ProductSearch:
    def __init__(self, catalog: Catalog, seed: int = 0):
        import bm25s

        self.catalog, self.asins = catalog, list(catalog.products)
        self.rng = random.Random(seed)
        self._bm25s = bm25s
        docs = [catalog.products[a].search_text() for a in self.asins]
        self.index = bm25s.BM25(k1=0.9, b=0.4, method="lucene")
        self.index.index(bm25s.tokenize(docs, stopwords="en", show_progress=False), show_progress=False)
        self.vocab = self.index.vocab_dict
        self.lock = threading.Lock()  # retrieval is not documented as thread-safe

    def search(self, keywords: list[str]) -> list[str]:
        """ASINs for the keywords, best first."""
        if not keywords:
            return []
        head = keywords[0]
        if head == "<r>":
            return self.rng.sample(self.asins, min(TOP_K, len(self.asins)))
        if head == "<c>" and len(keywords) > 1:
            return [a for a in self.asins if self.catalog.products[a].category == keywords[1]]
        if head == "<q>" and len(keywords) > 1:
            query = " ".join(keywords[1:])
            return [a for a in self.asins if self.catalog.products[a].query == query]
        if head == "<a>":
            raise ValueError("the '<a>' attribute search needs an attribute index, which the text environment "
                             "does not have (as in WebShop)")
        tokens = self._bm25s.tokenize([" ".join(keywords)], stopwords="en", return_ids=False,
                                      show_progress=False)[0]
        tokens = [t for t in tokens if t in self.vocab]
        if not tokens:
            return []
        with self.lock:
            docs, scores = self.index.retrieve([tokens], k=min(TOP_K, len(self.asins)), show_progress=False)
        return [self.asins[int(i)] for i, s in zip(docs[0], scores[0]) if s > 0]
