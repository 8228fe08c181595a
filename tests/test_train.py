"""The trainer and the worker against hand computations: one SGD step with the authors' L2 term and decoupled decay,
the decay skipped with a step GradScaler skips, the momentum reset policy, dropout per phase, and the test of the
merged model at the pushing worker's resolution with the paper's loss (cross-entropy plus the L2 term)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dbsl.config import OptimConfig
from dbsl.data import load_dataset
from dbsl.plan import build_plan
from dbsl.ps.context import RunContext
from dbsl.monitor import Monitor
from dbsl.ps.simulated import Simulation
from dbsl.record import RunRecord, read_metric_rows
from dbsl.local_training import LocalTrainer, evaluate, kernel_l2_penalty

CPU = torch.device("cpu")


def two_by_two() -> nn.Module:
    """Logits = W x + b with W = [[1, -0.5], [1, -0.5]], b = 0: for x = (1, 2) both logits are 0."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, -0.5], [1.0, -0.5]]))
        model[1].bias.zero_()
    return model


def batch(first: float = 1.0):
    return torch.tensor([first, 2.0]).view(1, 2, 1, 1), torch.tensor([0])


# one step by hand, lr 0.5, momentum 0.9, kernel_l2 0.01, decoupled decay 0.1:
#   logits (0, 0) -> softmax (0.5, 0.5); label 0: dCE/dlogits = (0.5 - 1, 0.5) = (-0.5, 0.5); CE = ln 2
#   grad W = outer((-0.5, 0.5), (1, 2)) = [[-0.5, -1], [0.5, 1]];  grad b = (-0.5, 0.5)
#   + L2 term's gradient 2 * 0.01 * W = [[0.02, -0.01], [0.02, -0.01]]  ->  grad W = [[-0.48, -1.01], [0.52, 0.99]]
#   decoupled decay first (Keras SGD(weight_decay)): W *= 1 - 0.5 * 0.1 = 0.95 -> [[0.95, -0.475], [0.95, -0.475]]
#   first momentum step: buffer = grad, W -= 0.5 * grad -> [[1.19, 0.03], [0.69, -0.97]];  b = (0.25, -0.25)
OPTIM = OptimConfig(lr=0.5, momentum=0.9, kernel_l2=0.01, decoupled_weight_decay=0.1, weight_decay=0.0)
W_AFTER = torch.tensor([[1.19, 0.03], [0.69, -0.97]])
B_AFTER = torch.tensor([0.25, -0.25])
GRAD_W = torch.tensor([[-0.48, -1.01], [0.52, 0.99]])


def test_one_sgd_step_with_l2_and_decoupled_decay_by_hand():
    model = two_by_two()
    trainer = LocalTrainer(model, OPTIM, CPU, amp=False, channels_last=False)
    stats = trainer.train([batch()], lr=0.5)
    assert stats.loss == pytest.approx(math.log(2)) and stats.steps == 1
    assert torch.allclose(model[1].weight.detach(), W_AFTER, atol=1e-6)
    assert torch.allclose(model[1].bias.detach(), B_AFTER, atol=1e-6)
    assert torch.allclose(trainer.optimizer.state[model[1].weight]["momentum_buffer"], GRAD_W, atol=1e-6)


def test_decay_is_skipped_with_a_step_gradscaler_skips():
    model = two_by_two()
    trainer = LocalTrainer(model, OPTIM, CPU, amp=False, channels_last=False)
    trainer.scaler = torch.amp.GradScaler("cpu", init_scale=16.0)  # the CUDA path's loss scaling, on the CPU
    before = [p.detach().clone() for p in model.parameters()]
    trainer.train([batch(first=math.inf)], lr=0.5)  # logits inf -> loss NaN -> GradScaler skips the step
    assert trainer.scaler.get_scale() == 8.0  # the scaler saw the inf and backed off
    assert all(torch.equal(p.detach(), b) for p, b in zip(model.parameters(), before))  # no decay either
    assert not trainer.optimizer.state  # no momentum buffer: no step was taken
    trainer.train([batch()], lr=0.5)  # a finite step: the hand-computed update (scale 8 unscales exactly)
    assert torch.allclose(model[1].weight.detach(), W_AFTER, atol=1e-6)
    assert torch.allclose(model[1].bias.detach(), B_AFTER, atol=1e-6)


