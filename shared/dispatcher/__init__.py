"""What runs next, and on which phone: the dispatch step, cancellation and state transitions.

The api runs the dispatch step inside its own transactions; the dispatcher process runs it on every
report and timer tick. Both are safe side by side (device rows are claimed with SKIP LOCKED).
"""
