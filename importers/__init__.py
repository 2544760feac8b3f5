"""Feed importers: one pure parser per format, fetch.py for I/O, sync.py for the database."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from importers import csv, ftjson, ics, jsonld
from importers.base import ImportedEvent, Notice, RowError, Unchanged

Parser = Callable[[bytes], Iterator[ImportedEvent | RowError | Unchanged | Notice]]

# Keyed by the feed formats of events_app.vocab.FEED_FORMATS.
PARSERS: dict[str, Parser] = {
    "ft-json": ftjson.parse,
    "ics": ics.parse,
    "csv": csv.parse,
    # The API's pages are put together into one ft-json document (see importers.ftapi).
    "ft-api": ftjson.parse,
    "jsonld": jsonld.parse,
}
