"""Launch scripts: sweeps, Cloud TPU VMs, single-host multi-GPU. See launch/README.md."""
