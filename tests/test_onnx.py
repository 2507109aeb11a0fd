"""ONNX export (STFT/ISTFT in the graph) and the ONNX Runtime backend of ``separate``.

Every test needs the ``onnx`` extra (onnx, onnxruntime, onnxscript) and skips with that reason
without it. The default exporter (torch.export based) takes about 12 s of CPU even for a tiny
model, so the default suite runs it once (the CLI export of the small model, reused by the
tests); the released architecture runs here with the TorchScript exporter (a few seconds) and,
behind ``slow``, with the default one.
"""
import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import DEMO_ARGS, BandEncoder, make_demo_package, make_demo_wav, nontrivial, small_model_args

from asteroid_audiosep import AudioSep
from asteroid_audiosep.cli import main
from asteroid_audiosep.errors import AudioSepError

pytest.importorskip("onnx", reason="the 'onnx' extra (onnx, onnxruntime, onnxscript) is not installed")
pytest.importorskip("onnxruntime", reason="the 'onnx' extra (onnx, onnxruntime, onnxscript) is not installed")

from asteroid_audiosep import Separator  # noqa: E402
from asteroid_audiosep.onnx_export import METADATA_KEY, export_onnx  # noqa: E402
from asteroid_audiosep.onnx_runtime import OnnxNetwork  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
TOLERANCE = 1e-4  # max abs error, ORT graph vs PyTorch forward (measured: about 1e-6)


def _torch_forward(model, mixture, condition):
    with torch.inference_mode():
        return model(torch.as_tensor(mixture), torch.as_tensor(condition)).numpy()


