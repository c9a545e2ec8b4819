"""k-nearest-neighbour accuracy of frozen features.

The weighted k-NN classifier of Wu et al. (CVPR 2018), the usual quick
check of a self-supervised backbone next to the linear evaluation: each
query image votes with its k most cosine-similar training images, each
weighted by ``exp(similarity / temperature)``.
"""
from typing import Dict, Iterable, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.utils import ProgressBar


@torch.no_grad()
def extract_features(
        model,
        dataloader: Iterable,
        show_progress: bool = True) -> Tuple[torch.Tensor, torch.Tensor]:
    """L2-normalised features and labels of every image of ``dataloader``.

    Args:
        model: an MMPretrain ``ImageClassifier``; the features are its
            ``extract_feat(inputs, stage='neck')`` (the pooled backbone
            output), the last one if the neck gives several.
        dataloader: batches for ``model.data_preprocessor``, with
            ``gt_label`` in their data samples.
        show_progress: an MMEngine progress bar.

    Returns:
        tuple: features (N, D) float32 and labels (N,) int64, on the CPU.
    """
    model.eval()
    progress = None
    if show_progress and hasattr(dataloader, 'dataset'):
        progress = ProgressBar(len(dataloader.dataset))
    features, labels = [], []
    for batch in dataloader:
        data = model.data_preprocessor(batch, False)
        feats = model.extract_feat(data['inputs'], stage='neck')
        if isinstance(feats, (tuple, list)):
            feats = feats[-1]
        features.append(F.normalize(feats.flatten(1).float(), dim=1).cpu())
        labels.append(
            torch.cat([
                sample.gt_label.reshape(-1)[:1]
                for sample in data['data_samples']
            ]).cpu())
        if progress is not None:
            progress.update(len(labels[-1]))
    if progress is not None:
        progress.file.write('\n')
    return torch.cat(features), torch.cat(labels).long()


@torch.no_grad()
def knn_accuracy(bank: torch.Tensor,
                 bank_labels: torch.Tensor,
                 queries: torch.Tensor,
                 query_labels: torch.Tensor,
                 ks: Sequence[int] = (20, 200),
                 temperature: float = 0.07,
                 chunk_size: int = 256) -> Dict[int, float]:
    """Top-1 accuracy (%) of the weighted k-NN classifier, for each k.

    Args:
        bank: (N, D) L2-normalised features of the labelled images.
        bank_labels: (N,) their classes.
        queries: (M, D) L2-normalised features to classify.
        query_labels: (M,) their true classes.
        ks: the numbers of neighbours (each at most N).
        temperature: the vote of a neighbour of cosine similarity s is
            ``exp(s / temperature)``.
        chunk_size: queries per similarity block (memory: chunk x N).

    Returns:
        dict: k -> accuracy in percent.
    """
    if bank.size(0) == 0 or queries.size(0) == 0:
        raise ValueError('k-NN needs a non-empty bank and query set.')
    bad = [k for k in ks if not 0 < k <= bank.size(0)]
    if bad:
        raise ValueError(f'k must be between 1 and the bank size '
                         f'{bank.size(0)}, got {bad}.')
    num_classes = int(max(bank_labels.max(), query_labels.max())) + 1
    correct = {k: 0 for k in ks}
    max_k = max(ks)
    for start in range(0, queries.size(0), chunk_size):
        block = queries[start:start + chunk_size]
        truth = query_labels[start:start + chunk_size]
        similarity = block @ bank.t()  # (m, N)
        top_sim, top_idx = similarity.topk(max_k, dim=1)  # sorted
        top_labels = bank_labels[top_idx]  # (m, max_k)
        weights = (top_sim / temperature).exp()
        for k in ks:
            votes = torch.zeros(
                block.size(0),
                num_classes,
                dtype=weights.dtype,
                device=weights.device)
            votes.scatter_add_(1, top_labels[:, :k], weights[:, :k])
            correct[k] += int((votes.argmax(1) == truth).sum())
    return {k: 100.0 * correct[k] / queries.size(0) for k in ks}
