"""LfF's attribute rule re-derived sample by sample, as an oracle for generators.assign.

A literal walk of alinlab/LfF make_dataset.py's `make_attr_labels` (written out here in
loops, on purpose slower and simpler than the vectorised generator): for each class, the
milestones round(n_c x cumsum(shares)), then for the k-th sample of the class in file
order, the smallest attribute whose milestone exceeds k.
"""

from __future__ import annotations

import numpy as np


def lff_attr_labels(labels, aligned_share: float) -> np.ndarray:
    labels = [int(v) for v in labels]
    n_classes = max(labels) + 1
    counts = np.array([labels.count(c) for c in range(n_classes)])
    shares = aligned_share * np.eye(n_classes) + (1 - aligned_share) / (n_classes - 1) * (1 - np.eye(n_classes))
    milestones = (counts[:, np.newaxis] * np.cumsum(shares, axis=1)).round()
    seen = [0] * n_classes
    out = np.zeros(len(labels), dtype=np.int64)
    for i, c in enumerate(labels):
        k = seen[c]
        out[i] = min(j for j in range(n_classes) if milestones[c][j] > k)
        seen[c] += 1
    return out
