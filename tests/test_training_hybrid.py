"""Hybrid supervision by picture (``query_modality: image``): a few training steps, in seconds.

The recipe-level run of conf/mini_clip.yaml is tests/test_recipe_configs.py; this one pins the
trainer itself: image-queried items take their clip's picture embedding, and no audio (clip)
embedding is asked of the CLIP encoder, which has no audio tower (issue 22, item 1).
"""
import pytest
import torch

from asteroid_audiosep.data.mini import generate_mini_corpus
from asteroid_audiosep.data.mini_pictures import add_picture_stream
from asteroid_audiosep.engine.hybrid import CLIP_CACHE_FILE
from asteroid_audiosep.engine.pictures import PICTURE_CACHE_FILE
from asteroid_audiosep.engine.system import AudioSepSystem
from asteroid_audiosep.engine.trainer import train
from asteroid_audiosep.errors import AudioSepError


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("mini_clip")
    generate_mini_corpus(out, seed=3, clips_per_class=(2, 1, 1), clip_seconds=(1.0, 1.0),
                         classes=["siren", "rain"], speech_pairs=(0, 0), examples_per_class=0)
    add_picture_stream(out, seed=3, pictures_per_class=1)
    return out


def _conf(corpus, exp_dir, modality="image", encoder="clip"):
    encoders = {"clip": {"type": "clip", "model_name": "ViT-S-32", "pretrained": None, "seed": 0},
                "sentence": {"type": "sentence"}}
    return dict(
        paths=dict(data_dir=str(corpus), exp_dir=str(exp_dir)),
        data=dict(train_datafiles=["{data_dir}/train.json"], valid_list=None, sample_rate=8000,
                  segment_seconds=0.5, mix_mode="equal_energy"),
        model=dict(n_fft=256, hop_length=128, channels=[4, 8], bottleneck_channels=8, pool_sizes=[[2, 2], [1, 2]],
                   film_mode="gamma_beta", film_hidden_dim=8, query_encoder=encoders[encoder]),
        training=dict(batch_size=4, num_workers=0, max_steps=2, lr=1e-3, warmup_steps=1, val_check_interval=2,
                      checkpoint_every_n_steps=2, log_every_n_steps=1, progress_bar=False, num_threads=1,
                      use_text_ratio=0.5, query_modality=modality, seed=0),
    )


def test_image_queried_hybrid_training_uses_pictures_not_audio(corpus, tmp_path, monkeypatch):
    replaced = []
    original = AudioSepSystem.picture_conditions

    def spy(self, conditions, indices, draws):
        out = original(self, conditions, indices, draws)
        replaced.append(int((out != conditions).any(-1).sum()))
        return out

    monkeypatch.setattr(AudioSepSystem, "picture_conditions", spy)
    exp = tmp_path / "exp"
    report = train(_conf(corpus, exp))
    assert report["steps"] == 2
    assert len(replaced) == 2 and sum(replaced) > 0  # some items of the 2 batches queried by picture
    assert (exp / PICTURE_CACHE_FILE).is_file()
    assert not (exp / CLIP_CACHE_FILE).exists()  # no audio embedding of the training clips
    cache = torch.load(exp / PICTURE_CACHE_FILE, weights_only=True)
    assert len(cache["embeddings"]) == 4 and cache["source"]["model_name"] == "ViT-S-32"
    assert (exp / "best_model.pth").is_file() or (exp / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize("modality, encoder, message", [
    ("audio", "clip", "needs an encoder with an audio tower"),
    ("image", "sentence", "needs an encoder with an image tower"),
])
def test_hybrid_training_without_the_needed_tower_is_refused(corpus, tmp_path, modality, encoder, message):
    with pytest.raises(AudioSepError, match=message):
        train(_conf(corpus, tmp_path / "exp", modality, encoder))
