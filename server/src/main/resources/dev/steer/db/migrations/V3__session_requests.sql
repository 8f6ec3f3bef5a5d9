-- A completion's request and templated prompt, stored once for all its steers and stops. Each record used to carry
-- its own copy, and the body is the client's (unknown fields are kept): one 4 MB chat stopped 20 times added 88 MB.
CREATE TABLE session_requests (
    session_id    TEXT PRIMARY KEY,     -- steers.session_id
    request_json  TEXT NOT NULL,        -- the client's request: messages and parameters
    prompt_tokens TEXT NOT NULL         -- the templated prompt
);
INSERT OR IGNORE INTO session_requests (session_id, request_json, prompt_tokens)
    SELECT session_id, request_json, prompt_tokens FROM steers ORDER BY created_at;
ALTER TABLE steers DROP COLUMN request_json;
ALTER TABLE steers DROP COLUMN prompt_tokens
