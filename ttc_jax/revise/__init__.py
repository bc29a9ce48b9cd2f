"""Sequential revisions: trajectory data, the revision prompt, and revision chains at inference.

  format.py        the one revision prompt layout (question + last <= 4 attempts + new attempt header),
                   and the context a verifier scores each attempt of a chain in
  trajectories.py  k incorrect attempts followed by a correct one, from sampled solutions (a share with k = 0)
  data.py          trajectories -> next-token training examples (loss on the final attempt only)
  heldout.py       the reviser's held-out checks: its loss vs the policy's on unseen problems, and the gate,
                   its first-attempt accuracy vs the policy's with a paired bootstrap interval
  chains.py        P parallel chains x L sequential revisions with one batched generate per step
"""
from ttc_jax.revise.chains import chain_budget, run_chains
from ttc_jax.revise.format import MAX_CONTEXT, attempt_text, revision_prompt
from ttc_jax.revise.trajectories import TrajectoryConfig, build_trajectories, problem_trajectories
