"""Several processes, one run: the launch shape, this process's rank, and each rank's share of a global batch.

Processes come from Lightning's own launcher (``train.devices``/``encode.devices`` > 1 re-runs the same command
once per extra local device), from ``torchrun`` or from SLURM's ``srun``; the last two are read from their
environment variables, the same ones Lightning's cluster environments read.
"""

from __future__ import annotations

import os

from audiogen.errors import ConfigError


def _slurm_tasks() -> tuple[int, int] | None:
    # Lightning ignores SLURM for jobs named 'bash' or 'interactive' (processes launched by hand inside them)
    if "SLURM_NTASKS" not in os.environ or os.environ.get("SLURM_JOB_NAME") in ("bash", "interactive"):
        return None
    nodes = int(os.environ.get("SLURM_NNODES", "1"))
    return int(os.environ["SLURM_NTASKS"]) // max(nodes, 1), nodes


def launcher_shape() -> tuple[int, int] | None:
    """(processes per node, nodes) when torchrun or SLURM started this process, else None."""
    if os.environ.get("TORCHELASTIC_RUN_ID") is not None and "LOCAL_WORLD_SIZE" in os.environ:
        local = int(os.environ["LOCAL_WORLD_SIZE"])
        return local, int(os.environ.get("WORLD_SIZE", local)) // local
    return _slurm_tasks()


def resolve_shape(devices: int | None, num_nodes: int | None, prefix: str) -> tuple[int, int]:
    """(devices per node, nodes) for a run: what the external launcher started, else the settings (default 1 x 1).
    Settings that contradict the launcher are a ConfigError (Lightning would wait for processes that never come)."""
    for name, value in (("devices", devices), ("num_nodes", num_nodes)):
        if value is not None and int(value) < 1:
            raise ConfigError(f"{prefix}.{name} must be a positive integer, got {value!r}")
    launched = launcher_shape()
    if launched is None:
        return int(devices or 1), int(num_nodes or 1)
    wanted = (int(devices) if devices else launched[0], int(num_nodes) if num_nodes else launched[1])
    if wanted != launched:
        raise ConfigError(f"{prefix}.devices={wanted[0]} x {prefix}.num_nodes={wanted[1]} does not match the "
                          f"{launched[0]} processes per node x {launched[1]} nodes the launcher started",
                          fix=f"drop the {prefix}.devices/{prefix}.num_nodes bindings (they are read from torchrun "
                              f"or SLURM), or launch as many processes as they say")
    return launched


def split_batch(batch_size: int, world: int) -> int:
    """This rank's batch size: ``batch_size`` is the global batch, shared evenly by ``world`` processes."""
    if batch_size % world:
        up = -(-batch_size // world) * world
        raise ConfigError(f"train.batch_size={batch_size} (the global batch, shared by all processes) does not "
                          f"divide evenly over {world} processes",
                          fix=f"bind train.batch_size to a multiple of {world}, e.g. train.batch_size={up}")
    return batch_size // world


def current_rank() -> tuple[int, int]:
    """(global rank, world size) of this process once the process group is up, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    """Rank 0: from the process group once it is up, else from the launcher's environment (Lightning's own
    launcher sets LOCAL_RANK and NODE_RANK only, torchrun RANK, SLURM SLURM_PROCID); True when run alone."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    if "RANK" in os.environ:
        return int(os.environ["RANK"]) == 0
    if _slurm_tasks() is not None:
        return int(os.environ.get("SLURM_PROCID", "0")) == 0
    return int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(os.environ.get("NODE_RANK", "0")) == 0


def rank_share(batch: list[int], rank: int, world: int) -> list[int]:
    """This rank's items of a global batch: every ``world``-th item from position ``rank``.

    Batches are length-sorted, so striding gives every rank items of similar length (similar padding and step
    time). A batch with fewer items than ranks (an epoch's last) repeats items, as DistributedSampler pads, so
    that every rank takes the step: DDP's gradient all-reduce needs all of them."""
    if world == 1:
        return batch
    if len(batch) >= world:
        return batch[rank::world]
    return [batch[rank % len(batch)]]


class Ranks:
    """The processes of one job outside the Trainer (``audiogen encode``): this one's rank, their number, its
    device, and object collectives over a gloo group (CPU objects, whatever backend the main group uses)."""

    def __init__(self, rank: int = 0, world: int = 1, device=None, group=None, owns_groups: bool = False):
        import torch

        self.rank, self.world, self.group, self.owns_groups = rank, world, group, owns_groups
        self.device = device if device is not None else torch.device("cpu")

    def all_gather(self, obj) -> list:
        if self.world == 1:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.world
        dist.all_gather_object(out, obj, group=self.group)
        return out

    def close(self) -> None:
        """Tear the process groups down before the interpreter exits: gloo's threads left running at exit abort
        the process ("terminate called without an active exception", exit -6) after its work is done."""
        if self.world == 1 or not self.owns_groups:  # a process group the caller set up is the caller's
            return
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def launch(devices: int | None, num_nodes: int | None, accelerator: str, prefix: str) -> Ranks:
    """Start (or join) the processes of a job: Lightning Fabric re-runs this command once per extra local device,
    or joins the processes torchrun/SLURM started; a single CPU process needs none of it."""
    devices, num_nodes = resolve_shape(devices, num_nodes, prefix)
    if devices * num_nodes == 1 and accelerator == "cpu":
        return Ranks()
    import logging

    import torch.distributed as dist
    from lightning.fabric import Fabric

    for noisy in ("lightning.fabric", "lightning.pytorch"):  # their import sets INFO: rank banners
        logging.getLogger(noisy).setLevel(logging.WARNING)
    world = devices * num_nodes
    fabric = Fabric(accelerator=accelerator, devices=devices, num_nodes=num_nodes,
                    strategy="ddp" if world > 1 else "auto")
    if world == 1:
        return Ranks(device=fabric.device)
    owns = not (dist.is_available() and dist.is_initialized())
    fabric.launch()
    return Ranks(fabric.global_rank, fabric.world_size, fabric.device, dist.new_group(backend="gloo"), owns)
