"""Training steps replayed from CUDA graphs: one launch for a batch's forward and backward pass.

On a GPU these models are too small to keep it busy: a recipe step is ~340 kernels of a few microseconds
each, and the CPU issuing them from Python, not the GPU, sets the pace (docs/benchmarks.md, GPU section).
A CUDA graph records the kernels of one step once and replays them with a single launch. Shapes are fixed
in a graph, so there is one per batch shape (batch size, crop length): six for the recipe.

What is captured: the batch gathered from the clips on the device, its augmentation, the forward pass, the
loss, the gradients (copied into the parameters' `.grad`, which stay at fixed addresses) and the epoch's
running loss and accuracy. What is not: the optimizer's step and the learning-rate schedule, which run as
usual after each replay, so that the schedule's learning rate and momentum reach the optimizer as they
always do (a captured fused Adam would keep the momentum of the moment of capture).

`GraphedSteps(..., capture=False)` runs the same steps without graphs (the CPU's way, and the fallback if
a capture fails): the tests check on the CPU that it trains bit for bit as the plain loop does.
"""
from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

import torch
from torch import nn

# (loss, logits, labels) of the batch `idx` cropped to `crop` seconds; `autocast_cache` False under capture
BatchLoss = Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor]]

# One warm-up and capture at a time in a process: fold models trained at once in threads share the CUDA
# random generator, whose offsets a capture records ("Offset increment outside graph capture" if another
# thread's replay moves it meanwhile, measured), and autograd's device thread. Replays and reseeding the
# generators (`exclusive`) wait for a capture to end too.
_CAPTURE = threading.Lock()


def exclusive() -> threading.Lock:
    """Held while this process captures a graph: hold it to reseed the random generators."""
    return _CAPTURE


class GraphedSteps:
    """Forward and backward passes of training batches, one CUDA graph per batch shape.

    Call it with the batch's clip indices (on the device) and crop length; then the parameters' `.grad`
    hold the batch's gradients for the optimizer. `take_totals()` returns and resets the summed loss and
    the count of correct answers since the last call.
    """

    def __init__(self, model: nn.Module, batch_loss: BatchLoss, capture: bool = True) -> None:
        self.model, self.batch_loss = model, batch_loss
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.device = self.params[0].device
        self.capture = capture and self.device.type == "cuda"
        for p in self.params:  # fixed addresses: each replay writes here and the optimizer reads here
            p.grad = torch.zeros_like(p)
        self.total_loss = torch.zeros((), dtype=torch.float64, device=self.device)
        self.correct = torch.zeros((), dtype=torch.int64, device=self.device)
        # per batch shape: the indices it reads, how to run it, whether from a graph
        self._steps: dict[tuple[int, float | None], tuple[torch.Tensor, Callable[[], object], bool]] = {}
        self.graphs = 0  # how many batch shapes replay from a captured graph
        self.record_s = 0.0  # seconds spent warming up and capturing

    def __call__(self, idx: torch.Tensor, crop: float | None) -> None:
        key = (len(idx), crop)
        if key not in self._steps:
            self._steps[key] = self._record(len(idx), crop)
        static_idx, replay, captured = self._steps[key]
        static_idx.copy_(idx)
        if captured:
            with _CAPTURE:  # a replay advances the shared random generator, which must not move during a capture
                replay()
        else:  # uncaptured: its random draws are ordinary ones
            replay()

    def take_totals(self) -> tuple[torch.Tensor, torch.Tensor]:
        totals = self.total_loss.clone(), self.correct.clone()
        self.total_loss.zero_()
        self.correct.zero_()
        return totals

    def _body(self, idx: torch.Tensor, crop: float | None, total: torch.Tensor, correct: torch.Tensor,
              autocast_cache: bool = True) -> None:
        loss, logits, labels = self.batch_loss(idx, crop, autocast_cache=autocast_cache)
        grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        for p, g in zip(self.params, grads):
            if g is None:
                p.grad.zero_()
            else:
                p.grad.copy_(g)
        total += loss.detach().double() * len(idx)
        correct += (logits.argmax(1) == labels).sum()

    def _record(self, n: int, crop: float | None) -> tuple[torch.Tensor, Callable[[], object], bool]:
        t0 = time.perf_counter()
        try:
            with _CAPTURE:
                return self._record_locked(n, crop)
        finally:
            self.record_s += time.perf_counter() - t0

    def _record_locked(self, n: int, crop: float | None) -> tuple[torch.Tensor, Callable[[], object], bool]:
        idx = torch.zeros(n, dtype=torch.long, device=self.device)  # overwritten before each replay
        self._warm_up(idx, crop)
        if self.capture:
            try:
                graph = torch.cuda.CUDAGraph()
                # thread_local: another thread's allocations and reads do not break this capture
                with torch.cuda.graph(graph, stream=torch.cuda.Stream(self.device), capture_error_mode="thread_local"):
                    self._body(idx, crop, self.total_loss, self.correct, autocast_cache=False)
                self.graphs += 1
                return idx, graph.replay, True
            except Exception as e:  # a kernel that cannot be captured: train on, without graphs
                print(f"audioclf: warning: CUDA graph capture failed ({type(e).__name__}: {str(e)[:200]}); "
                      "training goes on without graphs", file=sys.stderr)
                self.capture = False
                torch.cuda.synchronize(self.device)
        return idx, lambda: self._body(idx, crop, self.total_loss, self.correct), False

    def _warm_up(self, idx: torch.Tensor, crop: float | None) -> None:
        """One pass of this shape outside any capture, so that cuDNN, cuBLAS and cuFFT choose their kernels
        and make their plans first; the BatchNorm statistics (and on the CPU the random stream) it moved are
        put back, so the warm-up leaves no trace in training."""
        buffers = [b.detach().clone() for b in self.model.buffers()]
        rng = torch.get_rng_state() if self.device.type == "cpu" else None
        scratch = torch.zeros_like(self.total_loss), torch.zeros_like(self.correct)
        if self.capture:
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                self._body(idx, crop, *scratch)
            torch.cuda.current_stream(self.device).wait_stream(side)
        else:
            self._body(idx, crop, *scratch)
        with torch.no_grad():
            for b, saved in zip(self.model.buffers(), buffers):
                b.copy_(saved)
        if rng is not None:
            torch.set_rng_state(rng)
