"""The recipe's models: log-mel spectrogram in, any clip length >= 1 s (pooled over time), waveform
(B, samples) at 16 kHz as input, the front end and SpecAugment inside the model.

`LogMelCNN`: 3x3 conv blocks with average pooling, then mean + max over time. `LogMelTransformer`: a
conv stem pools frequency away but keeps time, so each token is one moment of the clip (80 ms) and
the attention maps say "when"; a CLS token and 2 encoder blocks. Both return logits, or with
`return_dict=True` also the embedding and (transformer) the attention (B, blocks, heads, T+1, T+1).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from .augment import SpecMask
from .frontend import LogMel, at_least


@dataclass(frozen=True)
class LogMelConfig:
    """The front end and SpecAugment, shared by both families."""

    name: str = "logmel-cnn"
    n_classes: int = 10
    sample_rate: int = 16000
    n_mels: int = 64
    n_fft: int = 1024
    hop: int = 320           # 20 ms frames
    freq_masks: int = 2
    freq_width: int = 8
    time_masks: int = 2
    time_frac: float = 0.1
    floor: int = 0           # 1: a second input channel, each band above its noise floor (frontend.LogMel)

    def __post_init__(self) -> None:  # a checkpoint's lists back to tuples (hashable, comparable)
        for f in fields(self):
            if isinstance(getattr(self, f.name), list):
                object.__setattr__(self, f.name, tuple(getattr(self, f.name)))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LogMelCNNConfig(LogMelConfig):
    widths: tuple[int, ...] = (32, 64, 128, 256)
    convs_per_block: int = 2
    dropout: float = 0.3


@dataclass(frozen=True)
class LogMelTransformerConfig(LogMelConfig):
    name: str = "logmel-transformer"
    stem_widths: tuple[int, ...] = (32, 64, 128)
    stem_time_pool: tuple[int, ...] = (2, 2, 1)  # tokens every 2*2*1 frames = 80 ms
    d_model: int = 128
    heads: int = 2
    blocks: int = 2
    ff_mult: int = 2
    dropout: float = 0.1
    head_dropout: float = 0.3


def _front(c: LogMelConfig) -> tuple[LogMel, SpecMask]:
    return (LogMel(c.sample_rate, c.n_mels, c.n_fft, c.hop, floor=bool(c.floor)),
            SpecMask(c.freq_masks, c.freq_width, c.time_masks, c.time_frac))


class ConvBlock(nn.Module):
    """`n` x (3x3 conv, BatchNorm, ReLU), then average pooling by `pool` (F, T)."""

    def __init__(self, c_in: int, c_out: int, n: int, pool: tuple[int, int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(n):
            layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1, bias=False),
                       nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, F, T)
        x = self.body(x)  # (B, C_out, F, T)
        return F.avg_pool2d(x, self.pool, ceil_mode=True) if self.pool != (1, 1) else x


class LogMelModel(nn.Module):
    """What both recipe models share: a waveform of any length in; its log-mel in dB (`db`, nothing learnt,
    so the fold models of a run can share it: `inference.predict_waves`), then the model proper (`from_db`)."""

    takes_waveform = True
    config: LogMelConfig
    logmel: LogMel

    def db(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, samples) -> (B, F, T), a clip under 1 s tiled to 1 s first."""
        return self.logmel.db(at_least(wave, self.config.sample_rate))

    def forward(self, wave: torch.Tensor, return_dict: bool = False):
        return self.from_db(self.db(wave), return_dict)

    def from_db(self, db: torch.Tensor, return_dict: bool = False):
        raise NotImplementedError


