"""Spend controls: budgets and pacing, retry loops, model policy, anomalies; alerts to signed
webhooks through a durable outbox; a decision endpoint answered from memory.

Pure logic (periods, pacing, baselines, detectors, policy, incidents, signing, the event
schema) is separate from the threads and I/O (``engine``, ``scheduler``, ``delivery``,
``journal``, ``history``); ``service.Controls`` assembles them.
"""
