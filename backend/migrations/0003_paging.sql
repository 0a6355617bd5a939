-- Task pages are keyed on id (newest first); the created_at index no longer serves any query.
CREATE INDEX tasks_user_id_idx ON tasks (user_id, id DESC);
DROP INDEX IF EXISTS tasks_user_created_idx;

-- How many tasks each user holds, kept by a trigger, so the MAX_TASKS_PER_USER check on every create
-- reads one row instead of counting up to the cap.
ALTER TABLE users ADD COLUMN task_count BIGINT NOT NULL DEFAULT 0;
UPDATE users u SET task_count = (SELECT count(*) FROM tasks t WHERE t.user_id = u.id);

CREATE FUNCTION tasks_count_per_user() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE users SET task_count = task_count + 1 WHERE id = NEW.user_id;
    ELSE
        -- A cascade from deleting the user finds no row left to update: nothing to keep.
        UPDATE users SET task_count = task_count - 1 WHERE id = OLD.user_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_count_per_user AFTER INSERT OR DELETE ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_count_per_user();
