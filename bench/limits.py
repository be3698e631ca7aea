"""Upper bounds on every size-like request, checked before anything is allocated, so a typo (a
seed range of a billion, a width of 10**9) is a one-line error, not an exhausted machine."""

MAX_SEED = 2**32 - 1  # numpy's (and so Lightning's seed_everything's) largest seed
MAX_SEEDS = 1_000  # seeds in one matrix
MAX_TRAIN_SIZE = 100_000_000  # examples in one training set
MAX_RUNS = 50_000  # runs one matrix may plan
MAX_PARAMS = 100_000_000  # parameters of one model (weights, gradients and AdamW state: ~1.6 GB)
MAX_BOOTSTRAP = 100_000  # bootstrap resamples: memory grows with resamples x seeds
