"""mfsearch: architecture search in the MetaFormer design space.

    import mfsearch
    model = mfsearch.create_model("caformer_s18", num_classes=10, img_size=32)
    cost = mfsearch.count_cost("randformer_s12")          # params, frozen_params, macs, parts
    mfsearch.list_presets()
"""
from .api import count_cost, create_model, list_presets, resolve_arch
from .config import ArchConfig, StageConfig, parse_arch
from .errors import ConfigError, MfsearchError
from .layers.activations import ACTIVATIONS
from .layers.mixers import MIXERS
from .layers.norms import NORMS
from . import interop  # noqa: F401  (mfsearch.interop.TIMM_IMPLEMENTATION after a plain `import mfsearch`)
from . import timm_models as _timm_models  # noqa: F401  (registers identityformer_*/randformer_* in timm)

__version__ = "0.1.0"

__all__ = ["ACTIVATIONS", "ArchConfig", "ConfigError", "MIXERS", "MfsearchError", "NORMS", "StageConfig",
           "count_cost", "create_model", "list_presets", "parse_arch", "resolve_arch"]
