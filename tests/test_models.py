import pytest
import torch

from audioclf.models import MODELS, CNNTransformer, ModelConfig, SeedCNN, build_model, count_parameters


def test_seed_cnn_has_the_reports_parameter_count():
    assert count_parameters(SeedCNN(ModelConfig("cnn"))) == 540_682


def test_transformer_parameter_count_is_about_421k_for_every_head_count():
    counts = {h: count_parameters(CNNTransformer(ModelConfig("transformer", heads=h))) for h in (1, 2, 4)}
    assert len(set(counts.values())) == 1
    assert abs(counts[4] - 421_000) < 2_000


@pytest.mark.parametrize("name", list(MODELS))
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
