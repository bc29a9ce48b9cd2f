"""Verifiers: PRM/ORM training data, value loss, and step scoring (MC-rollout labels live here too)."""
