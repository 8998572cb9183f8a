"""A baseline added to the comparison table from outside the package, in this one file: A-content
logistic regression (the fraction of A in each window). Importing it registers ``a_content_lr``."""

from __future__ import annotations

import numpy as np

from m6abert.baselines import logistic_pipeline
from m6abert.table_models import FoldJob, register


def a_content_fold(job: FoldJob) -> tuple[np.ndarray, dict]:
    """Fit on the other folds' windows, return log-probabilities of the held-out fold's."""
    train_recs, train_labels, dev_seqs, _ = job.train_dev()

    def feature(seqs):
        return np.array([[s.count("A") / len(s)] for s in seqs])

    model = logistic_pipeline(job.settings.seed).fit(feature([r.seq for r in train_recs]), np.asarray(train_labels))
    return np.log(np.clip(model.predict_proba(feature(dev_seqs)), 1e-300, 1.0)), {"n_train": len(train_recs)}


register("a_content_lr", "A-content LR", a_content_fold)
