-- What the bot keeps about itself: the target branch's head when applying was first turned
-- on (`applied_as_of`: merges that landed before it are applied only when asked).
CREATE TABLE bot_state (
    key           TEXT    NOT NULL PRIMARY KEY,
    value         TEXT    NOT NULL,
    updated_at_ms BIGINT  NOT NULL
);
