"""asteroid-audiosep: AudioSep ("Separate Anything You Describe") for the Asteroid toolkit.

Importing the package registers :class:`AudioSep` with Asteroid, so that
``asteroid.models.get("AudioSep")`` and ``BaseModel.from_pretrained(package)`` find it.
"""
from .version import __version__

import warnings as _warnings

# torchmetrics 0.11 (pinned by asteroid 0.7) warns about pkg_resources at every import.
_warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)

from asteroid import models as _asteroid_models

from .errors import AudioSepError
from .models import AudioSep
from .api import separate, separate_waveform

try:
    _asteroid_models.get("AudioSep")
except ValueError:
    _asteroid_models.register_model(AudioSep)

__all__ = ["AudioSep", "AudioSepError", "separate", "separate_waveform", "__version__"]
