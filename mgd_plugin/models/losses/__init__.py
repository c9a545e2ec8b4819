from .matching_guided_loss import MatchingGuidedLoss

__all__ = ['MatchingGuidedLoss']