def test_kernel_l2_penalty_counts_kernels_only():
    model = nn.Sequential(nn.Conv2d(1, 1, 1, bias=True), nn.BatchNorm2d(1), nn.Flatten(), nn.Linear(2, 2))
    with torch.no_grad():
        model[0].weight.fill_(2.0)
        model[0].bias.fill_(5.0)
        model[3].weight.copy_(torch.tensor([[1.0, -0.5], [1.0, -0.5]]))
        model[3].bias.fill_(3.0)
    # kernels only: 2^2 + (1 + 0.25 + 1 + 0.25) = 6.5, times 1e-4; biases and BatchNorm's gamma/beta are not kernels
    assert kernel_l2_penalty(model, 1e-4) == pytest.approx(6.5e-4)
    assert kernel_l2_penalty(model, 0.0) == 0.0


# -- the worker, on the smoke preset -----------------------------------------------------------------------------
SMOKE = ["experiment=smoke", "model.width=2", "dataset.synthetic_train=256", "dataset.synthetic_test=64",
         "train.threads=1", "logger.progress=false"]


def context(compose, tmp_path, *overrides, monitor=False):
    cfg = compose(SMOKE + list(overrides) + [f"output_dir={tmp_path / 'run'}"])
    source = load_dataset(cfg.dataset, cfg.seed)
    plan = build_plan(cfg, len(source.train))
    record = RunRecord(tmp_path / "run")
    ctx = RunContext(cfg, plan, source, CPU, record)
    if monitor:
        record.open_metrics()
        ctx.monitor = Monitor(plan, record, progress=False)
    return ctx


def buffers(worker):
    return [s["momentum_buffer"].clone() for s in worker.trainer.optimizer.state.values()]


@pytest.mark.parametrize("policy", ["phase", "mini_epoch", "never"])
def test_momentum_reset_policy(compose, tmp_path, policy):
    ctx = context(compose, tmp_path, "scheme=cpl", f"optim.momentum_reset={policy}")
    state, plan = ctx.initial_model().state_dict(), ctx.plan
    worker = ctx.new_worker(1, ctx.new_pipeline())
    first, second = plan.phases[0], plan.phases[1]
    worker.pull(state, first, first.lr)
    worker.train_mini_epoch()
    trained = buffers(worker)
    assert trained  # momentum buffers exist after a mini-epoch
    worker.pull(state, first, first.lr)  # the next mini-epoch of the same phase
    kept = buffers(worker)
    if policy == "mini_epoch":  # the COMPSAC code compiles a new SGD every mini-epoch
        assert kept == []
    else:
        assert len(kept) == len(trained) and all(torch.equal(a, b) for a, b in zip(kept, trained))
    worker.train_mini_epoch()
    trained = buffers(worker)
    worker.pull(state, second, second.lr)  # a CPL stage change
    after = buffers(worker)
    if policy == "never":
        assert all(torch.equal(a, b) for a, b in zip(after, trained)) and len(after) == len(trained)
    else:  # the journal code re-compiles at every LR/stage change
        assert after == []


def test_a_workers_checkpoint_keeps_the_amp_loss_scale(compose, tmp_path):
    ctx = context(compose, tmp_path, "scheme=dbsl")
    pipeline = ctx.new_pipeline()
    worker, resumed = ctx.new_worker(1, pipeline), ctx.new_worker(1, pipeline)
    worker.pull(ctx.initial_model().state_dict(), ctx.plan.phases[0], 0.1)
    worker.trainer.scaler = torch.amp.GradScaler("cpu", init_scale=8.0)  # the CUDA path's loss scaling, on the CPU
    resumed.trainer.scaler = torch.amp.GradScaler("cpu")  # a fresh scaler starts at 65536
    resumed.load_state_dict(worker.state_dict())
    assert resumed.trainer.scaler.get_scale() == 8.0  # a resumed AMP run does not restart its loss scale


def test_reset_on_phase_change_still_reads(compose):
    assert compose(["optim.reset_on_phase_change=false"]).optim.momentum_reset == "never"
    assert compose(["optim.reset_on_phase_change=true"]).optim.momentum_reset == "phase"
    from dbsl.config import ConfigError

    with pytest.raises(ConfigError, match="optim.reset_on_phase_change"):
        compose(["optim.reset_on_phase_change=false", "optim.momentum_reset=mini_epoch"])


