"""Free-text search (`q`): French stems matched against each event's words, through SQLite's
FTS5 table or PostgreSQL's stored tsvector (migration 0002), both kept by the database."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Hashable
from typing import Any

import snowballstemmer
from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    bindparam,
    column,
    false,
    func,
    literal,
    literal_column,
    select,
    table,
)
from sqlalchemy.orm import Session

from events_app.models import Event, search_words

# A Snowball stemmer keeps its word in itself: one thread at a time (searches run in a pool).
_stemmer = snowballstemmer.stemmer("french")
_stemmer_lock = threading.Lock()
_EVENTS_FTS = table("events_fts", column("rowid"))
_SIMPLE: ColumnElement[Any] = literal_column("'simple'::regconfig")
_SEARCH_VECTOR: ColumnElement[Any] = literal_column("events.search_vector")
# SQLite has no statistics on full-text matches, so the search weighs the two plans itself.
# Driven by the full-text index, a search reads every match (about 5 µs each: its row, then a
# sort by date); driven by the dates, it tests each event's words as they come, read from the
# index ix_events_fulltext_dates (migration 0011) without touching the table (under 1 µs
# each), and stops at the page's 20 matches, after about 20 × events ÷ matches rows. The first
# costs less below about 2 × √events matches: a rare word is found through the index, a common
# one through the dates, and neither grows with the size of the table as much as its matches.
FTS_MIN_DRIVE = 200
# The plan the last search for the same words took (SQLite), kept PLAN_SECONDS in each worker:
# how common a word is changes slowly, and counting its matches again cost about as much as
# the search itself at a million events. Either plan finds the same events; only time differs.
PLAN_SECONDS = 60.0
PLANS_KEPT = 4096
_PLANS: dict[tuple[str, str], tuple[float, bool]] = {}


def text_terms(q: str) -> list[str]:
    """The stems a text search asks for: each word of q, folded, cut to its French stem.

    An event matches when each stem begins one of the words of its title, venue or city
    (events.search_key), so that « recrutement » (stem « recrut ») finds « recruteurs »
    and « salons » finds « salon ». SQLite's FTS5 and PostgreSQL's GIN full-text index answer
    it, and both give the same events (tests/test_search_text.py).
    """
    with _stemmer_lock:
        return sorted({_stemmer.stemWord(word) for word in search_words(q)})


def text_filter(db: Session, terms: list[str]) -> tuple[Hashable, dict[str, Any]]:
    """How a search's text condition is asked (its part of the statements' shape, see
    text_clause) and the values of its parameters."""
    if not terms:
        # Punctuation only: no word can match.
        return ("q", "none"), {}
    connection = db.connection()
    if connection.dialect.name == "postgresql":
        # events.search_vector: the stored tsvector of search_key (migration 0002). The
        # planner weighs its GIN index against the date order itself (its statistics know how
        # common each word is).
        return ("q", "tsquery"), {"q_tsquery": " & ".join(f"{term}:*" for term in terms)}
    fts_query = " ".join(f'"{term}"*' for term in terms)
    remembered = (connection.engine.url.database or "", fts_query)
    now = time.monotonic()
    known = _PLANS.get(remembered)
    if known is not None and now - known[0] < PLAN_SECONDS:
        by_index = known[1]
    else:
        events = connection.scalar(select(func.max(Event.id))) or 0
        threshold = max(FTS_MIN_DRIVE, int(2 * math.sqrt(events)))
        first = _fts_matches().limit(threshold).subquery()
        found = connection.scalar(select(func.count()).select_from(first), {"q_fts": fts_query})
        by_index = found is not None and found < threshold
        if len(_PLANS) >= PLANS_KEPT:
            _PLANS.clear()
        _PLANS[remembered] = (now, by_index)
    if by_index:
        return ("q", "fts"), {"q_fts": fts_query}
    # A common word: the same test on the words themselves (search_key holds them separated
    # by single spaces), which SQLite can apply while it walks the dates.
    return ("q", "like", len(terms)), {f"q_like_{n}": f"% {term}%" for n, term in enumerate(terms)}


def text_clause(part: Hashable) -> ColumnElement[bool]:
    """The condition of a text_filter part, its values left as named parameters."""
    match part:
        case ("q", "tsquery"):
            # Written into the statement when it runs: prepared with a parameter, PostgreSQL
            # ends up planning for any word at all (a generic plan) and reads every match of
            # a common word through the full-text index, where the dates would stop at 20.
            words = bindparam("q_tsquery", type_=String(), literal_execute=True)
            return _SEARCH_VECTOR.op("@@")(func.to_tsquery(_SIMPLE, words))
        case ("q", "fts"):
            return Event.id.in_(_fts_matches())
        case ("q", "like", int(count)):
            spaced = literal(" ") + Event.search_key
            return and_(*(spaced.like(bindparam(f"q_like_{n}")) for n in range(count)))
    return false()


def _fts_matches() -> Select[Any]:
    return select(_EVENTS_FTS.c.rowid).where(
        literal_column("events_fts").op("MATCH")(bindparam("q_fts"))
    )
