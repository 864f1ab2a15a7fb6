#!/usr/bin/python3
"""Generates tests/fixtures/optim_parity.safetensors: PyTorch optimizers stepped 10 times from fixed
weights with fixed gradients (parameters recorded after every step), and learning-rate sequences of
the schedulers over 100 steps. Read by tests/test_optim.cpp.

Run:  /usr/bin/python3 tests/parity/make_optim_fixtures.py
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import write_safetensors  # noqa: E402

torch.manual_seed(99)
T = {}
P0, P1 = torch.randn(4, 3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
GRADS = [(torch.randn(4, 3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)) for _ in range(10)]
T["init.p0"], T["init.p1"] = P0, P1
for i, (g0, g1) in enumerate(GRADS):
    T[f"grad{i}.p0"], T[f"grad{i}.p1"] = g0, g1

O = torch.optim
CONFIGS = {
    "sgd": lambda p: O.SGD(p, lr=0.1),
    "sgd_momentum_wd": lambda p: O.SGD(p, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01),
    "sgd_nesterov_max": lambda p: O.SGD(p, lr=0.05, momentum=0.8, nesterov=True, maximize=True),
    "sgd_groups": lambda p: O.SGD([{"params": [p[0]]}, {"params": [p[1]], "lr": 0.5}], lr=0.1, momentum=0.5),
    "adam": lambda p: O.Adam(p, lr=0.01),
    "adam_amsgrad_wd": lambda p: O.Adam(p, lr=0.02, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1, amsgrad=True),
    "adam_maximize": lambda p: O.Adam(p, lr=0.01, maximize=True),
    "adamw": lambda p: O.AdamW(p, lr=0.01),
    "adamw_amsgrad": lambda p: O.AdamW(p, lr=0.03, weight_decay=0.05, amsgrad=True),
    "rmsprop": lambda p: O.RMSprop(p, lr=0.01),
    "rmsprop_centered_momentum_wd": lambda p: O.RMSprop(p, lr=0.01, alpha=0.9, momentum=0.5, centered=True,
                                                        weight_decay=0.02),
    "adagrad": lambda p: O.Adagrad(p, lr=0.1),
    "adagrad_decay_wd_init": lambda p: O.Adagrad(p, lr=0.1, lr_decay=0.01, weight_decay=0.05,
                                                 initial_accumulator_value=0.1),
}

for name, make in CONFIGS.items():
    p0, p1 = P0.clone().requires_grad_(), P1.clone().requires_grad_()
    opt = make([p0, p1])
    for i, (g0, g1) in enumerate(GRADS):
        p0.grad, p1.grad = g0.clone(), g1.clone()
        opt.step()
        T[f"opt.{name}.step{i}.p0"], T[f"opt.{name}.step{i}.p1"] = p0.detach().clone(), p1.detach().clone()

S = torch.optim.lr_scheduler
SCHEDULERS = {
    "step": lambda o: S.StepLR(o, step_size=7, gamma=0.5),
    "multistep": lambda o: S.MultiStepLR(o, milestones=[10, 30, 30, 80], gamma=0.3),
    "exponential": lambda o: S.ExponentialLR(o, gamma=0.97),
    "cosine": lambda o: S.CosineAnnealingLR(o, T_max=30, eta_min=0.01),
    "linear": lambda o: S.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=40),
    "constant": lambda o: S.ConstantLR(o, factor=0.4, total_iters=25),
    "polynomial": lambda o: S.PolynomialLR(o, total_iters=60, power=2.0),
    "lambda": lambda o: S.LambdaLR(o, lambda e: 1.0 / (1 + e)),
    "multiplicative": lambda o: S.MultiplicativeLR(o, lambda e: 0.99),
    "onecycle": lambda o: S.OneCycleLR(o, max_lr=0.5, total_steps=101),
    "onecycle_linear_3phase": lambda o: S.OneCycleLR(o, max_lr=0.3, total_steps=120, pct_start=0.25,
                                                     anneal_strategy="linear", three_phase=True),
    "cyclic": lambda o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=10, step_size_down=15),
    "cyclic_tri2": lambda o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=8, mode="triangular2"),
    "cyclic_exp": lambda o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=8, mode="exp_range", gamma=0.99),
    "warm_restarts": lambda o: S.CosineAnnealingWarmRestarts(o, T_0=10, T_mult=2, eta_min=0.001),
}
for name, make in SCHEDULERS.items():
    opt = O.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    sched = make(opt)
    lrs = []
    for _ in range(100):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    T[f"sched.{name}"] = torch.tensor(lrs, dtype=torch.float64)
    T[f"sched.{name}.final_momentum"] = torch.tensor([opt.param_groups[0]["momentum"]], dtype=torch.float64)

# ChainedScheduler: ExponentialLR then StepLR on the same optimizer.
opt = O.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
chain = S.ChainedScheduler([S.ExponentialLR(opt, gamma=0.98), S.StepLR(opt, step_size=9, gamma=0.5)])
lrs = []
for _ in range(100):
    lrs.append(opt.param_groups[0]["lr"])
    opt.step()
    chain.step()
T["sched.chained"] = torch.tensor(lrs, dtype=torch.float64)

# SequentialLR: linear warm-up, then cosine, then exponential.
opt = O.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
seq = S.SequentialLR(opt, [S.LinearLR(opt, start_factor=0.1, total_iters=10), S.CosineAnnealingLR(opt, T_max=40),
                           S.ExponentialLR(opt, gamma=0.95)], milestones=[10, 50])
lrs = []
for _ in range(100):
    lrs.append(opt.param_groups[0]["lr"])
    opt.step()
    seq.step()
T["sched.sequential"] = torch.tensor(lrs, dtype=torch.float64)

metrics = torch.cat([torch.linspace(1.0, 0.5, 20), torch.full((30,), 0.5), torch.linspace(0.5, 0.4, 10),
                     torch.full((40,), 0.45)]).double()
T["plateau.metrics"] = metrics
for name, kw in {"plateau_min": dict(patience=3, factor=0.5, cooldown=2, min_lr=0.001),
                 "plateau_max_abs": dict(mode="max", patience=2, factor=0.3, threshold=0.01,
                                         threshold_mode="abs")}.items():
    opt = O.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched = S.ReduceLROnPlateau(opt, **kw)
    lrs = []
    for m in metrics.tolist():
        sched.step(m)
        lrs.append(opt.param_groups[0]["lr"])
    T[f"sched.{name}"] = torch.tensor(lrs, dtype=torch.float64)

here = os.path.dirname(os.path.abspath(__file__))
write_safetensors(os.path.join(here, "..", "fixtures", "optim_parity.safetensors"), T)
