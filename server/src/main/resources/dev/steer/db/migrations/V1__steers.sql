-- Every steer, token-exact. Token arrays are JSON arrays of ints; texts are what those tokens decode to.
CREATE TABLE steers (
    id                  TEXT PRIMARY KEY,
    session_id          TEXT NOT NULL,      -- the completion id the steer was made on
    kind                TEXT NOT NULL,      -- 'steer' (with a correction) or 'rejection' (a stop without one)
    model               TEXT NOT NULL,
    adapter_version     TEXT,               -- null: the base model
    request_json        TEXT NOT NULL,      -- the client's request: messages and parameters
    prompt_tokens       TEXT NOT NULL,      -- the templated prompt
    at_token            INTEGER NOT NULL,   -- generated tokens kept
    accepted_tokens     TEXT NOT NULL,      -- the generated tokens before the fork
    rejected_tokens     TEXT NOT NULL,      -- everything the model had generated past the fork
    correction_tokens   TEXT NOT NULL,
    correction_text     TEXT NOT NULL,
    accepted_text       TEXT NOT NULL,
    rejected_text       TEXT NOT NULL,
    fork_top_logprobs   TEXT,               -- [{"token": id, "logprob": x}] of the distribution at the fork
    continuation_tokens TEXT,               -- generated after the steer, until the end or the next steer
    continuation_text   TEXT,
    excluded            INTEGER NOT NULL DEFAULT 0,  -- 1: not used for training
    created_at          INTEGER NOT NULL,   -- epoch milliseconds
    updated_at          INTEGER NOT NULL
);
CREATE INDEX steers_session ON steers(session_id);
CREATE INDEX steers_created ON steers(created_at);

CREATE TABLE steer_tags (
    steer_id TEXT NOT NULL REFERENCES steers(id) ON DELETE CASCADE,
    tag      TEXT NOT NULL,
    PRIMARY KEY (steer_id, tag)
);
CREATE INDEX steer_tags_tag ON steer_tags(tag);
