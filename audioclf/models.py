"""The report's two architectures on raw 16 kHz audio.

Both take x of shape (B, 1, 144000): nine one-second windows stacked end to end. `forward` returns
logits (B, n_classes); `forward(x, return_dict=True)` also returns the embedding and, for the
transformer, the attention weights.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from .logmel import LogMelCNN, LogMelCNNConfig, LogMelTransformer, LogMelTransformerConfig


@dataclass(frozen=True)
class ModelConfig:
    name: str = "cnn"            # a key of MODELS
    n_classes: int = 10
    heads: int = 4               # transformer only (an Option: chosen per training config)
    blocks: int = 2              # transformer only
    ff_dim: int = 1388           # transformer only; see CNNTransformer
    dropout: float = 0.1         # transformer only

    def to_dict(self) -> dict:
        return asdict(self)


class Trunk(nn.Sequential):
    """Four Conv1d -> ReLU -> MaxPool1d(5) -> BatchNorm1d blocks, then AdaptiveAvgPool1d(128).

    (B, 1, 144000) -> (B, 64, 128). The modules are the report's, in its order (so are the checkpoint
    keys); `forward` computes the same function in less time:
    - it max-pools before the ReLU: the two commute (ReLU is monotonic, and a block whose maximum is
      not positive gets no gradient either way), so the ReLU touches a fifth of the samples;
    - when training on CPU it runs each conv and pool as 2-D ops on channels-last (B, C, 1, L) tensors
      (`conv_pool_nhwc`). oneDNN's channels-last convolutions sum in another order, so outputs and
      gradients agree with the report's order to float rounding, not bit for bit. Inference, and
      training on a GPU, take the (B, C, L) path, which is bit for bit the report's order (the shipped
      reference evaluations reproduce exactly).
    A training step on 2 cores (batch 32, forward + backward + Adam): docs/cpu_step.md
    (`python bench/cpu_step.py`), with the alternatives measured against it. `tests/test_models.py`
    checks both paths against the modules called in the report's order.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *blocks, average = self
        nhwc = (self.training and torch.is_grad_enabled() and x.device.type == "cpu"
                and torch.backends.mkldnn.is_available())  # measured with oneDNN only
        for i in range(0, len(blocks), 4):
            conv, relu, pool, norm = blocks[i:i + 4]
            x = conv_pool_nhwc(x, conv, pool.kernel_size) if nhwc else F.max_pool1d(conv(x), pool.kernel_size)
            x = norm(relu(x))
        return average(x)


def conv_pool_nhwc(x: torch.Tensor, conv: nn.Conv1d, k: int) -> torch.Tensor:
    """max_pool1d(conv(x), k) for x (B, C, L), computed channels-last; returns (B, C_out, L // k).

    Why, measured in docs/cpu_step.md (2 cores, batch 32): max_pool2d's channels-last kernel, with the
    indices that autograd needs, vectorises over channels, where the (B, C, L) kernels run along 5
    samples at a time (block 1, forward + backward: 22 ms against 71 for reshape + max and 98 for
    max_pool1d), and oneDNN's channels-last convolutions are faster too. A whole training step: 373
    against 500 ms (transformer, 4 heads), 219 against 340 ms (CNN). BatchNorm stays on (B, C, L): its
    channels-last CPU kernel sums in float32 in one pass and moved the gradients by up to 14 % (ibid.).
    """
    y = F.conv2d(_nhwc(x.unsqueeze(2)), _nhwc(conv.weight.unsqueeze(2)), conv.bias, padding=(0, conv.padding[0]))
    return _ChannelsFirst.apply(F.max_pool2d(y, (1, k)))


class _ChannelsFirst(torch.autograd.Function):
    """(B, C, 1, L) channels-last -> (B, C, L) contiguous, with the gradient sent back channels-last.
    `.squeeze(2).contiguous()` would send it back (B, C, L)-ordered, and the backward passes would copy
    it, up to the conv output's 147 MB gradient: a training step 13 % (transformer) and 24 % (CNN)
    slower in docs/cpu_step.md."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.squeeze(2).contiguous()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return _nhwc(grad.unsqueeze(2))


def _nhwc(t: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) with channels-last strides. `contiguous(memory_format=torch.channels_last)` leaves a
    one-channel tensor as it is (both layouts fit it) and oneDNN then answers in NCHW; these strides
    say NHWC (for one channel they address the same memory)."""
    n, c, h, w = t.shape
    return t.contiguous(memory_format=torch.channels_last).as_strided(t.shape, (h * w * c, 1, w * c, c))


