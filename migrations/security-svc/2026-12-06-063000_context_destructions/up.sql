-- security-svc: every instance looks for contexts destroyed since its last look (by
-- destroyed_at) at each key refresh, and evicts just those from its cache.
CREATE INDEX IF NOT EXISTS vottery_security_context_keys_destroyed_at
    ON vottery_security_context_keys (destroyed_at)
    WHERE destroyed_at IS NOT NULL;