class LogMelCNN(LogMelModel):
    def __init__(self, config: LogMelCNNConfig) -> None:
        super().__init__()
        self.config = config
        self.logmel, self.specmask = _front(config)
        chans = (self.logmel.channels, *config.widths)
        self.blocks = nn.Sequential(*[ConvBlock(chans[i], chans[i + 1], config.convs_per_block, (2, 2))
                                      for i in range(len(config.widths))])
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.widths[-1], config.n_classes)

    def from_db(self, db: torch.Tensor, return_dict: bool = False):
        x = self.specmask(self.logmel.normalise(db))  # (B, 1 or 2, F, T)
        x = self.blocks(x).mean(dim=2)  # (B, C, T'): frequency pooled
        emb = x.mean(dim=2) + x.amax(dim=2)  # (B, C): mean + max over time
        logits = self.head(self.dropout(emb))  # (B, classes)
        return {"logits": logits, "embedding": emb, "attention": None} if return_dict else logits


class EncoderBlock(nn.Module):
    """Pre-norm transformer block; attention written out when its weights are asked for."""

    def __init__(self, d: int, heads: int, ff_mult: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.p = heads, dropout
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ff = nn.Sequential(nn.Linear(d, ff_mult * d), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff_mult * d, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, need_weights: bool = False):  # (B, N, D)
        b, n, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # (B, H, N, Dh)
        p = self.p if self.training else 0.0
        if need_weights:
            att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // self.heads), dim=-1)  # (B, H, N, N)
            y = F.dropout(att, p, self.training) @ v
        else:
            att, y = None, F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        x = x + self.drop(self.proj(y.transpose(1, 2).reshape(b, n, d)))
        return x + self.drop(self.ff(self.ln2(x))), att


def sinusoid(n: int, d: int, device: torch.device) -> torch.Tensor:
    pos = torch.arange(n, device=device, dtype=torch.float32)[:, None]
    ang = pos / 10000.0 ** (torch.arange(0, d, 2, device=device, dtype=torch.float32) / d)
    pe = torch.zeros(n, d, device=device)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(ang), torch.cos(ang)
    return pe  # (N, D): any number of tokens, so any clip length


class LogMelTransformer(LogMelModel):
    def __init__(self, config: LogMelTransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.logmel, self.specmask = _front(config)
        chans = (self.logmel.channels, *config.stem_widths)
        self.stem = nn.Sequential(*[ConvBlock(chans[i], chans[i + 1], 1, (2, config.stem_time_pool[i]))
                                    for i in range(len(config.stem_widths))])
        self.to_tokens = nn.Linear(config.stem_widths[-1], config.d_model)
        self.cls = nn.Parameter(torch.zeros(1, 1, config.d_model))
        self.enc = nn.ModuleList(EncoderBlock(config.d_model, config.heads, config.ff_mult, config.dropout)
                                 for _ in range(config.blocks))
        self.ln = nn.LayerNorm(config.d_model)
        self.dropout = nn.Dropout(config.head_dropout)
        self.head = nn.Linear(2 * config.d_model, config.n_classes)

    @property
    def token_seconds(self) -> float:
        """How much of the clip one token covers."""
        return self.config.hop * math.prod(self.config.stem_time_pool) / self.config.sample_rate

    def from_db(self, db: torch.Tensor, return_dict: bool = False):
        x = self.stem(self.specmask(self.logmel.normalise(db)))  # (B, C, F', T')
        x = self.to_tokens((x.amax(dim=2) + x.mean(dim=2)).transpose(1, 2))  # (B, T', D): one token a moment
        b, t, d = x.shape
        x = torch.cat([self.cls.expand(b, -1, -1), x + sinusoid(t, d, x.device)], 1)  # (B, T'+1, D)
        attention = []
        for block in self.enc:
            x, att = block(x, need_weights=return_dict)
            attention.append(att)
        x = self.ln(x)
        emb = torch.cat([x[:, 0], x[:, 1:].mean(1)], 1)  # (B, 2D): CLS and the mean token
        logits = self.head(self.dropout(emb))
        if not return_dict:
            return logits
        return {"logits": logits, "embedding": emb, "attention": torch.stack(attention, 1)}  # (B, blocks, H, T'+1, T'+1)
