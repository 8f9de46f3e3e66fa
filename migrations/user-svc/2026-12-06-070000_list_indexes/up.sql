-- The user list walks its matches in id order, a page at a time after a cursor
-- (`WHERE <filters> AND id > $after ORDER BY id LIMIT n`). An index led by a filtered column and
-- ending in the id serves that walk as a range scan that stops after the page, at any depth; the
-- customer's single-column indexes (idx_country, idx_user_type, ...) leave every match to be
-- sorted by id first. Each index also carries the other filter columns (INCLUDE), so a
-- combination of filters is checked inside the index it walks, without reading the table:
-- otherwise the planner intersects bitmaps of whole single-column indexes (100,000 entries for
-- one user type at a million users) to find a few dozen rows. Only indexes are added: the
-- customer's tables are otherwise unchanged.
CREATE INDEX IF NOT EXISTS idx_vottery_users_status_id ON vottery_users (status, id)
    INCLUDE (country, user_type, subscription_status, admin_role);
CREATE INDEX IF NOT EXISTS idx_vottery_users_country_id ON vottery_users (country, id)
    INCLUDE (status, user_type, subscription_status, admin_role);
CREATE INDEX IF NOT EXISTS idx_vottery_users_country_status_id ON vottery_users (country, status, id)
    INCLUDE (user_type, subscription_status, admin_role);
CREATE INDEX IF NOT EXISTS idx_vottery_users_user_type_id ON vottery_users (user_type, id)
    INCLUDE (status, country, subscription_status, admin_role);
CREATE INDEX IF NOT EXISTS idx_vottery_users_subscription_id ON vottery_users (subscription_status, id)
    INCLUDE (status, country, user_type, admin_role);
-- Admins are few: the index holds only them.
CREATE INDEX IF NOT EXISTS idx_vottery_users_admin_role_id ON vottery_users (admin_role, id)
    INCLUDE (status, country, user_type, subscription_status)
    WHERE admin_role IS NOT NULL;
