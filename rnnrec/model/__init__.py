"""The session recommender and its item-side layers."""

from rnnrec.model.recommender import SessionRecommender

__all__ = ["SessionRecommender"]