def trunk() -> Trunk:
    layers: list[nn.Module] = []
    for c_in, c_out, k in [(1, 8, 11), (8, 16, 11), (16, 32, 7), (32, 64, 5)]:
        layers += [nn.Conv1d(c_in, c_out, k, padding=k // 2), nn.ReLU(), nn.MaxPool1d(5), nn.BatchNorm1d(c_out)]
    layers.append(nn.AdaptiveAvgPool1d(128))
    return Trunk(*layers)


class SeedCNN(nn.Module):
    """The report's architecture 1: trunk, flatten, Linear(8192, 64) -> ReLU -> Linear(64, classes).
    540,682 parameters for 10 classes."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.features = trunk()
        self.hidden = nn.Linear(64 * 128, 64)
        self.out = nn.Linear(64, config.n_classes)

    def forward(self, x: torch.Tensor, return_dict: bool = False):
        h = self.features(x).flatten(1)  # (B, 8192)
        emb = F.relu(self.hidden(h))  # (B, 64)
        logits = self.out(emb)  # (B, classes)
        return {"logits": logits, "embedding": emb, "attention": None} if return_dict else logits


class SelfAttention(nn.Module):
    """Multi-head self-attention written out so that its weights can be returned.

    The fused kernel (scaled_dot_product_attention) is used when the weights are not asked for; both
    paths compute the same function.
    """

    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        assert d % heads == 0, "width must divide into the heads"
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, need_weights: bool = False):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))  # (B, H, T, hd)
        p = self.dropout if self.training else 0.0
        if need_weights:
            att = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))  # (B, H, T, T)
            att = att.softmax(dim=-1)
            y = F.dropout(att, p, self.training) @ v  # (B, H, T, hd)
        else:
            att = None
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        return self.proj(y), att


class EncoderBlock(nn.Module):
    """Pre-norm transformer encoder block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, d: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = SelfAttention(d, heads, dropout)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, ff_dim), nn.GELU(), nn.Linear(ff_dim, d), nn.Dropout(dropout))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, need_weights: bool = False):
        a, att = self.attn(self.ln1(x), need_weights)
        x = x + self.drop(a)
        x = x + self.mlp(self.ln2(x))
        return x, att


class CNNTransformer(nn.Module):
    """The report's architecture 2: the CNN trunk's 128 time steps as tokens of width 64, a trainable
    CLS token and position embedding, `blocks` encoder blocks, an MLP head on the CLS output.

    The report gives ~421K parameters but not the feed-forward width; ff_dim=1388 makes 421,090 for
    10 classes. The count does not depend on the number of heads (they split the same width).
    """

    d = 64
    tokens = 128

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.features = trunk()
        self.cls = nn.Parameter(torch.zeros(1, 1, self.d))
        self.pos = nn.Parameter(torch.randn(1, self.tokens + 1, self.d) * 0.02)
        self.blocks = nn.ModuleList(
            EncoderBlock(self.d, config.heads, config.ff_dim, config.dropout) for _ in range(config.blocks))
        self.head = nn.Sequential(nn.LayerNorm(self.d), nn.Linear(self.d, self.d), nn.GELU(),
                                  nn.Linear(self.d, config.n_classes))

    def forward(self, x: torch.Tensor, return_dict: bool = False):
        tok = self.features(x).transpose(1, 2)  # (B, 128, 64)
        h = torch.cat([self.cls.expand(tok.size(0), -1, -1), tok], dim=1) + self.pos  # (B, 129, 64)
        attention = []
        for block in self.blocks:
            h, att = block(h, need_weights=return_dict)
            attention.append(att)
        emb = h[:, 0]  # (B, 64): the CLS output
        logits = self.head(emb)  # (B, classes)
        if not return_dict:
            return logits
        return {"logits": logits, "embedding": emb, "attention": torch.stack(attention, dim=1)}  # (B, blocks, H, 129, 129)