def _max_error_at(model, graph_path, lengths, batch=1, seed=0):
    """Max abs error between the graph run by ORT and the PyTorch forward at each length."""
    net = OnnxNetwork(graph_path)
    g = torch.Generator().manual_seed(seed)
    errors = []
    for length in lengths:
        mixture = 0.2 * torch.randn(batch, model.in_channels, length, generator=g)
        condition = torch.randn(batch, model.condition_dim, generator=g)
        out = net(mixture, condition).numpy()
        assert out.shape == (batch, model.in_channels, length)
        errors.append(float(np.abs(out - _torch_forward(model, mixture, condition)).max()))
    return errors


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The tiny demo model, its embedding table, and its graph exported by the CLI (default
    exporter, any length) with two queries baked."""
    root = tmp_path_factory.mktemp("onnx_small")
    model_path, table = make_demo_package(root)
    graph = root / "small.onnx"
    assert main(["export", str(model_path), str(graph), "--query-embeddings", str(table),
                 "-q", "dog barking", "-q", "speech", "--dynamic-length"]) == 0
    return model_path, table, graph


def test_cli_export_writes_graph_and_query_table(small, capsys):
    import onnx

    model_path, table, graph = small
    proto = onnx.load(str(graph))
    inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in proto.graph.input}
    outputs = {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in proto.graph.output}
    assert inputs == {"mixture": ["batch", 1, "samples"], "condition": ["batch", DEMO_ARGS["condition_dim"]]}
    assert outputs == {"separated": ["batch", 1, "samples"]}
    meta = {p.key: p.value for p in proto.metadata_props}
    assert '"sample_rate": 16000' in meta[METADATA_KEY]
    with np.load(graph.with_name("small.queries.npz"), allow_pickle=False) as data:
        assert list(data["texts"]) == ["dog barking", "speech"]
        expected = torch.load(table, weights_only=True)["embeddings"].numpy()
        assert np.array_equal(data["vectors"], expected)


def test_default_exporter_graph_matches_pytorch_at_two_lengths(small):
    model = AudioSep.from_pretrained(str(small[0])).eval()
    errors = _max_error_at(model, small[2], [16000, 4321], batch=2)
    assert max(errors) <= TOLERANCE, errors


def test_legacy_exporter_and_multichannel_model(tmp_path):
    torch.manual_seed(1)
    model = nontrivial(AudioSep(**small_model_args(in_channels=2))).eval()
    path = export_onnx(model, tmp_path / "stereo.onnx", dynamic_length=True, exporter="legacy").path
    errors = _max_error_at(model, path, [8000, 3001], batch=3)
    assert max(errors) <= TOLERANCE, errors
    assert not (tmp_path / "stereo.queries.npz").exists()  # no query encoder: nothing baked


def test_separate_onnxruntime_matches_torch_backend(small, tmp_path, capsys):
    model_path, table, graph = small
    inputs = tmp_path / "in"
    inputs.mkdir()
    make_demo_wav(inputs / "mix.wav")  # stereo, 22.05 kHz: resampled, one forward
    make_demo_wav(inputs / "long.wav", seconds=4.0, rate=16000, channels=1)  # chunked below
    common = ["-q", "dog barking", "-q", "speech", "--chunk-seconds", "1", "--quiet", "--keep-both"]
    assert main(["separate", str(inputs), "-o", str(tmp_path / "pt"), "-m", str(model_path),
                 "--query-embeddings", str(table), "--precision", "fp32", *common]) == 0
    assert main(["separate", str(inputs), "-o", str(tmp_path / "ort"), "--backend", "onnxruntime",
                 "-m", str(graph), *common]) == 0
    written = sorted(p.relative_to(tmp_path / "pt") for p in (tmp_path / "pt").rglob("*.wav"))
    assert len(written) == 8 and written == sorted(
        p.relative_to(tmp_path / "ort") for p in (tmp_path / "ort").rglob("*.wav"))
    for rel in written:
        a, rate_a = sf.read(tmp_path / "pt" / rel, dtype="float32")
        b, rate_b = sf.read(tmp_path / "ort" / rel, dtype="float32")
        assert rate_a == rate_b and a.shape == b.shape
        assert np.abs(a - b).max() <= TOLERANCE, rel
        assert np.abs(a).max() > 1e-3  # not silence on both sides


def test_unknown_query_names_the_baked_ones(small, tmp_path, capsys):
    wav = make_demo_wav(tmp_path / "mix.wav")
    code = main(["separate", str(wav), "-o", str(tmp_path / "out"), "-m", str(small[2]), "-q", "a cat", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "'a cat' was not baked" in err and "'dog barking', 'speech'" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_backend_misuse_is_refused(small, tmp_path):
    model_path, _, graph = small
    with pytest.raises(AudioSepError, match="--backend onnxruntime"):
        Separator(str(graph), "cpu", backend="torch")
    with pytest.raises(AudioSepError, match="takes an exported graph"):
        Separator(str(model_path), "cpu", backend="onnxruntime")
    with pytest.raises(AudioSepError, match="float32 graph"):
        Separator(str(graph), "cpu", precision="bf16")
    sep = Separator(str(graph), "cpu", progress=False)  # auto: a .onnx file runs with onnxruntime
    assert sep.backend == "onnxruntime" and sep.autocast_dtype is None
    with pytest.raises(AudioSepError, match="needs the PyTorch model"):
        sep.export_onnx(tmp_path / "again.onnx", ["speech"])


def test_fixed_length_graph(tmp_path):
    torch.manual_seed(0)
    model = nontrivial(AudioSep(**small_model_args())).eval()
    path = export_onnx(model, tmp_path / "fixed.onnx", seconds=0.5, exporter="legacy").path
    net = OnnxNetwork(path)
    assert net.samples == 8000
    mixture, condition = 0.2 * torch.randn(1, 1, 8000), torch.randn(1, model.condition_dim)
    assert np.abs(net(mixture, condition).numpy() - _torch_forward(model, mixture, condition)).max() <= TOLERANCE
    with pytest.raises(AudioSepError, match="exactly 8000 samples"):
        net(mixture[..., :4000], condition)
    with pytest.raises(AudioSepError, match="--dynamic-length"):
        Separator(str(path), "cpu", progress=False)


def test_export_needs_queries_for_a_live_encoder(tmp_path):
    model = AudioSep(**small_model_args(condition_dim=16)).set_query_encoder(BandEncoder(), update_spec=False)
    sep = Separator(model, "cpu", precision="fp32", progress=False)
    with pytest.raises(AudioSepError, match=r"not part of the ONNX graph: name the queries to bake .*-q"):
        sep.export_onnx(tmp_path / "x.onnx")
    assert not list(tmp_path.iterdir())
    result = sep.export_onnx(tmp_path / "x.onnx", ["dog", "cat"], exporter="legacy")
    assert result.texts == ["dog", "cat"] and result.queries.is_file()
    with pytest.raises(AudioSepError, match="opset 17 or later"):
        sep.export_onnx(tmp_path / "y.onnx", ["dog"], opset=16)
    with pytest.raises(AudioSepError, match="--exporter legacy for opset 17"):
        sep.export_onnx(tmp_path / "y.onnx", ["dog"], opset=17)
    import onnx

    result = sep.export_onnx(tmp_path / "o17.onnx", ["dog"], opset=17, exporter="legacy", dynamic_length=True)
    assert [o.version for o in onnx.load(str(result.path)).opset_import if o.domain in ("", "ai.onnx")] == [17]
    with pytest.raises(AudioSepError, match="OUT.onnx"):
        sep.export_onnx(tmp_path / "y.pth", ["dog"])


def test_embedding_table_model_bakes_its_texts(tmp_path):
    model_path, table = make_demo_package(tmp_path)
    sep = Separator(str(model_path), "cpu", precision="fp32", query_embeddings=table, progress=False)
    result = sep.export_onnx(tmp_path / "t.onnx", exporter="legacy", dynamic_length=True)
    assert result.texts == ["dog barking", "speech"]
    ort = Separator(str(result.path), progress=False)
    wav = torch.from_numpy(sf.read(make_demo_wav(tmp_path / "m.wav"), dtype="float32")[0].T.copy())
    a = ort.separate_waveform(wav, 22050, ["speech"])
    b = sep.separate_waveform(wav, 22050, ["speech"])
    assert a.shape == b.shape == (1, 2, wav.shape[-1]) and (a - b).abs().max() <= TOLERANCE


# --------------------------------------------------------------------------- released architecture
@pytest.fixture(scope="module")
def released(official_ckpt, tmp_path_factory):
    from asteroid_audiosep.official import convert_official

    out = convert_official(official_ckpt, tmp_path_factory.mktemp("onnx_released") / "released.pth")
    return AudioSep.from_pretrained(str(out)).eval()


def test_released_architecture_legacy_exporter(released, reference, tmp_path):
    """The stand-in of the released checkpoint: the graph reproduces the reference forward vector
    (2 s) and the PyTorch forward at an odd length."""
    path = export_onnx(released, tmp_path / "released.onnx", dynamic_length=True, exporter="legacy").path
    vectors = np.load(reference / "official_forward_vectors.npz")
    net = OnnxNetwork(path)
    mixture = torch.from_numpy(vectors["mixture"].astype(np.float32).reshape(1, 1, -1))
    condition = torch.from_numpy(vectors["condition"].astype(np.float32).reshape(1, -1))
    out = net(mixture, condition).numpy()
    assert np.abs(out - _torch_forward(released, mixture, condition)).max() <= TOLERANCE
    assert np.abs(out.ravel() - vectors["output"].ravel()).max() <= TOLERANCE
    assert max(_max_error_at(released, path, [20001])) <= TOLERANCE


@pytest.mark.slow
def test_released_architecture_default_exporter_and_separate(released, tmp_path):
    sep = Separator(released, "cpu", precision="fp32", progress=False)
    condition = torch.randn(2, 512, generator=torch.Generator().manual_seed(3))
    path = export_onnx(released, tmp_path / "released.onnx", condition, ["a", "b"], dynamic_length=True).path
    assert max(_max_error_at(released, path, [32000, 20001])) <= TOLERANCE
    ort = Separator(str(path), "cpu", chunk_seconds=1.0, progress=False)
    wav = torch.from_numpy(sf.read(make_demo_wav(tmp_path / "m.wav", seconds=3.0), dtype="float32")[0].T.copy())
    a = ort.separate_waveform(wav, 22050, ["a", "b"])
    b = sep.separate_waveform(wav, 22050, ["a", "b"], conditions=condition)
    assert a.shape == (2, 2, wav.shape[-1]) and (a - b).abs().max() <= TOLERANCE


def test_dual_path_model_exports(tmp_path):
    """AudioSep-DP (GRUs at the bottleneck) exports too: the graph matches its PyTorch forward."""
    from asteroid_audiosep.models import AudioSepDP

    torch.manual_seed(2)
    model = nontrivial(AudioSepDP(dprnn=dict(hidden=8), **small_model_args())).eval()
    path = export_onnx(model, tmp_path / "dp.onnx", dynamic_length=True, exporter="legacy").path
    errors = _max_error_at(model, path, [8000, 3001], batch=2)
    assert max(errors) <= TOLERANCE, errors
