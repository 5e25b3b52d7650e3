"""PyTorch twins of the cyclecast models, for the train-vs-PyTorch benchmark.

Each twin computes exactly what its C++ model computes (models/include/cyclecast/models/*.h) and
names its tensors like the C++ layout, so that it can start from the very weights the C++ run
started from (params.f32 + layout.txt written by train_bench --dump).
"""
import math
import time

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F


def load_dump(directory, input_len=100, horizon=100):
    inputs = np.fromfile(f"{directory}/inputs.f32", dtype=np.float32).reshape(-1, input_len)
    targets = np.fromfile(f"{directory}/targets.f32", dtype=np.float32).reshape(-1, horizon)
    flat = np.fromfile(f"{directory}/params.f32", dtype=np.float32)
    tensors = {}
    with open(f"{directory}/layout.txt") as f:
        for line in f:
            name, rows, cols, offset = line.split()
            rows, cols, offset = int(rows), int(cols), int(offset)
            # C++ stores rows x cols column-major.
            block = flat[offset:offset + rows * cols].reshape(cols, rows).T
            tensors[name] = np.ascontiguousarray(block)
    return torch.from_numpy(inputs), torch.from_numpy(targets), tensors


class Recurrent(nn.Module):
    """W h for dense W or diag(d) + U V^T."""

    def __init__(self, n, rank):
        super().__init__()
        self.rank = rank
        if rank == 0:
            self.weight = nn.Parameter(torch.zeros(n, n))
        else:
            self.diag = nn.Parameter(torch.zeros(n))
            self.u = nn.Parameter(torch.zeros(n, rank))
            self.v = nn.Parameter(torch.zeros(n, rank))

    def forward(self, h):  # h: B x n
        if self.rank == 0:
            return h @ self.weight.T
        return h * self.diag + (h @ self.v) @ self.u.T

    def names(self, prefix):
        if self.rank == 0:
            return {f"{prefix}.weight": self.weight}
        return {f"{prefix}.diag": self.diag, f"{prefix}.u": self.u, f"{prefix}.v": self.v}


class Dlnet(nn.Module):
    def __init__(self, encoder_widths=(256,), hidden=128, steps=9, decoder_widths=(256, 128),
                 dropout=0.1, rank=0, input_len=100, horizon=100):
        super().__init__()
        self.steps = steps
        self.table = {}
        layers = []
        width = input_len
        for i, w in enumerate(list(encoder_widths) + [hidden]):
            last = i == len(encoder_widths)
            dense, norm = nn.Linear(width, w), nn.LayerNorm(w)
            self._name(f"encoder.{i}", dense, norm)
            layers += [dense, norm, nn.Tanh() if last else nn.ReLU()]
            if not last:
                layers.append(nn.Dropout(dropout))
            width = w
        self.encoder = nn.Sequential(*layers)
        self.alpha = nn.Parameter(torch.ones(hidden))
        self.beta = nn.Parameter(torch.ones(hidden))
        self.recurrent = Recurrent(hidden, rank)
        self.residual = nn.Parameter(torch.full((1, 1), 0.5))
        self.table.update({"liquid.alpha": self.alpha, "liquid.beta": self.beta,
                           "liquid.residual": self.residual})
        self.table.update(self.recurrent.names("liquid.recurrent"))
        layers = []
        for i, w in enumerate(decoder_widths):
            dense, norm = nn.Linear(width, w), nn.LayerNorm(w)
            self._name(f"decoder.{i}", dense, norm)
            layers += [dense, norm, nn.ReLU(), nn.Dropout(dropout)]
            width = w
        self.head = nn.Linear(width, horizon)
        self.table["decoder.head.weight"] = self.head.weight
        self.table["decoder.head.bias"] = self.head.bias
        self.decoder = nn.Sequential(*layers)

    def _name(self, prefix, dense, norm):
        self.table[f"{prefix}.dense.weight"] = dense.weight
        self.table[f"{prefix}.dense.bias"] = dense.bias
        self.table[f"{prefix}.norm.weight"] = norm.weight
        self.table[f"{prefix}.norm.bias"] = norm.bias

    def forward(self, x):
        h0 = self.encoder(x)
        u_bar = x.mean(dim=1, keepdim=True)
        dt = 1.0 / self.steps
        h = h0
        for _ in range(self.steps):
            h = h + dt * (-self.alpha * h + self.beta * torch.tanh(self.recurrent(h) + u_bar))
        return self.head(self.decoder(h + self.residual[0, 0] * h0))


