-- Fine-tuning jobs, queued durably and run one at a time.
CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    model            TEXT NOT NULL,      -- the base model id
    method           TEXT NOT NULL,      -- sft | dpo | sft+dpo
    hyperparameters  TEXT NOT NULL,      -- JSON, defaults filled in
    filters          TEXT NOT NULL,      -- JSON: which steers
    eval             TEXT NOT NULL,      -- JSON: gate settings
    status           TEXT NOT NULL,      -- queued | running | succeeded | failed | cancelled
    error            TEXT,
    adapter_version  INTEGER,            -- the version it produced
    result           TEXT,               -- JSON: loss curve, counts, eval report
    created_at       INTEGER NOT NULL,   -- epoch milliseconds
    started_at       INTEGER,
    finished_at      INTEGER
);
CREATE INDEX jobs_status ON jobs(status);

-- Adapter versions. The file lives in the adapter directory; a row exists only once its file is complete.
CREATE TABLE adapters (
    version          INTEGER PRIMARY KEY,
    base_model       TEXT NOT NULL,      -- model id
    base_sha256      TEXT NOT NULL,      -- of the base GGUF file
    file             TEXT NOT NULL,      -- file name in the adapter directory
    job_id           TEXT,
    steer_ids        TEXT NOT NULL,      -- JSON array: the steers trained on
    held_out_ids     TEXT NOT NULL,      -- JSON array: the steers the gate evaluated on
    hyperparameters  TEXT NOT NULL,      -- JSON
    metrics          TEXT NOT NULL,      -- JSON: training summary and eval report
    gate             TEXT NOT NULL,      -- passed | failed | skipped
    created_at       INTEGER NOT NULL
);

-- Which version serves, as a history: the newest row wins; rollback returns to the one before it.
CREATE TABLE activations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    version     INTEGER,                 -- null: the base model alone
    reason      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
)
