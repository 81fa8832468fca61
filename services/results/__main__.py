"""``python -m services.results``: run the results writer from SEYMOUR_* settings."""

from services.cli import serve_main

serve_main("results")
