"""Search against a verifier and answer aggregation."""
