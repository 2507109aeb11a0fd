"""Vision queries: the CLIP image tower, frames from video files, the picture stream of datafiles
and corpora, and what image-queried training checks before it starts."""
import json
import logging

import numpy as np
import pytest
import torch

from asteroid_audiosep.errors import AudioSepError

av = pytest.importorskip("av")


@pytest.fixture(scope="module")
def clip_encoder():
    pytest.importorskip("open_clip")
    from asteroid_audiosep.encoders.clip import ClipQueryEncoder

    return ClipQueryEncoder(pretrained=None, seed=0)


def _picture(seed=0, size=48):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (size, size + 16, 3), dtype=np.uint8)


# ---------------------------------------------------------------------- encoder
def test_encode_image_same_for_file_pil_and_tensors(clip_encoder, tmp_path):
    from PIL import Image

    array = _picture()
    path = tmp_path / "pic.png"
    Image.fromarray(array).save(path)
    tensor_chw = torch.from_numpy(array).permute(2, 0, 1)
    forms = [str(path), Image.fromarray(array), tensor_chw, tensor_chw.float() / 255, torch.from_numpy(array)]
    emb = clip_encoder.encode_image(forms)
    assert emb.shape == (5, clip_encoder.embed_dim) and clip_encoder.supports_image
    assert torch.allclose(emb.norm(dim=-1), torch.ones(5), atol=1e-5)
    assert (emb - emb[0]).abs().max() <= 1e-5
    other = clip_encoder.encode_image([Image.fromarray(_picture(1))])
    assert (other[0] - emb[0]).abs().max() > 1e-3  # a different picture differs


def test_encode_image_bad_input(clip_encoder, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(AudioSepError, match="cannot read the image"):
        clip_encoder.encode_image([bad])
    with pytest.raises(AudioSepError, match="not found"):
        clip_encoder.encode_image([tmp_path / "missing.jpg"])
    with pytest.raises(AudioSepError, match="image tensor"):
        clip_encoder.encode_image([torch.zeros(4, 5, 6, 7)])


def test_clip_checkpoint_file_gives_the_same_embeddings(clip_encoder, tmp_path):
    from asteroid_audiosep.encoders import build_query_encoder

    weights = tmp_path / "clip_weights.pt"
    torch.save(clip_encoder.model.state_dict(), weights)
    loaded = build_query_encoder({"type": "clip", "model_name": "ViT-B-32", "pretrained": str(weights)})
    texts, pictures = ["a dog barking", "rain"], [torch.from_numpy(_picture(3))]
    assert torch.allclose(loaded.encode_text(texts), clip_encoder.encode_text(texts), atol=1e-6)
    assert torch.allclose(loaded.encode_image(pictures), clip_encoder.encode_image(pictures), atol=1e-6)
    assert clip_encoder.spec()["seed"] == 0 and loaded.spec()["pretrained"] == str(weights)


# ---------------------------------------------------------------------- video
def _frames(count=8, size=64):
    y, x = np.mgrid[:size, :size]
    return [np.stack([x * 2 + 10 * k, y * 3, np.full_like(x, 20 * k)], -1).astype(np.uint8)
            for k in range(count)]


def test_frames_read_back_within_codec_loss(tmp_path):
    from asteroid_audiosep.video import read_frames, video_duration, write_video

    frames = _frames()
    path = write_video(tmp_path / "clip.mp4", frames, fps=4, crf=0)
    assert video_duration(path) == pytest.approx(2.0, abs=0.05)
    times = [0.0, 0.3, 1.9, 0.9, 1.0]  # the frame shown at t: the last one starting at or before t
    got = read_frames(path, times)
    for t, image in zip(times, got):
        error = np.abs(np.asarray(image).astype(int) - frames[int(t * 4 + 1e-9)])
        assert error.max() <= 10 and error.mean() < 1.5, (t, error.max(), error.mean())  # 4:2:0 chroma only
    with pytest.raises(AudioSepError, match="past the video's end"):
        read_frames(path, [2.5])


@pytest.mark.parametrize("suffix,codec", [(".mkv", "libx264"), (".webm", "libvpx"), (".avi", "mpeg4")])
def test_other_containers(tmp_path, suffix, codec):
    from asteroid_audiosep.video import read_frames, write_video

    frames = _frames(4)
    path = write_video(tmp_path / f"clip{suffix}", frames, fps=2, codec=codec)
    got = read_frames(path, [0.6])[0]
    assert np.abs(np.asarray(got).astype(float) - frames[1]).mean() < 12


def test_unreadable_videos(tmp_path):
    from asteroid_audiosep.video import read_frames, video_duration, write_video

    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    with pytest.raises(AudioSepError, match="cannot read the video"):
        video_duration(corrupt)
    with pytest.raises(AudioSepError, match="not found"):
        read_frames(tmp_path / "missing.mp4", [0.0])
    good = write_video(tmp_path / "good.mp4", _frames(8), fps=4)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 3])
    with pytest.raises(AudioSepError):
        read_frames(truncated, [1.5])


