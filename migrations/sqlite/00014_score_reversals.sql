-- +goose Up
-- Scoring also rescans an open or click whose verdict turns from human to
-- machine (a click judged again when a honeypot click or a burst of clicks
-- of its delivery arrives after it): the run takes back what it earned
-- (store.ScoreSettled). The queue is 00007's.
DROP TRIGGER events_rescan;
-- +goose StatementBegin
CREATE TRIGGER events_rescan AFTER UPDATE OF human ON events FOR EACH ROW
    WHEN NEW.human IS NOT OLD.human AND NEW.kind IN ('opened', 'clicked')
BEGIN
    INSERT OR IGNORE INTO score_rescans (event_id) VALUES (NEW.id);
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER events_rescan;
-- +goose StatementBegin
CREATE TRIGGER events_rescan AFTER UPDATE OF human ON events FOR EACH ROW
    WHEN NEW.human AND NOT OLD.human AND NEW.kind IN ('opened', 'clicked')
BEGIN
    INSERT OR IGNORE INTO score_rescans (event_id) VALUES (NEW.id);
END;
-- +goose StatementEnd
