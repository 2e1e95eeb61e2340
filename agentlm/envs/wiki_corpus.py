"""A closed local "Wikipedia" made of HotpotQA context paragraphs, with ReAct's Search and Lookup behaviour.

The paper's HotpotQA agent searches live Wikipedia (ReAct's wiki environment, BOLAA's LangChain docstore). Here
the pages are the context paragraphs of every question in the loaded item files, so the gold pages are always
present: a closed corpus, easier than open Wikipedia (reports say so). Behaviour kept from ReAct:
- search[entity]: when a page's title matches (Wikipedia's title normalisation: underscores are spaces, runs of
  whitespace are one space, the first letter's case does not matter, and a case-insensitive match is taken when
  it is the only one), the page's opening sentences; otherwise "Could not find [entity]. Similar: [...]" with the
  most similar titles, ranked by BM25 (bm25s) over title and text as Wikipedia's own search ranks pages;
- lookup[keyword]: the next sentence of the current page containing the keyword (case-insensitive), as
  "(Result i / n) sentence", then "No more results."; a new keyword starts again from the first hit.
"""
from __future__ import annotations

import dataclasses
import re
import threading
import unicodedata
from typing import Iterable, Sequence

OPENING_SENTENCES = 5  # ReAct's page observation: the first five sentences
SIMILAR_TITLES = 5


def normalize_title(title: str) -> str:
    """Wikipedia's canonical form of a title: NFC, '_' as ' ', single spaces, first letter upper-case."""
    title = " ".join(unicodedata.normalize("NFC", str(title)).replace("_", " ").split())
    return title[:1].upper() + title[1:]


@dataclasses.dataclass(frozen=True)
class Page:
    title: str
    sentences: tuple[str, ...]  # as in HotpotQA: sentences after the first keep their leading space

    @property
    def text(self) -> str:
        return "".join(self.sentences).strip()

    def opening(self, n: int = OPENING_SENTENCES) -> str:
        return "".join(self.sentences[:n]).strip()


class WikiCorpus:
    """Pages keyed by normalised title; a title seen in several questions keeps its longest paragraph."""

    def __init__(self, pages: Iterable[tuple[str, Sequence[str]]]):
        by_title: dict[str, Page] = {}
        for title, sentences in pages:
            key = normalize_title(title)
            page = Page(title, tuple(str(s) for s in sentences))
            if key not in by_title or len(page.sentences) > len(by_title[key].sentences):
                by_title[key] = page
        if not by_title:
            raise ValueError("a wiki corpus needs at least one page")
        self.pages = by_title
        self._keys = list(by_title)
        self._folded: dict[str, list[str]] = {}
        for key in self._keys:
            self._folded.setdefault(key.casefold(), []).append(key)
        self._index = None
        self._index_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.pages)

    def find(self, entity: str) -> Page | None:
        key = normalize_title(entity)
        if key in self.pages:
            return self.pages[key]
        folded = self._folded.get(key.casefold(), [])
        return self.pages[folded[0]] if len(folded) == 1 else None

    def similar(self, query: str, k: int = SIMILAR_TITLES) -> list[str]:
        """Titles of the k pages BM25 ranks highest for the query (none when no query word is in the corpus)."""
        import bm25s

        with self._index_lock:
            if self._index is None:
                docs = [f"{p.title} {p.title} {p.text}" for p in self.pages.values()]
                self._index = bm25s.BM25()
                self._index.index(bm25s.tokenize(docs, stopwords="en", show_progress=False), show_progress=False)
            tokens = bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)
            k = min(k, len(self._keys))
            ids, scores = self._index.retrieve(tokens, k=k, show_progress=False)
        return [self.pages[self._keys[int(i)]].title for i, s in zip(ids[0], scores[0]) if s > 0]


class WikiBrowser:
    """One agent's session over a corpus: the current page and the lookup cursor (ReAct's wiki environment)."""

    def __init__(self, corpus: WikiCorpus):
        self.corpus = corpus
        self.page: Page | None = None
        self._keyword, self._hits, self._cursor = None, [], 0

    def search(self, entity: str) -> str:
        entity = entity.strip()
        page = self.corpus.find(entity)
        if page is None:
            similar = self.corpus.similar(entity)
            return f"Could not find [{entity}]. Similar: {similar}."
        self.page, self._keyword = page, None
        return page.opening()

    def lookup(self, keyword: str) -> str:
        if self.page is None:
            return "No page is open: Search for a page before Lookup."
        keyword = keyword.strip()
        if keyword != self._keyword:
            needle = keyword.lower()
            self._keyword, self._cursor = keyword, 0
            self._hits = [s.strip() for s in self.page.sentences if needle and needle in s.lower()]
        if self._cursor >= len(self._hits):
            return "No more results."
        self._cursor += 1
        return f"(Result {self._cursor} / {len(self._hits)}) {self._hits[self._cursor - 1]}"


_ACTION = re.compile(r"^\s*(?:Action\s*\d*\s*:\s*)?(search|lookup|finish)\s*\[(.*)\]\s*$", re.IGNORECASE)


def parse_wiki_action(reply: str) -> tuple[str, str] | None:
    """(verb, argument) of the last `Search[...]`, `Lookup[...]` or `Finish[...]` line of a reply, or None."""
    for line in reversed(reply.strip().splitlines()):
        m = _ACTION.match(line)
        if m:
            return m.group(1).lower(), m.group(2).strip()
    return None