def test_video_query_is_the_mean_of_one_frame_a_second(clip_encoder, tmp_path):
    import torch.nn.functional as F

    from asteroid_audiosep.queries import Query, embed_queries
    from asteroid_audiosep.video import read_frames, write_video

    path = write_video(tmp_path / "clip.mp4", _frames(12), fps=4)  # 3 s
    emb = embed_queries(clip_encoder, [Query.video(path), Query.video(path, at=1.0)])
    frames = clip_encoder.encode_image(read_frames(path, [0.5, 1.5, 2.5]))
    assert torch.allclose(emb[0], F.normalize(frames.mean(0), dim=-1), atol=1e-5)
    assert torch.allclose(emb[1], clip_encoder.encode_image(read_frames(path, [1.0]))[0], atol=1e-5)
    with pytest.raises(AudioSepError, match="past the video's end"):
        embed_queries(clip_encoder, [Query.video(path, at=9.0)])


# ---------------------------------------------------------------------- data
def test_datafile_picture_paths_resolve_like_wav(tmp_path):
    from asteroid_audiosep.data import read_datafile
    from asteroid_audiosep.data.datafile import write_datafile

    (tmp_path / "d").mkdir()
    path = tmp_path / "d" / "train.json"
    path.write_text(json.dumps({"data": [{"wav": "a/x.wav", "caption": "x", "video": "v/x.mp4", "image": "/abs/x.png"}]}))
    entry = read_datafile(path)[0]
    assert entry["video"] == str(tmp_path / "d" / "v" / "x.mp4") and entry["image"] == "/abs/x.png"
    moved = write_datafile(tmp_path / "e" / "train.json", [entry])
    assert json.loads(moved.read_text())["data"][0]["video"] == "../d/v/x.mp4"
    assert read_datafile(moved)[0]["video"] == entry["video"]


def _vggsound_layout(root):
    from asteroid_audiosep.video import _av

    av = _av()
    rows = []
    (root / "video" / "sub").mkdir(parents=True)
    for k, ytid in enumerate(["AAAAAAAAAAA", "BBBBBBBBBBB"]):
        rows.append(f"{ytid},{k},dog barking,train")
        with av.open(str(root / "video" / "sub" / f"{ytid}_{k:06d}.mp4"), "w") as container:
            audio = container.add_stream("aac", rate=16000)
            video = container.add_stream("libx264", rate=4)
            video.width = video.height = 32
            video.pix_fmt = "yuv420p"
            wav = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)[None]
            frame = av.AudioFrame.from_ndarray(wav, format="fltp", layout="mono")
            frame.sample_rate = 16000
            for packet in list(audio.encode(frame)) + list(audio.encode()):
                container.mux(packet)
            for picture in _frames(4, 32):
                for packet in video.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                    container.mux(packet)
            for packet in video.encode():
                container.mux(packet)
    rows.append("CCCCCCCCCCC,2,cat meowing,train")
    (root / "video" / "CCCCCCCCCCC_000002.mp4").write_bytes(b"broken")
    (root / "vggsound.csv").write_text("\n".join(rows) + "\n")