@dataclass(frozen=True)
class Option:
    """A model setting a user can choose (e.g. the transformer's heads): default and allowed values."""

    default: int
    choices: tuple[int, ...]
    help: str = ""
    invalid: str = "is not allowed"  # the error after the value, e.g. "3 heads do not divide ..."
    title: str = ""                  # what a form calls it (default: the name)
    names: tuple[str, ...] = ()      # what a form shows for each choice (default: the number)


@dataclass(frozen=True)
class ModelSpec:
    """Everything the rest of audioclf needs to know about a model family.

    `cls` is built from a `ModelConfig`; `lr` is its default learning rate; `options` are the settings
    a training config may choose (they become ModelConfig fields and CLI flags); `attention` says
    that `forward(x, return_dict=True)` returns attention weights (the Attention page lists it).
    """

    cls: type[nn.Module]
    lr: float
    description: str
    options: dict[str, Option] = field(default_factory=dict)
    attention: bool = False
    config: type = ModelConfig  # the family's config dataclass (fields: name, n_classes, its options)
    training: dict = field(default_factory=dict)  # TrainConfig defaults of the family (e.g. the recipe's)

    def label(self, name: str, options: dict[str, int]) -> str:
        """A run's human name: the family, then its heads and its other options away from their defaults,
        e.g. 'transformer-4h', 'logmel-cnn-floor1'."""
        shown = {k: v for k, v in options.items() if k == "heads" or v != self.options[k].default}
        parts = [name] + [f"{v}h" if k == "heads" else f"{k}{v}" for k, v in sorted(shown.items())]
        return "-".join(parts)


# The recipe's training (audioclf.train): augmented 3 s crops, mixup, label smoothing, one-cycle AdamW, bf16.
RECIPE = {"optimizer": "adamw", "schedule": "onecycle", "weight_decay": 0.05, "label_smoothing": 0.05,
          "augment": "recipe", "precision": "bf16", "epochs": 120}

HEADS = Option(4, (1, 2, 4, 8, 16, 32, 64), "attention heads: they split the token width 64",
               invalid="heads do not divide the token width 64")

MODELS: dict[str, ModelSpec] = {
    "cnn": ModelSpec(SeedCNN, lr=0.01, description="the report's 1D CNN on the raw waveform: four conv blocks, "
                     "then two linear layers"),
    "transformer": ModelSpec(CNNTransformer, lr=0.001, options={"heads": HEADS}, attention=True,
                             description="the same CNN trunk, its 128 time steps as tokens for 2 transformer "
                                         "blocks with a CLS token"),
    "logmel-cnn": ModelSpec(LogMelCNN, lr=0.003, config=LogMelCNNConfig, training=RECIPE,
                            options={"floor": Option(0, (0, 1), "1: a second input channel, each mel band in dB "
                                                     "above its own noise floor (an experiment; docs/results.md)",
                                                     invalid="is not 0 or 1", title="Noise-floor channel",
                                                     names=("off", "on"))},
                            description="the recipe: log-mel spectrogram, 4 blocks of two 3x3 convolutions, "
                                        "mean + max over time; augmented, one-cycle AdamW"),
    "logmel-transformer": ModelSpec(LogMelTransformer, lr=0.003, config=LogMelTransformerConfig, training=RECIPE,
                                    options={"heads": Option(2, (1, 2, 4), "attention heads",
                                                             invalid="heads are not 1, 2 or 4")},
                                    attention=True,
                                    description="the recipe's conv stem on the log-mel spectrogram, one token "
                                                "per 80 ms for 2 transformer blocks with a CLS token"),
}


def spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    return MODELS[name]


def model_config(name: str, n_classes: int, **options: int):
    """The family's config for `n_classes` and its chosen options (a ModelConfig by default)."""
    return spec(name).config(name=name, n_classes=n_classes, **options)


def config_from_dict(d: dict):
    """A model config from its `to_dict()` (as stored in every checkpoint)."""
    return spec(d.get("name", "")).config(**d)


def build_model(config) -> nn.Module:
    return spec(config.name).cls(config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
