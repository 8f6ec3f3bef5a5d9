-- The highest adapter version ever given out. A version's number is never given again after it is deleted: the
-- history of activations, the job that made it, the steers and answers it served and a client's pinned `model@vN`
-- may all still name it. Starts past every number anything names already.
CREATE TABLE adapter_counter (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    last  INTEGER NOT NULL
);
INSERT INTO adapter_counter (id, last) SELECT 1, MAX(v) FROM (
    SELECT COALESCE(MAX(version), 0) AS v FROM adapters
    UNION ALL SELECT COALESCE(MAX(version), 0) FROM activations
    UNION ALL SELECT COALESCE(MAX(adapter_version), 0) FROM jobs
    UNION ALL SELECT COALESCE(MAX(CAST(SUBSTR(adapter_version, 2) AS INTEGER)), 0) FROM steers WHERE adapter_version LIKE 'v%'
    UNION ALL SELECT COALESCE(MAX(CAST(SUBSTR(adapter_version, 2) AS INTEGER)), 0) FROM accepted_answers WHERE adapter_version LIKE 'v%'
);
