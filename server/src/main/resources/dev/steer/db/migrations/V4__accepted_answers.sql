-- Streamed answers that finished without a steer or a stop: the person let them run, so they are approved text. A
-- job keeps the adapter at the base model on the newest of them (docs/training.md, "the replay set"); only the newest
-- --keep-accepted are kept. A steer or stop of the session later (a finished answer can be steered) deletes its row.
CREATE TABLE accepted_answers (
    session_id      TEXT PRIMARY KEY,   -- the completion id
    model           TEXT NOT NULL,      -- the base model
    adapter_version TEXT,               -- null: the base model answered
    prompt_tokens   TEXT NOT NULL,      -- the templated prompt
    output_tokens   TEXT NOT NULL,      -- what the model generated, its end-of-generation token last when it ended itself
    created_at      INTEGER NOT NULL    -- epoch milliseconds
);
CREATE INDEX accepted_answers_created ON accepted_answers(created_at);
