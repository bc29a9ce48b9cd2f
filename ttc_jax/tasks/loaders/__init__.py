"""Readers of the published benchmark files (one module per format), local files only."""
