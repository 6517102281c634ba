-- Where a production deployment stands (`Ledger::last_facts`, read at every start by the
-- delivery recorder): the newest few events of one project's environment. By kind and
-- time, that read visited every deployment of every project and sorted them; by place
-- and time it walks back from the newest event of that environment and stops at the limit.
CREATE INDEX ledger_events_by_place ON ledger_events (project, environment, time_ms, event_id);
