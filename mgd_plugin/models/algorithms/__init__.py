from .matching_guided_distillation import MatchingGuidedDistillation

__all__ = ['MatchingGuidedDistillation']
