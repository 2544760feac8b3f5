"""Job-events discovery service."""
