from .matching_guided_distiller import (MatchingGuidedDistiller,
                                        MatchingPosition)
from .ofd_at_positions_distiller import (OFDAtPositionsDistiller,
                                         ofd_distiller_args)

__all__ = [
    'MatchingGuidedDistiller', 'MatchingPosition', 'OFDAtPositionsDistiller',
    'ofd_distiller_args'
]
