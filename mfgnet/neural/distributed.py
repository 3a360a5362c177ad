"""Data-parallel training of the neural solver over ``torch.distributed`` ranks (``torchrun``).

Every rank draws the *same* collocation points from the same seeded generator (so the RNG
streams, and hence everything random, stay identical across ranks) and then trains on its
contiguous slice of the per-point sets (interior, initial, terminal, boundary); quadrature
points for global integrals (∫m, ∫u, ∫K m) stay whole on every rank.  Gradients are averaged
across ranks before clipping and the optimiser step.  With equal slices and mean losses the
averaged gradient is the full-batch gradient, so N ranks follow the single-process loss
curve up to the order of floating-point sums.

Gradients are averaged by an explicit ``all_reduce`` of one flat buffer (what the reducer of
DistributedDataParallel does), not by wrapping the networks in DDP.  DDP was tried first: its
reducer does cooperate with the ``autograd.grad(create_graph=True)`` residuals (wrapping a
module whose forward computes the losses gave the full-batch gradient to 2e-16 on B1), but
it needs ``find_unused_parameters=True`` (the projected λ and, on ergodic problems, the output
bias of u get no gradient), a wrapper module since the losses call the networks through
several methods rather than one ``forward``, and it only reduces inside ``backward()``: the
projected λ, gradient-norm weights (``autograd.grad`` w.r.t. parameters), the L-BFGS line
search, the NaN guard and the logged losses need collectives of their own anyway.  One
mechanism for all of them is simpler and keeps alternating training free of DDP's "every
parameter in the graph of the outputs must get a gradient" rule.

The projected ergodic constant is a mean over the collocation points, so each rank's own
mean would give a different loss (4 % off in the gradient on B1 d=1): the trainer replaces it by
the rank-mean, which for equal slices is the full-batch λ.

Without ``WORLD_SIZE`` (or with ``WORLD_SIZE=1``) everything here is a no-op and training is
the ordinary single-process loop, bit for bit.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
from datetime import timedelta

import torch
import torch.distributed as dist

from mfgnet.problems import ProblemError

# Fields of a Batch with one row per collocation point (sliced across ranks), and the
# sampler field that sets each count (for error messages).
PER_POINT_FIELDS = {"t": "sampler.n_interior", "x": "sampler.n_interior", "slice_id": "sampler.n_interior",
                    "fp_scale": "sampler.n_interior", "time_scale": "sampler.n_interior",
                    "init_x": "sampler.n_initial", "term_x": "sampler.n_terminal",
                    "bnd_t": "sampler.n_boundary", "bnd_x": "sampler.n_boundary",
                    "bnd_normal": "sampler.n_boundary"}


def env_world_size() -> int:
    """WORLD_SIZE as set by torchrun (1 when absent)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_from_env(device: torch.device | str | None = None, timeout_s: float = 600.0) -> bool:
    """Initialise the default process group from torchrun's environment variables.

    A no-op returning False when ``WORLD_SIZE`` is absent or 1, or when a group already
    exists (then True).  The backend is NCCL when ``device`` is (or, with ``device=None``,
    CUDA makes it) a GPU, else gloo; with NCCL each rank uses GPU ``LOCAL_RANK``.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size() > 1
    if env_world_size() <= 1:
        return False
    if not dist.is_available():
        raise ProblemError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ProblemError(f"WORLD_SIZE={os.environ['WORLD_SIZE']} but {missing} are not set; launch with torchrun")
    if device is None or str(device) == "auto":
        cuda = torch.cuda.is_available()
    else:
        cuda = torch.device(device).type == "cuda"
    if cuda:
        # "cuda" without an index then means this rank's GPU (NCCL needs one GPU per rank).
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo", timeout=timedelta(seconds=timeout_s))
    atexit.register(shutdown)
    return True


def shutdown() -> None:
    """Destroy the process group if one exists (registered at exit by ``init_from_env``)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def process_rank() -> int:
    """This process's global rank: from the process group, else from RANK (0 when absent).

    Usable before ``init_from_env``, e.g. to decide which process writes files."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    """True on rank 0 (and in every single-process run): the one that writes files."""
    return process_rank() == 0


def shard_bounds(n: int, rank: int, world: int, field: str) -> slice:
    """The contiguous slice of ``n`` points that ``rank`` of ``world`` trains on.

    Equal slices are required: only then is the mean of the per-rank mean losses the
    full-batch mean, and the averaged gradient the full-batch gradient."""
    if n % world:
        raise ProblemError(f"{field} gives {n} points per step, not divisible by the {world} data-parallel ranks; "
                           f"choose a multiple of {world}")
    per = n // world
    return slice(rank * per, (rank + 1) * per)


class DataParallel:
    """This process's place among the ranks and the collectives the trainer needs.

    ``DataParallel()`` is disabled (every method a no-op) unless a process group with more
    than one rank is initialised; ``rank``/``world`` may be given for tests of the slicing."""

    def __init__(self, rank: int | None = None, world: int | None = None) -> None:
        active = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        self.rank = rank if rank is not None else (dist.get_rank() if active else 0)
        self.world = world if world is not None else (dist.get_world_size() if active else 1)
        self.enabled = self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # --------------------------------------------------------------- slicing
    def shard_batch(self, batch, interior_field: str = "sampler.n_interior"):
        """This rank's slice of every per-point field of a sampler Batch; quadrature stays whole.

        ``interior_field`` names the setting behind the interior count in errors."""
        if not self.enabled:
            return batch
        changes = {}
        for name, setting in PER_POINT_FIELDS.items():
            value = getattr(batch, name)
            if value is None:
                continue
            field = interior_field if setting == "sampler.n_interior" else setting
            changes[name] = value[shard_bounds(value.shape[0], self.rank, self.world, field)]
        return dataclasses.replace(batch, **changes)

    def shard_probes(self, probes: torch.Tensor | None) -> torch.Tensor | None:
        """Hutchinson probes (k, n, d) drawn for all n points (same RNG use as one process): this rank's columns."""
        if not self.enabled or probes is None:
            return probes
        return probes[:, shard_bounds(probes.shape[1], self.rank, self.world, "sampler.n_interior")]

    # ----------------------------------------------------------- collectives
    def mean_(self, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        """Average same-dtype tensors across ranks in place (one flat all_reduce); returns them."""
        if not self.enabled or not tensors:
            return tensors
        flat = torch.cat([t.detach().reshape(-1) for t in tensors])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= self.world
        offset = 0
        with torch.no_grad():
            for t in tensors:
                t.copy_(flat[offset:offset + t.numel()].view_as(t))
                offset += t.numel()
        return tensors

    def mean_terms(self, terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The rank-mean of each scalar loss term (detached): the full-batch means for equal slices."""
        if not self.enabled:
            return {k: v.detach() for k, v in terms.items()}
        names = list(terms)
        values = torch.stack([terms[k].detach().to(torch.float64).reshape(()) for k in names])
        self.mean_([values])
        return dict(zip(names, values.unbind()))

    def average_gradients(self, params: list[torch.Tensor]) -> None:
        """Replace each parameter's .grad by its mean over ranks (a missing grad counts as zero
        only if it is missing on every rank, which holds since all ranks run the same graph)."""
        if not self.enabled:
            return
        grads = [p.grad for p in params if p.grad is not None]
        by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
        for g in grads:
            by_dtype.setdefault(g.dtype, []).append(g)
        for group in by_dtype.values():
            self.mean_(group)

    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every rank (they agree already when all
        ranks use the same seed; this guards a resume or init that went otherwise)."""
        if not self.enabled:
            return
        with torch.no_grad():
            for tensor in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(tensor.data, src=0)
