DROP TABLE IF EXISTS vottery_security_context_keys;
ALTER TABLE vottery_security_keys DROP COLUMN IF EXISTS context_keys;
