"""Feed importers: one pure parser per format, fetch.py for I/O, sync.py for the database."""
