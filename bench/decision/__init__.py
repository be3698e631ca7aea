"""``bench decide``: "LSTM or Transformer for *my* data?" answered within a wall-clock budget.

The decision layer sits above the experiment (it plans, tunes and trains through it) and the
analysis (its sequential statistics), below the command line: ``request`` turns the user's
options into a matrix, ``procedure`` spends the budget (sanity, fair tuning, paired evaluation
rounds) and ``summary`` says what it found.
"""
