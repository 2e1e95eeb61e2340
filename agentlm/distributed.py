"""Joining a multi-process job before JAX touches any device.

Sources, in order: the config's `distributed.*` fields, then the environment (AGENTLM_COORDINATOR_ADDRESS,
AGENTLM_NUM_PROCESSES, AGENTLM_PROCESS_ID, as set by `python -m launch.local`), then JAX's own cluster
detection (TPU pod metadata, SLURM, ...) when `distributed.initialize="always"` or a TPU pod is visible.

It sits below `train` so that every entry point that touches devices (trainer, checkpoint converter, evaluation)
joins the job the same way without building a training config.
"""
from __future__ import annotations

import os

import jax

import ml_collections

ENV_COORDINATOR = "AGENTLM_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "AGENTLM_NUM_PROCESSES"
ENV_PROCESS_ID = "AGENTLM_PROCESS_ID"
# Set on every worker of a multi-host Cloud TPU slice; JAX reads the topology from the metadata server.
_TPU_POD_ENV = ("TPU_WORKER_HOSTNAMES", "MEGASCALE_COORDINATOR_ADDRESS")


class DistributedConfigError(ValueError):
    """The job's coordinator settings cannot describe a valid process group."""


def default_config() -> ml_collections.ConfigDict:
    """The `distributed` block of every config that runs on devices (the trainer nests it as config.distributed)."""
    c = ml_collections.ConfigDict()
    c.initialize = "auto"  # auto: when the environment names a coordinator or a TPU pod; never; always
    c.coordinator_address = ""  # host:port (else env AGENTLM_COORDINATOR_ADDRESS)
    c.num_processes = 0  # (else env AGENTLM_NUM_PROCESSES)
    c.process_id = -1  # (else env AGENTLM_PROCESS_ID)
    return c


def settings(dist_cfg) -> dict | None:
    """Explicit initialize() arguments, {} for JAX autodetection, or None for a single process."""
    addr = dist_cfg.coordinator_address or os.environ.get(ENV_COORDINATOR, "")
    nproc = dist_cfg.num_processes or int(os.environ.get(ENV_NUM_PROCESSES, "0") or 0)
    pid = dist_cfg.process_id if dist_cfg.process_id >= 0 else int(os.environ.get(ENV_PROCESS_ID, "-1") or -1)
    mode = dist_cfg.initialize
    if mode == "never":
        return None
    if addr:
        if nproc <= 0 or not 0 <= pid < nproc:
            raise DistributedConfigError(f"config.distributed: coordinator {addr!r} needs num_processes > 0 and 0 <= process_id "
                              f"< num_processes (got num_processes={nproc}, process_id={pid}; also settable via "
                              f"{ENV_NUM_PROCESSES}/{ENV_PROCESS_ID})")
        return {"coordinator_address": addr, "num_processes": nproc, "process_id": pid}
    tpu_pod = any("," in os.environ.get(k, ",") for k in _TPU_POD_ENV if k in os.environ)
    if mode == "always" or tpu_pod:
        return {}
    return None


def initialize(dist_cfg) -> bool:
    """Calls jax.distributed.initialize when the job has several processes; returns whether it did."""
    args = settings(dist_cfg)
    if args is None or jax.distributed.is_initialized():
        return False
    if os.environ.get("JAX_PLATFORMS", "") == "cpu" or args.get("coordinator_address", "").startswith("127."):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # cross-process CPU collectives
    jax.distributed.initialize(**args)
    return True
