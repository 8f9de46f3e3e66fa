ALTER TABLE vottery_audit_chain_heads DROP COLUMN IF EXISTS prev_hash;
