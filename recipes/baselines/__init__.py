"""Baselines every code model is measured against, on the same data, splits and metrics.

``logreg`` (bag-of-codes logistic regression; ``features: none`` is the class prior, the floor),
``xgboost`` (bag-of-codes counts + age at first and last visit, early stopping on validation),
``lstm`` (bidirectional, code embeddings; mortality and next visit) and ``med2vec`` (Med2Vec's two
objectives, then a logistic-regression or MLP head). Each writes a normal run directory
(docs/run-format.md) with ``artifacts/metrics_summary.json`` (``test`` block and bootstrap intervals),
``artifacts/test_predictions.jsonl`` and ``artifacts/summary.md``. Registered by name in
``recipes.baselines.registry``; ``ehrdebug train recipes/configs/<baseline>_*.yaml`` and
``ehrdebug bench`` run them.
"""
