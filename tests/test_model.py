"""AudioSep model: the released checkpoint bit-exact, serialisation round trips, bad input."""
import numpy as np
import pytest
import torch
from asteroid.models import BaseModel
from asteroid.models import get as asteroid_get
from helpers import small_model_args

from asteroid_audiosep import AudioSep, AudioSepError
from asteroid_audiosep.encoders import PrecomputedQueryEncoder
from asteroid_audiosep.models import RELEASED_ARGS
from asteroid_audiosep.official import convert_official


def randomize_batchnorm(model, seed=0):
    """Non-trivial running statistics so that eval-mode outputs test BatchNorm loading."""
    g = torch.Generator().manual_seed(seed)
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.copy_(0.1 * torch.randn(mod.num_features, generator=g))
            mod.running_var.copy_(0.5 + torch.rand(mod.num_features, generator=g))
            mod.weight.data.copy_(1 + 0.1 * torch.randn(mod.num_features, generator=g))
            mod.bias.data.copy_(0.1 * torch.randn(mod.num_features, generator=g))
    return model


def test_released_checkpoint_reproduces_reference_output(official_ckpt, reference, tmp_path):
    package = convert_official(official_ckpt, tmp_path / "audiosep_base.pth")
    model = AudioSep.from_pretrained(str(package)).eval()
    vectors = np.load(reference / "official_forward_vectors.npz")
    mixture = torch.from_numpy(vectors["mixture"]).reshape(1, 1, -1)
    condition = torch.from_numpy(vectors["condition"]).reshape(1, -1)
    with torch.no_grad():
        out = model(mixture, condition)
    expected = torch.from_numpy(vectors["output"]).reshape(out.shape)
    assert out.shape == (1, 1, mixture.shape[-1])
    assert (out - expected).abs().max().item() <= 1e-4
    # The separated output is not trivially the input.
    assert (out - mixture).abs().max().item() > 1e-2


def test_registered_with_asteroid():
    assert asteroid_get("AudioSep") is AudioSep
    assert asteroid_get("audiosep") is AudioSep


