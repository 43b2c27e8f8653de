"""Sample-quality metrics for ``gan evaluate``, one metric per module.

* :mod:`gancli.metrics.frechet` -- Frechet distance of Gaussian feature statistics (FID).
* :mod:`gancli.metrics.kid` -- kernel distance, unbiased MMD^2 with a cubic kernel (KID).
* :mod:`gancli.metrics.inception_score` -- Inception Score from class probabilities (IS).
* :mod:`gancli.metrics.precision_recall` -- improved precision and recall from k-NN balls.

The metric modules hold only the maths on already-extracted features; feature
extractors and cached statistics live in their own modules. Nothing heavy is
imported here.
"""
