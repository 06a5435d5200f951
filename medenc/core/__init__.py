"""Shared plumbing every stage may import, and which imports no stage.

errors (messages a user can act on), paths (where things live), layout (the names that tie the stages
together), io (hashing, atomic writes, number formatting), runs (reading run.json), lock (one writer per run
folder), progress (bars on a terminal, a log line now and then elsewhere), environment (versions and hardware
records), base_model (the verified all-mpnet-base-v2) and modeling (random-weight MPNet for tests and timing).
"""
