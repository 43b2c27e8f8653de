"""Sample-quality metrics: ``gan evaluate``, ``gan train --eval-every`` and the collapse monitor.

* The maths on already-extracted features, one metric per module: :mod:`~gancli.metrics.frechet`
  (FID / FD-LeNet), :mod:`~gancli.metrics.kid` (KID), :mod:`~gancli.metrics.inception_score`
  (IS), :mod:`~gancli.metrics.precision_recall`, :mod:`~gancli.metrics.coverage` (classes
  covered), :mod:`~gancli.metrics.cas` (Classification Accuracy Score),
  :mod:`~gancli.metrics.monitor` (mode-collapse symptoms).
* What is measured: :mod:`~gancli.metrics.catalog` (the reported names, which direction is
  better, how to read a value), :mod:`~gancli.metrics.extractors` (the ``lenet`` and
  ``inception`` protocols' feature extractors, over :mod:`~gancli.metrics.lenet`,
  :mod:`~gancli.metrics.inception` and :mod:`~gancli.metrics.classifier`),
  :mod:`~gancli.metrics.sources` (images to score), :mod:`~gancli.metrics.cache` (reference
  statistics).
* The evaluation: :mod:`~gancli.metrics.evaluate` (features -> results with their protocol),
  and :mod:`~gancli.metrics.run_eval`, ``gan evaluate`` as library functions returning reports.

Nothing heavy is imported here.
"""