class Ltc(nn.Module):
    def __init__(self, units=64, unfolds=6, input_len=100, horizon=100, elapsed_time=1.0):
        super().__init__()
        self.unfolds, self.input_len = unfolds, input_len
        self.rate = unfolds / elapsed_time
        z = lambda *shape: nn.Parameter(torch.zeros(*shape))
        self.input_w, self.input_b = z(1, 1), z(1, 1)
        self.s_mu, self.s_sigma, self.s_w, self.s_erev = z(1, units), z(1, units), z(1, units), z(1, units)
        self.mu, self.sigma, self.w, self.erev = z(units, units), z(units, units), z(units, units), z(units, units)
        self.gleak, self.vleak, self.cm = z(units, 1), z(units, 1), z(units, 1)
        self.head = nn.Linear(units, horizon)
        self.table = {
            "ltc.input.weight": self.input_w, "ltc.input.bias": self.input_b,
            "ltc.sensory.mu": self.s_mu, "ltc.sensory.sigma": self.s_sigma,
            "ltc.sensory.w": self.s_w, "ltc.sensory.erev": self.s_erev,
            "ltc.synapse.mu": self.mu, "ltc.synapse.sigma": self.sigma,
            "ltc.synapse.w": self.w, "ltc.synapse.erev": self.erev,
            "ltc.gleak": self.gleak, "ltc.vleak": self.vleak, "ltc.cm": self.cm,
            "head.weight": self.head.weight, "head.bias": self.head.bias}

    def forward(self, x):
        cm_t = F.softplus(self.cm[:, 0]) * self.rate
        gl = F.softplus(self.gleak[:, 0])
        vl = self.vleak[:, 0]
        sp_s, sp = F.softplus(self.s_w), F.softplus(self.w)
        v = torch.zeros(x.shape[0], self.mu.shape[0], dtype=x.dtype)
        for t in range(self.input_len):
            xin = x[:, t:t + 1] * self.input_w[0] + self.input_b[0]  # B x 1
            a = sp_s * torch.sigmoid(self.s_sigma * (xin[:, :, None] - self.s_mu))  # B x 1 x N
            sens_num = (a * self.s_erev).sum(1) + gl * vl
            sens_den = a.sum(1) + cm_t + gl + 1e-8
            for _ in range(self.unfolds):
                a = sp * torch.sigmoid(self.sigma * (v[:, :, None] - self.mu))  # B x N x N
                v = (cm_t * v + sens_num + (a * self.erev).sum(1)) / (sens_den + a.sum(1))
        return self.head(v)


class EulerStudent(nn.Module):
    def __init__(self, width=16, rank=0, input_len=100, horizon=100, step_size=1.0):
        super().__init__()
        self.input_len, self.dt = input_len, step_size
        self.input = nn.Linear(1, width)
        self.alpha = nn.Parameter(torch.zeros(width))
        self.beta = nn.Parameter(torch.zeros(width))
        self.recurrent = Recurrent(width, rank)
        self.head = nn.Linear(width, horizon)
        self.table = {"student.input.weight": self.input.weight,
                      "student.input.bias": self.input.bias,
                      "student.alpha": self.alpha, "student.beta": self.beta,
                      "head.weight": self.head.weight, "head.bias": self.head.bias}
        self.table.update(self.recurrent.names("student.recurrent"))

    def forward(self, x):
        drive = self.input(x[:, :, None])  # B x T x W
        keep = 1.0 - self.dt * self.alpha
        gain = self.dt * self.beta
        h = torch.zeros(x.shape[0], self.alpha.shape[0], dtype=x.dtype)
        for t in range(self.input_len):
            h = h * keep + gain * torch.tanh(self.recurrent(h) + drive[:, t])
        return self.head(h)


def build(arch, width, rank, unfolds):
    if arch == "dlnet":
        return Dlnet()
    if arch == "dlnet-student":
        return Dlnet(encoder_widths=(), hidden=width, steps=1, decoder_widths=(), dropout=0.0,
                     rank=rank)
    if arch == "ltc":
        return Ltc(units=width, unfolds=unfolds)
    if arch == "euler":
        return EulerStudent(width=width, rank=rank)
    raise ValueError(arch)


def load_weights(model, tensors):
    assert set(model.table) == set(tensors), (set(model.table) ^ set(tensors))
    with torch.no_grad():
        for name, p in model.table.items():
            p.copy_(torch.from_numpy(tensors[name]).reshape(p.shape))
    assert sum(p.numel() for p in model.parameters()) == sum(t.size for t in tensors.values())


def cosine_lr(base, minimum, step, total):
    if step >= total:
        return minimum
    return minimum + 0.5 * (base - minimum) * (1.0 + math.cos(math.pi * step / total))


def train(arch, directory, width, rank, unfolds, epochs, batch, lr, min_lr, weight_decay, clip,
          threads, seed=1):
    torch.set_num_threads(threads)
    # The C++ trainer flushes denormals to zero (models/src/worker_pool.h); so does PyTorch here,
    # or the LTC comparison would measure microcode assists rather than the frameworks.
    torch.set_flush_denormal(True)
    torch.manual_seed(seed)
    x, y, tensors = load_dump(directory)
    model = build(arch, width, rank, unfolds)
    load_weights(model, tensors)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=weight_decay)
    n = x.shape[0]
    batches = (n + batch - 1) // batch
    total = batches * epochs
    step = 0
    epoch_seconds, train_losses = [], []
    for _ in range(epochs):
        model.train()
        start = time.perf_counter()
        order = torch.randperm(n)
        running = 0.0
        for b in range(batches):
            idx = order[b * batch:(b + 1) * batch]
            for group in opt.param_groups:
                group["lr"] = cosine_lr(lr, min_lr, step, total)
            opt.zero_grad(set_to_none=True)
            loss = F.mse_loss(model(x[idx]), y[idx])
            loss.backward()
            if clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            running += loss.item()
            step += 1
        epoch_seconds.append(time.perf_counter() - start)
        train_losses.append(running / batches)
    model.eval()
    with torch.no_grad():
        final = sum(F.mse_loss(model(x[i:i + 256]), y[i:i + 256], reduction="sum").item()
                    for i in range(0, n, 256)) / (n * y.shape[1])
    return {"epoch_seconds": epoch_seconds, "train_losses": train_losses, "final_loss": final,
            "parameters": sum(p.numel() for p in model.parameters())}
