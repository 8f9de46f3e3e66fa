DROP TABLE IF EXISTS vottery_idempotency_keys;
