"""Architecture search: search-space YAML, candidates and constraints, Ray Tune execution."""
from .runner import SweepOptions, SweepResult, prepare_sweep, run_sweep
from .space import SearchSpec, load_search_spec

__all__ = ["SearchSpec", "SweepOptions", "SweepResult", "load_search_spec", "prepare_sweep", "run_sweep"]
