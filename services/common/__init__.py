"""Plumbing shared by every service: settings, the bus seam and its adapters, the database, logging."""
