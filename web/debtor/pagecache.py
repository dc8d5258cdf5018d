"""The pages this process keeps between views, one per token, each valid for one stamp of
the live state (kindly.site.microsite); the Flask route and the fast lane share them."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from web.debtor.hits import Tracked


@dataclass(frozen=True)
class Page:
    """A debtor's page as this process keeps it between views, valid for one stamp."""

    stamp: tuple
    who: Tracked
    head: str  # the page up to the live notices
    tail: str | None  # the rest; None when the page has no place for notices
    texts: dict[str, str]
    locale: str  # Babel's spelling, de_DE
    currency: str
    amount_due_minor: int
    loaded: float


PAGE_SECONDS = 300.0
"""A safety net only: a page is rebuilt as soon as its stamp changes."""
PAGE_CACHE_SIZE = 2_000


class PageCache:
    """Token -> Page, bounded; a page whose stamp differs from the live one is not returned."""

    def __init__(self) -> None:
        self._pages: dict[str, Page] = {}
        self._lock = threading.Lock()

    def peek(self, token: str) -> Page | None:
        """The kept page whatever its stamp or age (while the database can't say)."""
        return self._pages.get(token)

    def get(self, token: str, stamp: tuple) -> Page | None:
        """The kept page if it was built for this stamp and is not too old."""
        page = self._pages.get(token)
        if page is None or page.stamp != stamp or time.monotonic() - page.loaded > PAGE_SECONDS:
            return None
        return page

    def put(self, token: str, page: Page) -> None:
        """Keep a page (all are dropped when the cache is full: simple and bounded)."""
        with self._lock:
            if len(self._pages) >= PAGE_CACHE_SIZE:
                self._pages.clear()
            self._pages[token] = page
