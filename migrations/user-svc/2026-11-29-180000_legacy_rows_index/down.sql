DROP INDEX IF EXISTS idx_vottery_users_legacy;
