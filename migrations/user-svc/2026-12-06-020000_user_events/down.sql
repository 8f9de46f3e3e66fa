DROP TABLE IF EXISTS vottery_user_events;
