"""The reduced form of every offline recipe config (plain data; the fixture is conftest's
``reduced_recipe``, the tests are tests/test_recipe_configs.py and tests/test_recipe_full.py).

Each entry is a config that runs here with nothing to download (no ``???`` setting) and the
command-line overrides that make its stages 0-5 a run of a minute or so on 2 CPU cores. The
overrides only shrink sizes (corpus, model width, steps, batch): every key they change must be
in :data:`SIZE_KEYS` (a test checks it), so the reduced run takes every code path of the full one
(same encoder, same text ratio and query modality, same query types, pictures, audio examples,
enhancement, report).

A new offline config (e.g. ``conf/mini_dp.yaml``) gets a line here, or the default suite fails
(``test_every_offline_config_has_a_reduced_run``).
"""

#: Fewer classes and clips of the mini corpus (6 test items), still at the corpus's own rate.
_SMALL_CORPUS = [
    "--data.mini.classes", "[siren, flute, rain, clock_ticking, bird_chirps, engine_hum]",
    "--data.mini.clips_per_class", "[2, 1, 1]", "--data.mini.clip_seconds", "[1.0, 1.5]",
    "--data.mini.speech_pairs", "[4, 3]", "--data.mini.examples_per_class", "1",
]
#: A 2-level ResUNet and a handful of steps (validation and checkpoints twice).
_SMALL_TRAINING = [
    "--model.channels", "[4, 8]", "--model.pool_sizes", "[[2, 2], [1, 2]]", "--model.bottleneck_channels", "8",
    "--training.max_steps", "20", "--training.val_check_interval", "10", "--training.checkpoint_every_n_steps", "10",
    "--training.batch_size", "4", "--training.log_every_n_steps", "5",
]

#: All 18 classes (the report's full class list), 1 clip each in validation and test; the corpus at
#: the model's 8 kHz (half the run's CPU time; resampling at read is taken by the clip/clap runs).
_MINI_CORPUS = [
    "--data.mini.sample_rate", "8000", "--data.mini.clips_per_class", "[3, 1, 1]", "--data.mini.clip_seconds", "[1.0, 1.5]",
    "--data.mini.speech_pairs", "[4, 3]", "--data.mini.examples_per_class", "1",
]

REDUCED_RUNS = {
    # The default setup on the full class list.
    "conf/mini.yaml": [*_MINI_CORPUS, *_SMALL_TRAINING],
    # AudioSep-DP: conf/mini.yaml with the dual-path block at the bottleneck; its report compares with exp/mini.
    "conf/mini_dp.yaml": [*_MINI_CORPUS, *_SMALL_TRAINING],
    # Text/picture hybrid training (TR 0.5) with the random ViT-B-32 towers; image queries at evaluation.
    "conf/mini_clip.yaml": [*_SMALL_CORPUS, *_SMALL_TRAINING],
    # Text/audio hybrid training (TR 0.5) with random HTSAT-tiny/RoBERTa towers, standardised; audio queries.
    "conf/mini_clap.yaml": [*_SMALL_CORPUS, *_SMALL_TRAINING],
}

#: The settings a reduction may change (sizes only), as dotted keys; ``paths.*`` differ per run.
SIZE_KEYS = {
    "data.mini.classes", "data.mini.clips_per_class", "data.mini.clip_seconds", "data.mini.speech_pairs",
    "data.mini.examples_per_class", "data.mini.sample_rate",
    "model.channels", "model.pool_sizes", "model.bottleneck_channels", "model.film_hidden_dim",
    "training.max_steps", "training.val_check_interval", "training.checkpoint_every_n_steps",
    "training.batch_size", "training.log_every_n_steps", "training.warmup_steps", "training.lr_decay_every",
}

#: Tag of the reduced experiments: exp/<conf name>_reduced.
TAG = "reduced"
