-- Retention (`ledger.keep_days`): a pruned run keeps its row, summary included, and its
-- audit records; its other events are deleted. Portable SQL, like the first migration.

-- When the run's events were last pruned (NULL: never).
ALTER TABLE ledger_runs ADD COLUMN pruned_ms BIGINT;
-- 1 while the run holds events no prune has gone through (recording an event sets it), 0
-- once pruned: an event recorded after its run was pruned (a late redelivery, an approval
-- granted days later) is pruned in its turn.
ALTER TABLE ledger_runs ADD COLUMN prunable BIGINT NOT NULL DEFAULT 1;
CREATE INDEX ledger_runs_prunable ON ledger_runs (prunable, last_ms);
