-- Task pages are keyed on id (newest first); the created_at index no longer serves any query.
CREATE INDEX tasks_user_id_idx ON tasks (user_id, id DESC);
DROP INDEX IF EXISTS tasks_user_created_idx;