def test_dropout_follows_the_phase(compose, tmp_path):
    ctx = context(compose, tmp_path, "scheme=hybrid")
    plan = ctx.plan
    # the smoke preset cycles 8 px (dropout 0.1) -> 16 px (dropout 0.2) inside each of its two LR stages
    assert [(p.resolution, p.dropout) for p in plan.phases] == [(8, 0.1), (16, 0.2), (8, 0.1), (16, 0.2)]
    state = ctx.initial_model().state_dict()
    worker = ctx.new_worker(3, ctx.new_pipeline())
    seen = []
    worker.model.dropout.register_forward_pre_hook(lambda module, args: seen.append((module.p, module.training)))
    for phase in plan.phases:
        seen.clear()
        worker.pull(state, phase, phase.lr)
        worker.train_mini_epoch()
        assert seen and set(seen) == {(phase.dropout, True)}, (phase.index, seen)


def test_evaluation_at_the_pushing_workers_resolution_with_the_l2_term(compose, tmp_path):
    ctx = context(compose, tmp_path, "scheme=hybrid", "train.eval_every=1", monitor=True)
    sim = Simulation(ctx)
    sim.run_async()
    ctx.record.close()
    rows = read_metric_rows(tmp_path / "run" / "metrics.csv")
    last = rows[-1]
    assert int(last["commit"]) == ctx.plan.total_commits - 1 and last["resolution"] == "16"
    # the final global model, tested here at both resolutions of the cycle
    model = ctx.new_model()
    model.load_state_dict(sim.server.state)
    pipeline = ctx.new_pipeline()
    at = {r: evaluate(model, pipeline.test_batches(r, 256), CPU) for r in (8, 16)}
    assert float(last["test_loss"]) == pytest.approx(at[16].loss, rel=1e-6)
    assert float(last["test_loss"]) != pytest.approx(at[8].loss, rel=1e-3)
    # the paper's test loss: plus 1e-4 * the sum of squares of every conv and dense kernel, summed here by name
    squares = sum(float(v.double().pow(2).sum()) for k, v in sim.server.state.items()
                  if k.endswith("weight") and v.dim() in (2, 4))
    assert float(last["test_loss_l2"]) == pytest.approx(float(last["test_loss"]) + 1e-4 * squares, rel=1e-9)
    assert ctx.monitor.results()["final"]["test_loss_l2"] == pytest.approx(float(last["test_loss_l2"]))
    evaluated = [r for r in rows if r["test_loss"]]
    assert len(evaluated) == len(rows)  # eval_every=1: every commit was tested, at its own phase's resolution
    assert {(r["phase"], r["resolution"]) for r in evaluated} == {("0", "8"), ("1", "16"), ("2", "8"), ("3", "16")}


@pytest.mark.parametrize("steps,large,small", [("ceil", 70, 58), ("round", 64, 51)])
def test_a_mini_epoch_trains_on_ceil_or_round_batches(compose, tmp_path, steps, large, small):
    # 256 images, n = 4, n_S = 2, k = 1.1: d_L = round(1.1 * 256 / 4) = round(70.4) = 70, d_S = (256 - 140) / 2 = 58;
    # at 16 px B_L = 32: ceil(70 / 32) = 3 batches (32 + 32 + 6) = 70 images, round(2.19) = 2 full batches = 64;
    # B_S = 17: ceil(58 / 17) = 4 batches (17 + 17 + 17 + 7) = 58 images, round(3.41) = 3 full batches = 51
    ctx = context(compose, tmp_path, "scheme=dbsl", f"train.steps={steps}", "schedule.epochs=2",
                  "optim.lr_milestones=[1]", "schedule.cycle_ends=[]", monitor=True)
    assert (ctx.plan.data_large, ctx.plan.data_small, ctx.plan.phases[0].batch_small) == (70, 58, 17)
    Simulation(ctx).run_async()
    ctx.record.close()
    rows = read_metric_rows(tmp_path / "run" / "metrics.csv")
    assert {r["samples"] for r in rows if r["small"] == "0"} == {str(large)}
    assert {r["samples"] for r in rows if r["small"] == "1"} == {str(small)}
