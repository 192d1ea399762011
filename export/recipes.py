"""The per-target recipe table lives in the package (``rapsam_edge.deploy.recipes``) so that
``rapsam-edge convert --recipe`` and this directory's script read the same literal table."""

from rapsam_edge.deploy.recipes import RECIPES, Recipe

__all__ = ["RECIPES", "Recipe"]
