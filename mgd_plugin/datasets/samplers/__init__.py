from .matching_subset_sampler import MatchingSubsetSampler

__all__ = ['MatchingSubsetSampler']
