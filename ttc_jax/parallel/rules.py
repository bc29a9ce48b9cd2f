"""Logical axis names -> mesh axes: the one table that decides how things shard.

Parameters name their axes in the model ("embed", "mlp", "heads", ...);
activations use "batch", "length" and "act_*". The mesh has three axes:
"data" (pure data parallel), "fsdp" (data parallel with parameters and
optimizer state sharded) and "tensor" (Megatron-style model parallel).
"""

MESH_AXES = ("data", "fsdp", "tensor")

RULES: tuple[tuple[str, str | tuple[str, ...] | None], ...] = (
    # Activations.
    ("batch", ("data", "fsdp")),
    ("length", None),
    ("act_embed", None),
    ("act_heads", "tensor"),
    ("act_mlp", "tensor"),
    ("act_vocab", "tensor"),
    # Parameters.
    ("embed", "fsdp"),
    ("vocab", "tensor"),
    ("mlp", "tensor"),
    ("heads", "tensor"),
    ("kv_heads", "tensor"),
    ("head_dim", None),
    ("norm", None),
    ("layers", None),
)
