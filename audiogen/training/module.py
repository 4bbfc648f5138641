"""The Lightning modules audiogen trains: what every run shares (``AudiogenModule``) and the pipeline's
(``PipelineModule``); ``audiogen.workflows.train_prior`` adds the prior's."""

from __future__ import annotations

import logging
import math

import lightning as L
import torch

from audiogen import config
from audiogen.artifacts import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, versions
from audiogen.audio.dataset import _seed_from
from audiogen.errors import TrainingDiverged
from audiogen.pipeline import Pipeline
from audiogen.settings import TrainSettings

log = logging.getLogger("audiogen")


class AudiogenModule(L.LightningModule):
    """What every audiogen training run shares: Adam, clipping that refuses non-finite gradients, a divergence
    message with the fixes, exact resume of the RNG, and provenance in every checkpoint."""

    kind = "pipeline"

    def __init__(self, settings: TrainSettings, provenance: dict):
        super().__init__()
        self.settings = settings
        self.provenance = provenance

    def _log_all(self, out: dict, stage: str, bs: int) -> None:
        for k, v in out.items():
            # sync_dist: the mean over ranks, i.e. over the global batch (a no-op in a single process)
            self.log(f"{stage}/{k}", v.detach().float(), prog_bar=k in ("loss", "elbo"), batch_size=bs,
                     on_step=stage == "train", on_epoch=stage != "train", sync_dist=True)

    def training_step(self, batch, batch_idx):
        loss = self._step(batch, "train")
        # every rank decides on the global loss, so that all of them stop at the same step (none left waiting)
        total = self.trainer.strategy.reduce(loss.detach(), reduce_op="mean") if self.trainer.world_size > 1 else loss
        if not torch.isfinite(total):
            self._diverged(f"loss became {total.item()}")
        return loss

    def _diverged(self, what: str):
        raise TrainingDiverged(
            f"{what} at step {self.global_step}; likely causes: learning rate too high "
            f"(train.lr={self.settings.lr}), gradient clipping off or too loose (train.grad_clip="
            f"{self.settings.grad_clip}, train.grad_clip_value={self.settings.grad_clip_value}), NaN/inf in the "
            f"input audio, or an output distribution scale collapsing. The last good checkpoint is kept in "
            f"checkpoints/last.ckpt; re-running resumes from it (lower train.lr first).")

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        if self.settings.grad_clip_value:
            torch.nn.utils.clip_grad_value_(params, self.settings.grad_clip_value)
        norm = torch.nn.utils.clip_grad_norm_(params, self.settings.grad_clip or float("inf"))
        if not torch.isfinite(norm):  # clipping a non-finite norm would write NaN into every weight
            self._diverged(f"the gradient norm became {norm.item()}")
        self.log("train/grad_norm", norm, on_step=True, on_epoch=False)

    def validation_step(self, batch, batch_idx):
        self._step(batch, "valid")

    def setup(self, stage: str) -> None:
        if self.trainer.world_size > 1:  # ranks draw different noise for their different items
            torch.manual_seed(_seed_from(self.settings.seed, self.trainer.global_rank))

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        rng = checkpoint.get("audiogen_rng")
        if rng is None:
            return
        # the posterior noise continues as if the run had never stopped (each rank its own stream; resumed with
        # another number of processes, rank r > 0 starts a fresh stream)
        ranks, rank = rng.get("ranks") or [rng["torch"]], self.trainer.global_rank
        if rank < len(ranks) and len(ranks) == self.trainer.world_size:
            torch.set_rng_state(ranks[rank])
        elif rank == 0:
            torch.set_rng_state(rng["torch"])
        else:
            torch.manual_seed(_seed_from(self.settings.seed, rank, int(checkpoint.get("global_step", 0))))

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=self.settings.lr)
        if self.settings.lr_schedule == "constant":
            return opt
        total = self.settings.max_steps
        # cosine from lr to lr / 10 over max_steps; Lightning keeps its state in checkpoints, so a resume continues it
        decay = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: 0.1 + 0.45 * (1 + math.cos(math.pi * min(step, total) / total)))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": decay, "interval": "step"}}

    def on_fit_start(self) -> None:
        # Where the weights are trained (recorded: a figure from another device is not comparable). Read now:
        # Lightning moves the module back to the CPU before the final model.ckpt is written.
        dev = self.device
        name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else dev.type
        self._trained_on = {"device": dev.type, "name": name, "processes": int(self.trainer.world_size),
                            "threads": torch.get_num_threads()}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["audiogen"] = {
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "kind": self.kind,
            "operative_config": config.operative_config(), "created_by": versions(),
            "global_step": int(self.global_step), "trained_on": getattr(self, "_trained_on", None), **self.provenance,
        }
        state = torch.get_rng_state()
        checkpoint["audiogen_rng"] = {"torch": state}
        if self.trainer.world_size > 1:  # called on every rank; rank 0 writes what it gathered
            import torch.distributed as dist

            mine = state.to(self.device)  # NCCL gathers device tensors
            gathered = [torch.empty_like(mine) for _ in range(self.trainer.world_size)]
            dist.all_gather(gathered, mine)
            checkpoint["audiogen_rng"]["ranks"] = [g.cpu() for g in gathered]


class PipelineModule(AudiogenModule):
    def __init__(self, pipeline: Pipeline, settings: TrainSettings, provenance: dict):
        super().__init__(settings, provenance)
        self.pipeline = pipeline
        self._val_active: dict[str, float] = {}

    def _step(self, batch, stage: str):
        out = self.pipeline.training_loss(batch["audio"], batch["mask"], int(self.global_step))
        self._log_all(out, stage, batch["audio"].shape[0])
        if stage == "valid":
            for k, v in out.items():
                if k.startswith("active_"):
                    self._val_active[k] = max(self._val_active.get(k, 0.0), float(v))
        return out["loss"]

    def on_validation_epoch_end(self):
        dead = [k.split("_", 1)[1] for k, v in sorted(self._val_active.items()) if v == 0]
        if dead:
            log.warning("step %d: %s dead (no active units: posterior means do not vary across the data); "
                        "consider free nats (elbo.free_nats) or KL warm-up (elbo.beta = @anneal.linear())",
                        self.global_step, ", ".join(dead))
        self._val_active = {}
