-- Delivery figures read a window of events of a few kinds (deployments, failed tests,
-- rollbacks, commits), across every run: by kind and time, not by run.
CREATE INDEX ledger_events_by_kind ON ledger_events (kind, time_ms);
