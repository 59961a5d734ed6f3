-- +goose Up
-- Scoring also rescans an open or click whose verdict turns from human to
-- machine (a click judged again when a honeypot click or a burst of clicks
-- of its delivery arrives after it): the run takes back what it earned
-- (store.ScoreSettled). The queue and the function are 00007's.
DROP TRIGGER events_rescan ON events;
CREATE TRIGGER events_rescan AFTER UPDATE OF human ON events FOR EACH ROW
    WHEN (NEW.human IS DISTINCT FROM OLD.human AND NEW.kind IN ('opened', 'clicked'))
    EXECUTE FUNCTION events_rescan();

-- +goose Down
DROP TRIGGER events_rescan ON events;
CREATE TRIGGER events_rescan AFTER UPDATE OF human ON events FOR EACH ROW
    WHEN (NEW.human AND NOT OLD.human AND NEW.kind IN ('opened', 'clicked'))
    EXECUTE FUNCTION events_rescan();
