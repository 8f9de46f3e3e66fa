DROP INDEX IF EXISTS idx_vottery_users_admin_role_id;
DROP INDEX IF EXISTS idx_vottery_users_subscription_id;
DROP INDEX IF EXISTS idx_vottery_users_user_type_id;
DROP INDEX IF EXISTS idx_vottery_users_country_status_id;
DROP INDEX IF EXISTS idx_vottery_users_country_id;
DROP INDEX IF EXISTS idx_vottery_users_status_id;
