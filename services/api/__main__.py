"""``python -m services.api``: serve the api and UI from SEYMOUR_* settings."""

from services.cli import serve_main

serve_main("api")