def test_prepare_vggsound_extracts_audio_and_records_videos(tmp_path, caplog):
    from asteroid_audiosep.data import read_datafile
    from asteroid_audiosep.data.corpora import prepare_corpus

    root, out = tmp_path / "vggsound", tmp_path / "prepared"
    _vggsound_layout(root)
    with caplog.at_level(logging.WARNING):
        written = prepare_corpus("vggsound", {"root": str(root), "extract_audio": True}, out)
    assert "1 of 3 videos have no readable audio track" in caplog.text
    entries = read_datafile(written["train"])
    assert len(entries) == 2  # the broken video's clip has no audio: left out (skip_missing)
    for entry in entries:
        assert entry["wav"].startswith(str(out / "audio")) and entry["video"].endswith(".mp4")
        import soundfile as sf

        assert sf.info(entry["wav"]).duration == pytest.approx(1.0, abs=0.1)
    first = out / "audio" / "AAAAAAAAAAA_000000.wav"
    stamp = first.stat().st_mtime_ns
    prepare_corpus("vggsound", {"root": str(root), "extract_audio": True}, out)  # resumes: kept
    assert first.stat().st_mtime_ns == stamp


# ---------------------------------------------------------------------- training checks
def test_image_training_needs_clip_and_pictures(tmp_path, caplog):
    from asteroid_audiosep.engine.pictures import check_pictures
    from asteroid_audiosep.engine.train_config import check_encoder_spec

    with pytest.raises(AudioSepError, match="image tower"):
        check_encoder_spec({"type": "sentence"}, 0.5, "image")
    assert check_encoder_spec({"type": "clip"}, 0.5, "image")["type"] == "clip"
    check_encoder_spec({"type": "sentence"}, 1.0, "image")  # text only: any encoder
    present = tmp_path / "a.mp4"
    present.write_bytes(b"x")
    entries = [{"video": str(present)}, {"video": str(tmp_path / "gone.mp4")}, {}]
    with pytest.raises(AudioSepError, match=r"1 of 3 videos/images .* missing: .*gone\.mp4"):
        check_pictures(entries, skip_missing=False, source="train.json")
    with caplog.at_level(logging.WARNING):
        assert check_pictures(entries, skip_missing=True, source="train.json") == [str(present), None, None]
    assert caplog.text.count("queried by text") == 1
    with pytest.raises(AudioSepError, match="no entry"):
        check_pictures([{}, {}], skip_missing=False, source="train.json")


def test_picture_conditions_replace_drawn_items_with_pictures():
    from asteroid_audiosep.engine.system import AudioSepSystem

    system = AudioSepSystem.__new__(AudioSepSystem)
    system.__dict__["picture_table"] = (torch.arange(12.0).reshape(4, 3), torch.tensor([True, True, False, True]))
    system.__dict__["use_text_ratio"] = 0.5
    text = torch.full((4, 3), -1.0)
    out = system.picture_conditions(text, torch.tensor([3, 2, 0, 1]), torch.tensor([0.9, 0.9, 0.1, 0.6]))
    assert out[0].tolist() == [9.0, 10.0, 11.0]   # drawn, clip 3 has a picture
    assert out[1].tolist() == [-1.0] * 3           # drawn, clip 2 has none: text
    assert out[2].tolist() == [-1.0] * 3           # not drawn: text
    assert out[3].tolist() == [3.0, 4.0, 5.0]
    assert text.eq(-1).all()                       # the text conditions are not modified


