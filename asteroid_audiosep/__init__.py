"""asteroid-audiosep: AudioSep ("Separate Anything You Describe") for the Asteroid toolkit.

Importing the package registers :class:`AudioSep` and :class:`AudioSepDP` with Asteroid, so that
``asteroid.models.get("AudioSep")`` (or ``"AudioSepDP"``) and ``BaseModel.from_pretrained(package)`` find it.
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

for _model in (AudioSep, AudioSepDP):
    try:
        _asteroid_models.get(_model.__name__)
    except ValueError:
        _asteroid_models.register_model(_model)

__all__ = ["AudioSep", "AudioSepDP", "AudioSepError", "Query", "separate", "separate_waveform", "__version__"]
