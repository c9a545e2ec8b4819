from .matching_guided_distiller import (MatchingGuidedDistiller,
                                        MatchingPosition)

__all__ = ['MatchingGuidedDistiller', 'MatchingPosition']
