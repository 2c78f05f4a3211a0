"""Forecast Studio's computing core: every stage from CSV to board, with no UI code."""
