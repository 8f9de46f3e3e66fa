-- Appends :rows audit rows to the hash chain of user :user_id, each hashed as user-svc hashes
-- its rows (SHA-256 of the previous hash, a newline and the RFC 8785 form of the row), and
-- moves the chain's head to the last one. Run with psql -v user_id=… -v rows=…, or with the
-- two names replaced by numbers.
WITH RECURSIVE head AS (
    SELECT coalesce(max(last_seq), 0) AS seq,
           coalesce(max(last_hash), repeat('0', 64)) AS hash
    FROM vottery_audit_chain_heads WHERE chain_key = :user_id
), chain (n, seq, created_at, prev_hash, row_hash) AS (
    SELECT 0, seq, NULL::timestamp, NULL::text, hash FROM head
    UNION ALL
    SELECT n + 1, seq + 1, at, row_hash,
           encode(sha256(convert_to(row_hash || E'\n' || content, 'UTF8')), 'hex')
    FROM chain,
         LATERAL (SELECT timestamp '2026-01-01' + (n + 1) * interval '1 millisecond' AS at) AS t,
         LATERAL (SELECT '{"action":"trail.row","actor_id":null,"chain_key":' || :user_id
             || ',"chain_seq":' || (seq + 1)
             || ',"created_at":"' || to_char(at, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
             || '","details":{"n":' || (n + 1)
             || '},"device_id":null,"ip_address":null,"request_id":"trail-' || (n + 1)
             || '","success":true,"user_agent":null,"user_id":' || :user_id || '}' AS content
         ) AS c
    WHERE n < :rows
), appended AS (
    INSERT INTO vottery_audit_logs (user_id, action, details, success, created_at, request_id,
                                    chain_key, chain_seq, prev_hash, row_hash)
    SELECT :user_id, 'trail.row', jsonb_build_object('n', n), true, created_at, 'trail-' || n,
           :user_id, seq, prev_hash, row_hash
    FROM chain WHERE n > 0 ORDER BY n
    RETURNING chain_seq, prev_hash, row_hash, created_at
)
INSERT INTO vottery_audit_chain_heads AS h (chain_key, last_seq, last_hash, prev_hash, updated_at)
SELECT :user_id, chain_seq, row_hash, prev_hash, created_at
FROM appended ORDER BY chain_seq DESC LIMIT 1
ON CONFLICT (chain_key) DO UPDATE
    SET last_seq = EXCLUDED.last_seq, last_hash = EXCLUDED.last_hash,
        prev_hash = EXCLUDED.prev_hash, updated_at = EXCLUDED.updated_at;
