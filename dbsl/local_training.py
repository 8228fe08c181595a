"""Local training and evaluation: the steps one worker runs inside a mini-epoch, and the test of a model.

Weight decay follows the authors' Keras setup (paper.md 7.4), each part a separate knob:
``kernel_l2`` is the L2 kernel regulariser (loss += l2*||W||^2 on conv/dense kernels, i.e. grad += 2*l2*W),
``decoupled_weight_decay`` is Keras SGD's ``weight_decay`` (W -= lr*wd*W on every variable, before the step), and
``weight_decay`` is PyTorch SGD's coupled decay. On a step that GradScaler skips (inf/NaN gradients under AMP) the
decoupled decay is skipped too, as the step is (the L2 term only adds to those gradients, which the skip discards).
Keras's ``evaluate`` reports the loss with the model's regularisation term added: :func:`kernel_l2_penalty`.
"""
from __future__ import annotations

import contextlib
import time
from typing import Iterable, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .config import OptimConfig
from .models import kernel_parameters
from .stats import EvalStats, TrainStats

Batch = Tuple[torch.Tensor, torch.Tensor]


CHANNELS_LAST_MIN_CHANNELS = 8


def channels_last_for(model: nn.Module, requested: bool, device: torch.device) -> bool:
    """Whether ``model`` trains and evaluates channels-last (NHWC): as requested, except on the CPU for models with
    a layer of fewer than 8 channels, where oneDNN's AVX2 channels-last backward corrupts the heap (torch 2.14.1;
    seen with width <= 4, e.g. the smoke preset, on an AVX2 CPU and under ONEDNN_MAX_CPU_ISA=AVX2)."""
    if not requested or device.type == "cuda":
        return requested
    narrowest = min((m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)), default=0)
    return narrowest >= CHANNELS_LAST_MIN_CHANNELS


def _autocast(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class LocalTrainer:
    """SGD with momentum on one model; the optimizer (momentum buffers) persists until :meth:`reset_optimizer`."""

    def __init__(self, model: nn.Module, optim: OptimConfig, device: torch.device, amp: bool = False,
                 channels_last: bool = True):
        self.model, self.cfg, self.device = model, optim, device
        self.amp = amp and device.type == "cuda"
        self.memory_format = torch.channels_last if channels_last_for(model, channels_last, device) else None
        if self.memory_format is not None:
            model.to(memory_format=self.memory_format)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.kernels = kernel_parameters(model)
        self.scaler = torch.amp.GradScaler("cuda") if self.amp else None
        self.optimizer = None
        self.reset_optimizer()

    def reset_optimizer(self) -> None:
        """A new optimizer: the authors' workers re-compile (resetting momentum) at every LR or stage change."""
        self.optimizer = torch.optim.SGD(self.params, lr=self.cfg.lr, momentum=self.cfg.momentum,
                                         weight_decay=self.cfg.weight_decay)

    def train(self, batches: Iterable[Batch], lr: float) -> TrainStats:
        model, opt, cfg = self.model, self.optimizer, self.cfg
        for group in opt.param_groups:
            group["lr"] = lr
        model.train()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        samples = steps = 0
        start, cpu_start = time.perf_counter(), time.process_time()
        for x, y in batches:
            if self.memory_format is not None:
                x = x.contiguous(memory_format=self.memory_format)
            with _autocast(self.device, self.amp):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
            opt.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.unscale_(opt)
            else:
                loss.backward()
            with torch.no_grad():
                if cfg.kernel_l2:
                    torch._foreach_add_([k.grad for k in self.kernels], self.kernels, alpha=2.0 * cfg.kernel_l2)
                if cfg.decoupled_weight_decay:
                    torch._foreach_mul_(self.params, self._decay_factor(lr))
                loss_sum += loss.detach() * y.shape[0]
                correct += (logits.argmax(1) == y).sum()
            if self.scaler is not None:
                self.scaler.step(opt)
                self.scaler.update()
            else:
                opt.step()
            samples += y.shape[0]
            steps += 1
        _sync(self.device)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        if samples == 0:
            return TrainStats(float("nan"), float("nan"), 0, 0, seconds, cpu_seconds)
        return TrainStats(loss_sum.item() / samples, correct.item() / samples, samples, steps, seconds, cpu_seconds)

    def _decay_factor(self, lr: float) -> float | torch.Tensor:
        """1 - lr*wd; under AMP a device tensor that is 1 on a step GradScaler will skip (no host sync)."""
        decay = lr * self.cfg.decoupled_weight_decay
        if self.scaler is None:
            return 1.0 - decay
        # after unscale_(): 1.0 per device where the gradients hold an inf or NaN (GradScaler.step then skips)
        found = sum(self.scaler._found_inf_per_device(self.optimizer).values())
        return 1.0 - decay * (1.0 - found.clamp(max=1.0))

    def optimizer_state(self) -> dict:
        return self.optimizer.state_dict()

    def load_optimizer_state(self, state: dict) -> None:
        self.optimizer.load_state_dict(state)


@torch.inference_mode()
def evaluate(model: nn.Module, batches: Iterable[Batch], device: torch.device, amp: bool = False,
             channels_last: bool = True) -> EvalStats:
    """Test loss, top-1 and top-5 accuracy (BatchNorm in inference mode, using the merged running statistics)."""
    model.eval()
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    top1 = torch.zeros((), device=device, dtype=torch.long)
    top5 = torch.zeros((), device=device, dtype=torch.long)
    samples = 0
    start = time.perf_counter()
    for x, y in batches:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(device, amp):
            logits = model(x)
        logits = logits.float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum").double()
        k = min(5, logits.shape[1])
        topk = logits.topk(k, dim=1).indices
        hits = topk == y[:, None]
        top1 += hits[:, 0].sum()
        top5 += hits.any(dim=1).sum()
        samples += y.shape[0]
    _sync(device)
    return EvalStats(loss_sum.item() / samples, top1.item() / samples, top5.item() / samples, samples,
                     time.perf_counter() - start)


@torch.no_grad()
def kernel_l2_penalty(model: nn.Module, l2: float) -> float:
    """The authors' L2 kernel regulariser as a loss term, l2 * sum ||W||^2 over the conv and dense kernels (its
    gradient 2*l2*W is what :class:`LocalTrainer` adds); Keras's ``evaluate`` adds it to the reported test loss."""
    if not l2:
        return 0.0
    return l2 * float(sum(k.detach().double().pow(2).sum() for k in kernel_parameters(model)))  # one device sync
