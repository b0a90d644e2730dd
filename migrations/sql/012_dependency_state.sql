-- dependency_state says whether a task ever waited for dependencies in this
-- schema, so that completions skip the dependency work while none has.
-- {{.schema}} is the target schema, already quoted.
--
-- Why: every completion batch took the dependency advisory lock and probed
-- tasks_waiting_deps_idx once per finished task, to release or cancel the
-- tasks waiting on it (queue.sqlReleaseDeps, sqlCancelDeps): about 2 ms of
-- server time per 1,000 tasks, 4% of a task's, though most schemas never
-- hold a waiting task. A guard that asked the tables (an EXISTS over waiting
-- tasks) would walk the dead entries of every released one while a long
-- transaction holds vacuum back; this row is written once, when the first
-- waiting task is inserted, and read as one row ever after.
--
-- The flag is set by a trigger on the partition waiting tasks live in
-- (tasks_g0), in the inserting transaction, whatever wrote the row: OmniQ's
-- client or SQL by hand. It is never cleared by OmniQ: clearing it safely
-- would need every insert of a waiting task to lock this row. A schema that
-- no longer uses dependencies can clear it by hand while no task waits
-- (UPDATE dependency_state SET waiting_seen = false, with the clients
-- stopped).
--
-- Why it is safe: a waiting task's insert reads its dependencies FOR SHARE,
-- so the completion of a dependency either finished before (the task is not
-- inserted waiting on it) or waits for the insert to commit, flag and all,
-- before its later statements read the flag.
CREATE TABLE {{.schema}}.dependency_state (
    id           boolean PRIMARY KEY DEFAULT true CHECK (id), -- one row
    waiting_seen boolean NOT NULL
);
INSERT INTO {{.schema}}.dependency_state (waiting_seen)
SELECT EXISTS (SELECT 1 FROM {{.schema}}.tasks WHERE gen = 0 AND status = 'waiting');

CREATE FUNCTION {{.schema}}.dependency_waiting_seen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE {{.schema}}.dependency_state SET waiting_seen = true WHERE NOT waiting_seen;
    RETURN NULL;
END
$$;
CREATE TRIGGER dependency_waiting_seen AFTER INSERT ON {{.schema}}.tasks_g0
    FOR EACH ROW WHEN (NEW.status = 'waiting') EXECUTE FUNCTION {{.schema}}.dependency_waiting_seen();

---- create above / drop below ----

DROP TRIGGER dependency_waiting_seen ON {{.schema}}.tasks_g0;
DROP FUNCTION {{.schema}}.dependency_waiting_seen();
DROP TABLE {{.schema}}.dependency_state;