@pytest.mark.parametrize(
    "args",
    [
        dict(RELEASED_ARGS),
        small_model_args(film_mode="gamma_beta", film_hidden_dim=32, in_channels=1),
    ],
    ids=["released", "small_gamma_beta"],
)
@pytest.mark.parametrize("loader", ["AudioSep", "BaseModel"])
def test_serialize_round_trip(args, loader, tmp_path):
    torch.manual_seed(0)
    model = randomize_batchnorm(AudioSep(**args, query_encoder={"type": "sentence"})).eval()
    path = tmp_path / "model.pth"
    torch.save(model.serialize(), path)
    # Packages hold plain types only: weights-only loading (torch's default) accepts them.
    package = torch.load(path, weights_only=True)
    assert package["model_name"] == "AudioSep"
    assert all(isinstance(v, str) for v in package["infos"]["software_versions"].values())
    cls = AudioSep if loader == "AudioSep" else BaseModel
    loaded = cls.from_pretrained(str(path)).eval()
    assert type(loaded) is AudioSep
    assert loaded.get_model_args() == model.get_model_args()
    assert loaded.query_encoder_spec == {"type": "sentence"}
    wav = torch.randn(2, 1, args["sample_rate"] // 2)
    cond = torch.randn(2, args["condition_dim"])
    with torch.no_grad():
        assert torch.equal(model(wav, cond), loaded(wav, cond))


def test_package_excludes_query_encoder_weights(tmp_path):
    model = AudioSep(**small_model_args())
    table = PrecomputedQueryEncoder(table={"dog": torch.ones(24), "cat": -torch.ones(24)})
    table.save(tmp_path / "table.pt")
    model.set_query_encoder(table)
    package = model.serialize()
    assert all(k.startswith("separator.") for k in package["state_dict"])
    assert package["model_args"]["query_encoder"] == {
        "type": "precomputed",
        "path": str(tmp_path / "table.pt"),
        "embed_dim": 24,
    }
    # The encoder is rebuilt from its spec on first use.
    loaded = AudioSep.from_pretrained(package)
    assert torch.equal(loaded.embed_queries(["cat"]), -torch.ones(1, 24))


@pytest.mark.parametrize("length", [1, 999, 16000, 16001])
def test_output_has_input_length(length):
    model = AudioSep(**small_model_args()).eval()
    with torch.no_grad():
        out = model(torch.randn(3, length), torch.randn(3, 24))
    assert out.shape == (3, 1, length)
    assert torch.isfinite(out).all()


def test_condition_changes_output():
    torch.manual_seed(1)
    model = randomize_batchnorm(AudioSep(**small_model_args())).eval()
    wav = torch.randn(1, 1, 8000).repeat(2, 1, 1)
    with torch.no_grad():
        out = model(wav, torch.randn(2, 24))
    assert (out[0] - out[1]).abs().max() > 1e-4


def test_forward_wav_and_asteroid_separate_with_text_query(tmp_path):
    torch.manual_seed(2)
    model = randomize_batchnorm(AudioSep(**small_model_args())).eval()
    emb = torch.randn(2, 24)
    model.set_query_encoder(PrecomputedQueryEncoder(table={"dog": emb[0], "siren": emb[1]}))
    wav = torch.randn(1, 1, 4000)
    with torch.no_grad():
        direct = model(wav, emb[:1])
        via_query = model.forward_wav(wav, query="dog")
        assert torch.allclose(via_query, direct)
        # Asteroid's generic entry point (it rescales the output to the input's L1 norm).
        out = model.separate(wav, query="dog")
    assert out.shape == (1, 1, 4000)
    assert torch.allclose(out / out.abs().sum(), direct / direct.abs().sum(), atol=1e-6)
    # Multichannel input: channels are separated independently and kept.
    stereo = torch.randn(2, 4000)
    with torch.no_grad():
        both = model.forward_wav(stereo, query="siren")
        left = model.forward_wav(stereo[:1], query="siren")
    assert both.shape == (2, 4000)
    assert torch.allclose(both[:1], left, atol=1e-6)


@pytest.mark.parametrize(
    "wav, cond, message",
    [
        (torch.randn(4000), torch.randn(1, 24), "shape"),
        (torch.randn(1, 1, 1, 4000), torch.randn(1, 24), "shape"),
        (torch.randn(1, 2, 4000), torch.randn(1, 24), "shape"),
        (torch.randn(1, 4000), torch.randn(1, 512), "expects 24-d"),
        (torch.randn(1, 4000), torch.randn(24), "condition must be"),
        (torch.randn(2, 4000), torch.randn(3, 24), "batch sizes differ"),
        (torch.full((1, 4000), float("nan")), torch.randn(1, 24), "NaN"),
        (torch.tensor([[0.0, float("inf")] * 2000]), torch.randn(1, 24), "NaN or infinite"),
        (torch.randn(1, 4000), torch.full((1, 24), float("nan")), "condition contains NaN"),
        (torch.randn(1, 0), torch.randn(1, 24), "empty"),
    ],
)
def test_bad_input_raises_clear_error(wav, cond, message):
    model = AudioSep(**small_model_args()).eval()
    with pytest.raises(AudioSepError, match=message):
        model(wav, cond)


def test_bad_queries_and_missing_encoder():
    model = AudioSep(**small_model_args())
    with pytest.raises(AudioSepError, match="no query encoder"):
        model.embed_queries(["dog"])
    model.set_query_encoder(PrecomputedQueryEncoder(table={"dog": torch.zeros(24)}))
    with pytest.raises(AudioSepError, match="empty string"):
        model.forward_wav(torch.randn(1, 100), query="  ")
    with pytest.raises(AudioSepError, match="exactly one"):
        model.forward_wav(torch.randn(1, 100))
    with pytest.raises(AudioSepError, match="condition_dim=24"):
        model.set_query_encoder(PrecomputedQueryEncoder(table={"dog": torch.zeros(8)}))


def test_invalid_architecture_is_refused():
    with pytest.raises(ValueError, match="divisible"):
        AudioSep(**small_model_args(n_fft=200))
    with pytest.raises(ValueError, match="same, non-zero length"):
        AudioSep(**small_model_args(pool_sizes=[[2, 2]]))
    with pytest.raises(ValueError, match="FiLM mode"):
        AudioSep(**small_model_args(film_mode="gamma"))
