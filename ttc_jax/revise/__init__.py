"""Sequential revisions: trajectory data, the revision prompt, and revision chains at inference.

  format.py        the one revision prompt layout (question + last <= 4 attempts + new attempt header)
  trajectories.py  k incorrect attempts followed by a correct one, from sampled solutions
  data.py          trajectories -> next-token training examples (loss on the final attempt only)
  chains.py        P parallel chains x L sequential revisions with one batched generate per step
"""
from ttc_jax.revise.chains import chain_budget, run_chains
from ttc_jax.revise.format import MAX_CONTEXT, attempt_text, revision_prompt
from ttc_jax.revise.trajectories import TrajectoryConfig, build_trajectories, problem_trajectories
