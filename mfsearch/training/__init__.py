"""Training: recipes, the LightningModule, and one training run logged to MLflow."""
from .module import ClassificationModule
from .recipes import RECIPES, TrainConfig, paper_recipe, resolve_recipe

__all__ = ["ClassificationModule", "RECIPES", "TrainConfig", "paper_recipe", "resolve_recipe"]
