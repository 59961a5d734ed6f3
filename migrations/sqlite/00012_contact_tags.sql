-- +goose Up
-- SQLite has no index on the elements of a JSON array, so listing the
-- contacts with a rare tag read every row's tags (a tag on 0.02% of
-- 1,000,000 contacts: 100 ms; an absent tag: 370 ms). contact_tags holds one
-- row per tag and contact, in (tag, contact_id) order, so a page of a tag is
-- a range of it. Triggers keep it equal to contacts.tags on every write.
-- (PostgreSQL answers the same filter from its GIN index on tags.)
CREATE TABLE contact_tags (
    tag        TEXT NOT NULL,
    contact_id INTEGER NOT NULL,
    PRIMARY KEY (tag, contact_id)
) WITHOUT ROWID;

INSERT OR IGNORE INTO contact_tags (tag, contact_id)
SELECT j.value, c.id FROM contacts c, json_each(c.tags) j;

-- +goose StatementBegin
CREATE TRIGGER contact_tags_insert AFTER INSERT ON contacts
WHEN NEW.tags <> '[]'
BEGIN
    INSERT OR IGNORE INTO contact_tags (tag, contact_id) SELECT value, NEW.id FROM json_each(NEW.tags);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER contact_tags_update AFTER UPDATE OF tags ON contacts
WHEN OLD.tags IS NOT NEW.tags
BEGIN
    DELETE FROM contact_tags WHERE contact_id = OLD.id AND tag IN (SELECT value FROM json_each(OLD.tags));
    INSERT OR IGNORE INTO contact_tags (tag, contact_id) SELECT value, NEW.id FROM json_each(NEW.tags);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER contact_tags_delete AFTER DELETE ON contacts
WHEN OLD.tags <> '[]'
BEGIN
    DELETE FROM contact_tags WHERE contact_id = OLD.id AND tag IN (SELECT value FROM json_each(OLD.tags));
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER contact_tags_delete;
DROP TRIGGER contact_tags_update;
DROP TRIGGER contact_tags_insert;
DROP TABLE contact_tags;
