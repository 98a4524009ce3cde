import pytest
import torch
import torch.nn as nn

from audioclf import models
from audioclf.models import (CNNTransformer, ModelConfig, SeedCNN, build_model, conv_pool_nhwc,
                             count_parameters, trunk)


def test_seed_cnn_has_the_reports_parameter_count():
    assert count_parameters(SeedCNN(ModelConfig("cnn"))) == 540_682


def test_transformer_parameter_count_is_about_421k_for_every_head_count():
    counts = {h: count_parameters(CNNTransformer(ModelConfig("transformer", heads=h))) for h in (1, 2, 4)}
    assert len(set(counts.values())) == 1
    assert abs(counts[4] - 421_000) < 2_000


def _outputs_and_grads(net: nn.Module, x: torch.Tensor, g: torch.Tensor | None = None):
    out = net(x)
    g = torch.randn_like(out, generator=torch.Generator().manual_seed(1)) if g is None else g
    return out, torch.autograd.grad(out, list(net.parameters()), g)


@pytest.mark.parametrize("length", [144000, 14003])  # 14003: pools that drop a tail
def test_trunk_outside_cpu_training_is_bit_for_bit_the_reports_module_order(length):
    # eval mode with autograd on: the (B, C, L) path that inference and GPU training take
    fast = trunk().eval()
    plain = nn.Sequential(*fast)  # the same modules, called one after another
    x = torch.randn(4, 1, length)
    out_fast, grads_fast = _outputs_and_grads(fast, x)
    out_plain, grads_plain = _outputs_and_grads(plain, x)
    assert torch.equal(out_fast, out_plain)
    assert all(torch.equal(a, b) for a, b in zip(grads_fast, grads_plain))


@pytest.mark.parametrize("length", [144000, 14003])
def test_trunk_cpu_training_runs_channels_last_and_matches_the_reports_module_order(length, monkeypatch):
    calls = []
    monkeypatch.setattr(models, "conv_pool_nhwc", lambda *a: calls.append(a) or conv_pool_nhwc(*a))
    fast = trunk().train()
    plain = nn.Sequential(*fast)
    x = torch.randn(4, 1, length)
    out_fast, grads_fast = _outputs_and_grads(fast, x)
    out_plain, grads_plain = _outputs_and_grads(plain, x)
    assert len(calls) == 4  # every block took the channels-last path
    # the same function up to the order of float sums (~1e-6; a wrong offset or tail would be O(1))
    assert torch.allclose(out_fast, out_plain, rtol=1e-4, atol=1e-4)
    for a, b in zip(grads_fast, grads_plain):
        assert (a - b).abs().max() <= 1e-3 * b.abs().max()


@pytest.mark.parametrize("name", ["cnn", "transformer"])  # the report's models; the recipe's: test_recipe.py
def test_models_map_report_input_to_logits(name):
    model = build_model(ModelConfig(name, n_classes=7)).eval()
    x = torch.randn(2, 1, 144000)
    out = model(x, return_dict=True)
    assert model(x).shape == (2, 7)
    assert torch.allclose(out["logits"], model(x), atol=1e-5)
    assert out["embedding"].shape == (2, 64)


@pytest.mark.parametrize("heads", [1, 2, 4])
def test_transformer_returns_attention_per_block_and_head(heads):
    model = build_model(ModelConfig("transformer", heads=heads)).eval()
    att = model(torch.randn(3, 1, 144000), return_dict=True)["attention"]
    assert att.shape == (3, 2, heads, 129, 129)
    assert torch.allclose(att.sum(-1), torch.ones(3, 2, heads, 129), atol=1e-5)  # softmax rows


def test_unknown_model_name_is_refused():
    with pytest.raises(ValueError, match="unknown model"):
        build_model(ModelConfig("resnet"))
