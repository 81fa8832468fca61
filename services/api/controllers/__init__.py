"""JSON controllers under ``/api/v1``."""
