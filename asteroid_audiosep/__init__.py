"""asteroid-audiosep: AudioSep ("Separate Anything You Describe") for the Asteroid toolkit.

Importing the package registers :class:`AudioSep` and :class:`AudioSepDP` with Asteroid, so that
``asteroid.models.get("AudioSep")`` (or ``"AudioSepDP"``) and ``BaseModel.from_pretrained(package)``
find them.

Separate with :class:`Separator` (the model loaded once)::

    sep = Separator("audiosep-base", device="cpu")
    stems = sep.separate_waveform(wav, 44100, ["a dog barking", "rain"])   # (queries, channels, time)
    report = sep.separate_files(["song.flac", "field/"], ["a dog barking"], outdir="separated")

Vocabulary (one word per thing, used the same way in the code and its docs):

- **query**: what describes the sound to separate: a string (text) or a :class:`Query`
  (``Query.text/audio/span/image/video/mix/embedding``). Its *label* names the output files.
- **query encoder**: turns queries into conditions (CLAP, CLIP, a sentence encoder, or a
  precomputed *embedding table* of texts, ``query_embeddings=FILE``);
  :mod:`asteroid_audiosep.encoders`.
- **condition**: a query's vector, ``condition_dim`` floats, what the network is conditioned on
  (FiLM). Arguments named ``conditions`` take a ``(queries, condition_dim)`` tensor;
  :meth:`Separator.embed` returns one. Inference resolves queries to conditions in one place,
  :func:`asteroid_audiosep.conditions.resolve_conditions`; training's
  ``AudioSepSystem.query_conditions`` makes a batch's conditions (captions, or clip audio in
  hybrid training).
- **network**: the FiLM-conditioned ResUNet (:class:`~asteroid_audiosep.masknn.ResUNet30`) that
  predicts the mask; a model holds it as ``AudioSep.separator`` (the attribute keeps the name that
  prefixes every released package's and checkpoint's weights).
- **model**: :class:`AudioSep`, STFT + network + complex mask + inverse STFT; serialisable.
- **chunk runner**: :class:`~asteroid_audiosep.apply.ChunkRunner` runs a model over a signal of
  any length chunk by chunk (seam-free); :class:`~asteroid_audiosep.pipeline.FilePipeline` streams
  files through it (reader, network and writer threads).
- **separator**: :class:`Separator`, the model with its device, precision, chunking, batching and
  query encoder: the one door that the command line, the demo and the benchmarks use;
  :func:`separate` and :func:`separate_waveform` are one-call wrappers around it.
"""
import warnings as _warnings

from .version import __version__

# torchmetrics 0.11 (pinned by asteroid 0.7) warns about pkg_resources at every import.
_warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)

from asteroid import models as _asteroid_models  # noqa: E402  (after the warning filter)

from .api import separate, separate_waveform  # noqa: E402
from .errors import AudioSepError  # noqa: E402
from .models import AudioSep, AudioSepDP  # noqa: E402
from .queries import Query  # noqa: E402
from .separator import Separator  # noqa: E402

for _model in (AudioSep, AudioSepDP):
    try:
        _asteroid_models.get(_model.__name__)
    except ValueError:
        _asteroid_models.register_model(_model)

__all__ = ["AudioSep", "AudioSepDP", "AudioSepError", "Query", "Separator", "separate", "separate_waveform",
           "__version__"]
