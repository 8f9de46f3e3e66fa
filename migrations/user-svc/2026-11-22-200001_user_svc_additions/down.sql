DROP TABLE IF EXISTS vottery_audit_chain_heads;
DROP TRIGGER IF EXISTS trg_vottery_users_updated_at ON vottery_users;
DROP FUNCTION IF EXISTS vottery_set_updated_at();
