"""Which search to run and its sizes: one frozen dataclass, validated at construction.

All four methods of the paper are one loop over rounds (`search.loop`; best-of-N runs
without rounds unless `best_of_n_rounds`: `search.best_of_n`); a method
only fixes how the N candidates of a problem are grouped and how many of each
group survive a round:

  method      groups per problem   candidates per group   survivors per group   lookahead
  best_of_n   N                    1                      1                      0
  beam        1                    N                      N / M                  0
  lookahead   1                    N                      N / M                  k
  dvts        N / M                M                      1                      0

A survivor is expanded with M fresh samples of its next step (best-of-N: M = 1,
so every candidate is its own independent chain).
"""
import dataclasses

METHODS = ("best_of_n", "beam", "lookahead", "dvts")


@dataclasses.dataclass(frozen=True)
class SearchConfig:
  """A search against a PRM.

  Attributes:
    method: "best_of_n" | "beam" | "lookahead" | "dvts".
    budget: N, candidates per problem (the paper's generation budget; lookahead
      spends N * (lookahead + 1)).
    beam_width: M, samples drawn from each survivor. Ignored by best_of_n.
    lookahead: k, greedy steps rolled out to score a candidate (method "lookahead";
      k = 0 is beam search).
    max_rounds: most steps a candidate can take (the paper stops at 40).
    max_step_tokens: most tokens in one step; a step that reaches it without a
      newline or EOS is truncated and its candidate ends (graded wrong unless it
      already has an answer).
    max_solution_tokens: most new tokens per candidate. It also sizes the KV cache,
      where each candidate's slots grow by its own step, so the search stops when
      another step (max_step_tokens) might not fit after an unfinished candidate's
      solution.
    temperature, top_p: how steps are sampled (lookahead rollouts are greedy).
    shared_prefix: store the prompt's keys and values once per problem (policy and
      verifier caches) and let its N candidates read that one copy (cascade
      attention); each candidate's cache then holds only its solution. False keeps
      N copies of the prompt. Both give the same search up to float summation order.
    best_of_n_rounds: run best-of-N in lockstep rounds like the other methods (one step
      of every candidate per round) rather than sampling each candidate's whole solution
      in one decode and scoring its steps in one PRM pass (`search.best_of_n`, the default
      with this project's PRM). Both search the same distribution, but under temperature > 0
      they draw other samples (other random keys); greedy search gives the same output.
  """

  method: str = "beam"
  budget: int = 16
  beam_width: int = 4
  lookahead: int = 0
  max_rounds: int = 40
  max_step_tokens: int = 64
  max_solution_tokens: int = 512
  temperature: float = 1.0
  top_p: float = 1.0
  shared_prefix: bool = True
  best_of_n_rounds: bool = False

  def __post_init__(self):
    errors = []
    if self.method not in METHODS:
      errors.append(f"search.method={self.method!r} must be one of {METHODS}")
    if self.budget < 1:
      errors.append(f"search.budget={self.budget} must be >= 1")
    if self.method != "best_of_n":
      if self.beam_width < 1:
        errors.append(f"search.beam_width={self.beam_width} must be >= 1")
      elif self.budget % self.beam_width:
        errors.append(f"search.budget={self.budget} must be divisible by search.beam_width={self.beam_width}")
    if self.lookahead < 0:
      errors.append(f"search.lookahead={self.lookahead} must be >= 0")
    if self.lookahead and self.method != "lookahead":
      errors.append(f"search.lookahead={self.lookahead} needs search.method='lookahead' (got {self.method!r})")
    if self.max_rounds < 1:
      errors.append(f"search.max_rounds={self.max_rounds} must be >= 1")
    if self.max_step_tokens < 1:
      errors.append(f"search.max_step_tokens={self.max_step_tokens} must be >= 1")
    if self.max_solution_tokens < self.max_step_tokens:
      errors.append(f"search.max_solution_tokens={self.max_solution_tokens} must be >= "
                    f"search.max_step_tokens={self.max_step_tokens}")
    if self.temperature < 0:
      errors.append(f"search.temperature={self.temperature} must be >= 0 (0 is greedy)")
    if not 0 < self.top_p <= 1:
      errors.append(f"search.top_p={self.top_p} must be in (0, 1]")
    if errors:
      raise ValueError("Invalid search config: " + "; ".join(errors))

  @property
  def width(self) -> int:
    """Samples drawn from each survivor (M; 1 for best-of-N)."""
    return 1 if self.method == "best_of_n" else self.beam_width

  @property
  def num_groups(self) -> int:
    """Independent groups per problem: candidates only compete within their group."""
    if self.method == "best_of_n":
      return self.budget
    if self.method == "dvts":
      return self.budget // self.beam_width
    return 1

  @property
  def group_size(self) -> int:
    return self.budget // self.num_groups

  @property
  def survivors(self) -> int:
    """Candidates of a group kept each round."""
    return self.group_size // self.width

  @property
  def generations(self) -> int:
    """The paper's generation budget per problem: N, or N * (k + 1) with lookahead."""
    return self.budget * (self.lookahead + 1)
