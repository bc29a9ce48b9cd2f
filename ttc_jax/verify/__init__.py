"""Verifiers: PRM/ORM training data, value loss, step scoring (MC-rollout labels live here too), and
off-the-shelf verifier formats (`formats`, `heads`, `verifier.load_verifier`)."""