def test_mini_picture_stream(tmp_path):
    from PIL import Image

    from asteroid_audiosep.data import read_datafile
    from asteroid_audiosep.data.evallist import read_csv_rows
    from asteroid_audiosep.data.mini import generate_mini_corpus
    from asteroid_audiosep.data.mini_pictures import add_picture_stream
    from asteroid_audiosep.video import read_frames

    out = tmp_path / "mini"
    generate_mini_corpus(out, seed=1, clips_per_class=(2, 1, 1), clip_seconds=(1.0, 1.5),
                         classes=["siren", "rain"], speech_pairs=(0, 0))
    written = add_picture_stream(out, seed=1, pictures_per_class=2)
    entries = read_datafile(written["train"])
    assert all(e["video"].endswith(".mp4") and (out / e["video"]).is_file() for e in entries)
    hues = {}
    for e in entries:
        frame = np.asarray(read_frames(e["video"], [0.1])[0], dtype=float).reshape(-1, 3).mean(0)
        hues.setdefault(e["video"].split("/")[-2], []).append(frame)
    assert np.abs(hues["siren"][0] - hues["rain"][0]).max() > 40  # classes look different
    rows = read_csv_rows(written["eval_test"])
    for row in rows:
        picture = (written["eval_test"].parent / row["image"]).resolve()
        assert picture.parent.name == "pictures" and picture.name.startswith(row["class"])
        assert Image.open(picture).size == (64, 64)
    again = add_picture_stream(out, seed=1, pictures_per_class=2)
    assert again["train"].read_text() == written["train"].read_text()


@pytest.mark.slow
def test_image_queried_training_runs_and_caches_pictures(tmp_path, caplog):
    """A few steps of vision-queried training on a small mini corpus with its picture stream;
    a clip whose video is missing falls back to text (skip_missing) with one counted warning."""
    import os

    from asteroid_audiosep.data.mini import generate_mini_corpus
    from asteroid_audiosep.data.mini_pictures import add_picture_stream
    from asteroid_audiosep.engine.pictures import PICTURE_CACHE_FILE
    from asteroid_audiosep.engine.trainer import train

    corpus = tmp_path / "mini"
    generate_mini_corpus(corpus, seed=2, clips_per_class=(3, 1, 1), clip_seconds=(1.0, 1.5),
                         classes=["siren", "rain", "flute"], speech_pairs=(0, 0))
    add_picture_stream(corpus, seed=2, pictures_per_class=1)
    victim = corpus / "video" / "train" / "rain" / "rain-000.mp4"
    os.remove(victim)
    conf = dict(
        paths=dict(data_dir=str(corpus), exp_dir=str(tmp_path / "exp")),
        data=dict(train_datafiles=["{data_dir}/train.json"], valid_list=None, sample_rate=8000,
                  segment_seconds=1.0, mix_mode="equal_energy", skip_missing=True),
        model=dict(n_fft=256, hop_length=128, channels=[4, 8], bottleneck_channels=8, pool_sizes=[[2, 2], [1, 2]],
                   film_mode="gamma_beta", film_hidden_dim=8,
                   query_encoder={"type": "clip", "model_name": "ViT-B-32", "pretrained": None, "seed": 0}),
        training=dict(batch_size=4, num_workers=0, max_steps=2, lr=1e-3, warmup_steps=1, val_check_interval=2,
                      checkpoint_every_n_steps=2, log_every_n_steps=1, progress_bar=False,
                      use_text_ratio=0.5, query_modality="image"),
    )
    with caplog.at_level(logging.WARNING):
        report = train(conf)
    assert report["steps"] == 2
    assert caplog.text.count("videos/images listed in") == 1 and "rain-000.mp4" in caplog.text
    cache = torch.load(tmp_path / "exp" / PICTURE_CACHE_FILE, weights_only=False)
    assert len(cache["embeddings"]) == 8 and cache["source"]["type"] == "clip"
    conf["data"]["skip_missing"] = False
    with pytest.raises(AudioSepError, match="rain-000.mp4"):
        train(conf)
